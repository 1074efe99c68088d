/**
 * A Byzantine-shaped injector for the simulated cluster (issue 12): messages nobody in the group
 * sent appear on the wire, as from anyone who can reach a replica's port. Each is built from
 * what the target replica holds right now, so that it is well formed in every respect but one:
 *
 * - `huge_view`: a peer message (start_view_change, prepare, commit, do_view_change,
 *   start_view, prepare_ok, get_state) whose view is beyond `protocolNumberMax` (2^48 + 1,
 *   2^53 - 1: the finding that killed a group);
 * - `huge_number`: some other protocol number beyond the bound (an op, a commit, an epoch, a
 *   logStart, a nonce, a committed op, a request number of a real client's session);
 * - `forged_sender`: a message whose `replica` names the target itself, or no replica at all;
 * - `future_op`: a prepare from the primary of the target's view, in that view, for an op far
 *   ahead (protocolNumberMax itself, the largest the gate accepts), commit and globalMinAccept 0.
 *
 * All but the last are malformed: the gate (src/vr/validate.ts) must drop them, and the cluster
 * reports a `forged_accepted` violation when a step given one does not trace `drop_malformed`
 * for it. The last is well formed and is delivered like any other message: its only effect is
 * the one a genuine prepare beyond a gap has (the backup asks for state), since its view is
 * the target's own, its commit and globalMinAccept are 0 (no-ops) and its op can never be the
 * target's next; the checkers must stay green with it.
 *
 * What this injector deliberately does NOT send: a validly shaped message under a member's
 * replica id that claims something false (a prepare for the next op with invented requests, a
 * commit beyond what the group committed, a start_view with an invented log, a view change at
 * view protocolNumberMax). That is a Byzantine member, outside VR's crash fault model: no gate
 * can tell it from the member without authentication, which the cluster link provides (the
 * peer's name is bound by TLS or the cluster secret, and a peer may only send as the replicas
 * it hosts). The simulator's network knows the true sender (the node `forger`, never a
 * replica); the core does not, so what is asserted here is what the gate alone guarantees:
 * out-of-range values are dropped, and no invariant or checker fails.
 */

import { assertNever } from '../../src/base/assert.ts';
import { protocolNumberMax } from '../../src/base/limits.ts';
import { primaryOf } from '../../src/vr/config.ts';
import type { LogEntry, Request } from '../../src/vr/messages.ts';
import type { ReplicaState } from '../../src/vr/state.ts';
import type { Cluster } from './cluster.ts';
import type { Prng } from './prng.ts';

export type ForgeryKind = 'huge_view' | 'huge_number' | 'forged_sender' | 'future_op';

export const forgeryKinds: readonly ForgeryKind[] = ['huge_view', 'huge_number', 'forged_sender', 'future_op'];

/** Numbers beyond the bound that a forger would pick: just past it, and the edge of exact doubles. */
export const hugeNumbers: readonly number[] = [protocolNumberMax + 1, 2 ** 53 - 1];

export type Forgery = {
  readonly kind: ForgeryKind;
  readonly message: Record<string, unknown>;
  /** True when the gate must drop it as malformed. */
  readonly malformed: boolean;
};

/** A request as a session of the workload would send it (client ids `c0.1`, ...). */
function requestOf(clientId: string, requestNum: number): Request {
  return { type: 'request', clientId, requestNum, op: { type: 'tree', op: { type: 'stat', path: '/k0' } } };
}

function entryOf(op: number, view: number): LogEntry {
  return { op, view, requests: [requestOf('forger.1', 1)] };
}

/**
 * One forgery aimed at replica `target` (in state `s`), drawn from `prng`. `clientIds` are the
 * client processes' ids (their sessions are `<id>.1`, ...).
 */
