/**
 * comlink over a Node MessagePort. comlink ships its Node adapter without a declaration for
 * the ESM file, so it is typed here once, narrowly, for the two places that use it.
 */

import type { Endpoint } from 'comlink';
import type { MessagePort } from 'node:worker_threads';
// @ts-expect-error: the ESM node adapter has no .d.mts; its shape is declared below.
import untypedNodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

export const nodeEndpoint = untypedNodeEndpoint as (port: MessagePort) => Endpoint;
