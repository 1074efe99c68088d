/**
 * The data path every thread of a node uses, read by the host (system.ts) and by each worker
 * (worker_entry.ts): both ends of every link must come from one implementation, so the host
 * picks it by name from the node's options and hands the same name to every worker in its boot
 * data. Everything else sees only `Transport` and `TransportKind`.
 */

import { portTransport } from './router.ts';
import { ringTransport } from './ring_transport.ts';
import type { TransportKind } from './transport.ts';

/** `port`: a MessagePort per link (router.ts). `ring`: SharedArrayBuffer rings (ring_transport.ts). */
export type TransportName = 'port' | 'ring';

export const defaultTransportName: TransportName = 'port';

export function transportKind(name: TransportName): TransportKind {
  switch (name) {
    case 'port':
      return portTransport;
    case 'ring':
      return ringTransport;
    default: {
      const never: never = name;
      throw new RangeError(`unknown transport ${String(never)}`);
    }
  }
}