export function forge(prng: Prng, kind: ForgeryKind, s: ReplicaState, target: number, clientIds: readonly string[]): Forgery {
  const config = s.config;
  const n = config.replicaCount;
  // A sender the gate would otherwise accept: any replica but the target.
  const other = (target + 1 + prng.int(Math.max(1, n - 1))) % n;
  const huge = prng.pick(hugeNumbers);
  const base = { epoch: s.epoch };
  switch (kind) {
    case 'huge_view': {
      const view = huge;
      const primary = primaryOf(view, config);
      const choices: Record<string, unknown>[] = [
        { type: 'start_view_change', ...base, view, replica: other },
        { type: 'prepare', ...base, view, replica: primary, op: s.op + 1, commit: s.commit, entry: entryOf(s.op + 1, view), globalMinAccept: 0 },
        { type: 'commit', ...base, view, replica: primary, commit: s.commit, globalMinAccept: 0 },
        { type: 'do_view_change', ...base, view, replica: other, lastNormalView: s.lastNormalView, op: s.commit, commit: s.commit, logStart: s.commit, entries: [], checkpoint: null },
        { type: 'start_view', ...base, view, replica: primary, op: s.commit, commit: s.commit, logStart: s.commit, entries: [], checkpoint: null },
        { type: 'prepare_ok', ...base, view, replica: other, op: s.op },
        { type: 'get_state', ...base, view, replica: other, op: s.op, whole: false },
      ];
      return { kind, message: prng.pick(choices), malformed: true };
    }
    case 'huge_number': {
      const view = s.view;
      const primary = primaryOf(view, config);
      const session = `${prng.pick(clientIds)}.1`;
      const choices: Record<string, unknown>[] = [
        // a future op beyond the bound, otherwise a well-formed prepare of the view's primary
        { type: 'prepare', ...base, view, replica: primary, op: huge, commit: 0, entry: entryOf(huge, view), globalMinAccept: 0 },
        { type: 'commit', ...base, view, replica: primary, commit: huge, globalMinAccept: 0 },
        { type: 'commit', ...base, view, replica: primary, commit: 0, globalMinAccept: huge },
        { type: 'start_view_change', epoch: huge, view: view + 1, replica: other },
        { type: 'prepare_ok', ...base, view, replica: other, op: huge },
        { type: 'do_view_change', ...base, view: view + 1, replica: other, lastNormalView: view, op: huge, commit: 0, logStart: huge, entries: [], checkpoint: null },
        { type: 'recovery', ...base, replica: other, nonce: huge, committed: 0 },
        { type: 'recovery', ...base, replica: other, nonce: 1, committed: huge },
        { type: 'recovery_response', ...base, view, replica: other, nonce: huge, state: null },
        { type: 'get_state', ...base, view, replica: other, op: huge, whole: true },
        { type: 'new_state', ...base, view, replica: other, op: huge, commit: 0, logStart: huge, entries: [], checkpoint: null, whole: true },
        // a real session's id with a request number beyond the bound
        requestOf(session, huge),
      ];
      return { kind, message: prng.pick(choices), malformed: true };
    }
    case 'forged_sender': {
      // The gate can refuse a sender only when it is impossible: the receiver itself, or an
      // index outside the group. (Another member's index is indistinguishable without
      // authentication: see the header.)
      const replica = prng.pick([target, n, n + prng.int(1000), 2 ** 53 - 1]);
      const choices: Record<string, unknown>[] = [
        { type: 'start_view_change', ...base, view: s.view + 1, replica },
        { type: 'prepare_ok', ...base, view: s.view, replica, op: s.op },
        { type: 'recovery', ...base, replica, nonce: 1 + prng.int(1000), committed: 0 },
        { type: 'get_state', ...base, view: s.view, replica, op: 0, whole: false },
      ];
      return { kind, message: prng.pick(choices), malformed: true };
    }
    case 'future_op': {
      const view = s.view;
      const op = protocolNumberMax;
      return {
        kind,
        message: { type: 'prepare', ...base, view, replica: primaryOf(view, config), op, commit: 0, entry: entryOf(op, view), globalMinAccept: 0 },
        malformed: false,
      };
    }
    default:
      return assertNever(kind, 'forgery kind');
  }
}

/**
 * Injects forgeries into a cluster: before each tick, with probability `probability`, one
 * forgery of a drawn kind to a drawn running replica. Draws only from its own PRNG, so a seed
 * without it (probability 0) runs exactly as before.
 */
export class ByzantineInjector {
  readonly #prng: Prng;
  readonly #cluster: Cluster;
  readonly probability: number;
  readonly injected: Record<ForgeryKind, number> = { huge_view: 0, huge_number: 0, forged_sender: 0, future_op: 0 };

  constructor(prng: Prng, cluster: Cluster, probability: number) {
    this.#prng = prng;
    this.#cluster = cluster;
    this.probability = probability;
  }

  get total(): number {
    return forgeryKinds.reduce((sum, kind) => sum + this.injected[kind], 0);
  }

  beforeTick(): void {
    if (this.probability <= 0 || !this.#prng.chance(this.probability)) return;
    const cluster = this.#cluster;
    const running = Array.from({ length: cluster.replicaCount }, (_, i) => i).filter((i) => !cluster.isDown(i));
    if (running.length === 0) return;
    const target = this.#prng.pick(running);
    const kind = this.#prng.pick(forgeryKinds);
    const forgery = forge(this.#prng, kind, cluster.replica(target), target, cluster.clientIds);
    this.injected[kind] += 1;
    cluster.injectForged(target, forgery.message, forgery.malformed, kind);
  }
}
