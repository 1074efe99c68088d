/**
 * The data path every thread of a node uses, read by the host (system.ts) and by each worker
 * (worker_entry.ts): both ends of every link must come from one implementation, so the choice
 * is made once, here. Everything else sees only `Transport` and `TransportKind`.
 */

import { portTransport } from './router.ts';
import type { TransportKind } from './transport.ts';

export const meshTransport: TransportKind = portTransport;
