/**
 * The node's endpoint with its calls measured (src/node/request_metrics.ts, path `embedded`):
 * each call from the moment the application makes it to the moment its promise settles, with
 * its op type and result code. Used in place of the plain Endpoint when the node serves HTTP
 * (metrics); without it nothing is added to the call path.
 */

import type { ProxyOutcome } from '../../actors/messages.ts';
import type { TreeOp } from '../tree/ops.ts';
import { Endpoint } from './endpoint.ts';
import { callErrorCode, callOutcomeCode, type RequestMetrics } from './request_metrics.ts';

export class MeasuredEndpoint extends Endpoint {
  readonly #metrics: RequestMetrics;

  constructor(metrics: RequestMetrics, ...endpoint: ConstructorParameters<typeof Endpoint>) {
    super(...endpoint);
    this.#metrics = metrics;
  }

  override call(ns: string, op: TreeOp): Promise<ProxyOutcome> {
    const started = performance.now();
    const call = super.call(ns, op);
    call.then(
      (outcome) => {
        const { code, committed } = callOutcomeCode(outcome);
        this.#metrics.settled('embedded', ns, op.type, code, committed, started, performance.now());
      },
      (error: unknown) => this.#metrics.settled('embedded', ns, op.type, callErrorCode(error), false, started, performance.now()),
    );
    return call;
  }
}
