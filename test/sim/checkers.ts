/**
 * Safety invariants of the replication protocol (PROTOCOL.md "Invariants the simulator checks
 * after every step"), checked by the simulator after every replica step. A checker never
 * throws: it records a {@link Violation} with a message precise enough to start debugging.
 *
 * (a) at most one primary per (epoch, view) in normal status, over all time;
 * (b) committed prefixes agree: one digest per committed op, over all replicas and time;
 * (c) commit <= op, op = the log's last op, appliedOp <= commit, commit never decreases within
 *     one incarnation of a replica;
 * (d) a committed entry is never lost: a normal primary of view v holds every op committed in
 *     any view <= v (an old primary cut off from a newer view may lack later ops), and its
 *     retained entries up to there match the committed digests;
 * (e) each (client, requestNum) gets at most one distinct reply (body and op), over all
 *     replicas and time, except a read-only request: its reply is not kept, so a retry runs it
 *     again at a later op, and each op where the read ran gets at most one distinct body; a
 *     reply never names an op beyond the sender's commit; answers that report nothing ran now
 *     (session_expired, stale_request) are not replies to compare, but stale_request must name
 *     a later request number; a read's reply names an op at or after every write any replica
 *     had acknowledged when that read arrived at the replica answering it (src/vr/README.md
 *     rule 22: a read answered without logging reads at or after its readIndex, so it never
 *     misses an acknowledged write, e.g. one a deposed primary committed whose commit its
 *     successor has not learned yet);
 * (f) replicas that applied the same prefix hold the same tree, client table (the table's
 *     LRU order included) and lease table (compared structurally against the first machine
 *     seen at that op; the report names both checkpoint digests);
 * (g) a replica without state (stopped or recovering) sends no prepare_ok and casts no
 *     view-change vote (a prepare_ok for the state it just recovered into is allowed);
 * plus: a step that throws is a violation (`exception`). Linearizability (h) is checked at the
 * end of a run by the VOPR with ./tree_model.ts.
 */

import { createHash } from 'node:crypto';
import { encodeCheckpoint } from '../../src/vr/checkpoint.ts';
import { primaryOf } from '../../src/vr/config.ts';
import { promiseHeld } from '../../src/vr/context.ts';
import type { ReplicaEffect, ReplicaInput } from '../../src/vr/io.ts';
import { entryAt, lastOp } from '../../src/vr/log.ts';
import type { LogEntry, ReplyBody } from '../../src/vr/messages.ts';
import type { ReplicaState } from '../../src/vr/state.ts';
import type { Machine } from '../../src/vr/state_machine.ts';
import { leaseTerms, type LeaseTable } from '../../src/tree/leases.ts';
import { isWriteOp } from '../../src/tree/ops.ts';
import { treesEqual } from '../../src/tree/snapshot.ts';
import { canonical, deepEqual } from './tree_model.ts';

export type ViolationKind =
  | 'two_primaries'
  | 'committed_prefix'
  | 'commit_bounds'
  | 'committed_lost'
  | 'reply'
  | 'applied_state'
  | 'recovering_vote'
  | 'exception'
  | 'unreadable_message'
  | 'linearizability'
  | 'liveness'
  | 'persist'
  /** A forged, malformed message (./byzantine.ts) got past the gate without `drop_malformed`. */
  | 'forged_accepted'
  /** A watch stream that is not the projection of the committed history (./watchers.ts). */
  | 'watch'
  /** Leases, locks, elections against the committed log (./leases.ts). */
  | 'lease';

export type Violation = {
  readonly kind: ViolationKind;
  readonly message: string;
  readonly tick: number;
  readonly replica?: number;
};

/** One replica step as the checkers see it. */
export type StepObservation = {
  readonly replica: number;
  readonly tick: number;
  readonly before: ReplicaState;
  readonly after: ReplicaState;
  readonly inputs: readonly ReplicaInput[];
  readonly effects: readonly ReplicaEffect[];
};

/** Committed entries re-checked (trailing window) whenever a replica's log changes. */
const recheckWindow = 32;

const votes: ReadonlySet<string> = new Set(['prepare_ok', 'start_view_change', 'do_view_change']);

const entryDigests = new WeakMap<LogEntry, string>();

/** A canonical string of a log entry: view, op, and each request (client, number, op). */
export function entryDigest(entry: LogEntry): string {
  let digest = entryDigests.get(entry);
  if (digest === undefined) {
    const requests = entry.requests.map((request) => `${request.clientId}#${request.requestNum}:${canonical(request.op)}`);
    digest = `view=${entry.view} op=${entry.op} [${requests.join('; ')}]`;
    entryDigests.set(entry, digest);
  }
  return digest;
}

const machineDigests = new WeakMap<Machine, string>();

/** sha1 of the machine's checkpoint encoding (tree snapshot + sorted client table + op). */
export function machineDigest(machine: Machine): string {
  let digest = machineDigests.get(machine);
  if (digest === undefined) {
    digest = createHash('sha1').update(encodeCheckpoint(machine).snapshot).digest('hex');
    machineDigests.set(machine, digest);
  }
  return digest;
}

function stateless(status: ReplicaState['status']): boolean {
  return status === 'recovering' || status === 'stopped';
}

function isNormalPrimary(state: ReplicaState): boolean {
  return state.status === 'normal' && primaryOf(state.view, state.config) === state.index;
}

function short(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

export class Checkers {
  readonly violations: Violation[] = [];
  readonly #incarnations: number[];
  /** Per replica, the highest commit of its current incarnation. */
  readonly #commits: number[];
  /** `${epoch}:${view}` -> who was normal primary of it. */
  readonly #primaries = new Map<string, { readonly replica: number; readonly incarnation: number; readonly tick: number }>();
  /** op -> digest of the committed entry, and who committed it first. */
  readonly #committed = new Map<number, { readonly digest: string; readonly replica: number; readonly tick: number }>();
  #maxCommitted = 0;
  /** epoch -> view -> the highest commit a replica held while in that view (and who). */
  readonly #commitsByView = new Map<number, Map<number, { commit: number; replica: number }>>();
  /** `${clientId}#${requestNum}` -> the first reply sent (body and op), and who sent it. */
  readonly #replies = new Map<string, { readonly body: ReplyBody; readonly op: number; readonly replica: number; readonly tick: number }>();
  /** `${clientId}#${requestNum}@${op}` of every read-only request in a committed entry. */
  readonly #readsAt = new Set<string>();
  /** `${clientId}#${requestNum}` of every read-only request a replica received (rule 22's answers are in no entry). */
  readonly #readRequests = new Set<string>();
  /** The highest op of a reply to a write any replica sent so far: the newest acknowledged write. */
  #maxAcknowledgedWrite = 0;
  /**
   * `${replica}:${clientId}#${requestNum}` -> the newest acknowledged write when that read last
   * arrived at that replica: the least op its answer from there may name.
   */
  readonly #readFloors = new Map<string, { readonly op: number; readonly tick: number }>();
  /** `${clientId}#${requestNum}@${op}` -> the first reply to that read executed at op. */
  readonly #readReplies = new Map<string, { readonly body: ReplyBody; readonly replica: number; readonly tick: number }>();
  /** appliedOp -> the first machine seen at that op, and whose it was. */
  readonly #applied = new Map<number, { readonly machine: Machine; readonly replica: number; readonly tick: number }>();
  /** Steps checked (for reports). */
  steps = 0;

  constructor(replicaCount: number) {
    this.#incarnations = new Array<number>(replicaCount).fill(0);
    this.#commits = new Array<number>(replicaCount).fill(0);
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  /** The highest op any replica ever committed. */
  get maxCommitted(): number {
    return this.#maxCommitted;
  }

  incarnation(replica: number): number {
    return this.#incarnations[replica] ?? 0;
  }

  /** A replica lost its volatile state: a new incarnation starts (its commit may restart at 0). */
  onCrash(replica: number): void {
    this.#incarnations[replica] = this.incarnation(replica) + 1;
    this.#commits[replica] = 0;
  }

  report(violation: Violation): Violation {
    this.violations.push(violation);
    return violation;
  }

  /** A step threw: our bug (InvariantViolation) or worse. */
  onException(replica: number, tick: number, error: unknown, inputs: readonly ReplicaInput[]): Violation {
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const input = short(inputs.map((one) => canonical(one)).join(', '), 600);
    return this.report({ kind: 'exception', replica, tick, message: `replica ${replica} threw ${what} on inputs ${input}` });
  }

  /** Runs every per-step checker; returns the violations this step added. */
  afterStep(observation: StepObservation): Violation[] {
    const first = this.violations.length;
    this.steps += 1;
    this.#checkBounds(observation);
    this.#checkPrimary(observation);
    this.#checkCommitted(observation);
    this.#checkPrimaryHoldsCommitted(observation);
    this.#checkRecoveringVotes(observation);
    this.#checkReplies(observation);
    this.#checkApplied(observation);
    return this.violations.slice(first);
  }

  /** End of run: every retained entry at or below each replica's commit against the committed digests. */
  finalCheck(states: readonly ReplicaState[], tick: number): Violation[] {
    const first = this.violations.length;
    for (const state of states) {
      if (state.status === 'stopped') continue;
      this.#checkRange(state, state.log.start + 1, Math.min(state.commit, lastOp(state.log)), tick, 'final check');
    }
    return this.violations.slice(first);
  }

  // ---- (c) ---------------------------------------------------------------------------------

  #checkBounds({ replica, tick, before, after }: StepObservation): void {
    const last = lastOp(after.log);
    const where = `replica ${replica} (status ${after.status}, view ${after.view})`;
    if (after.commit > after.op) {
      this.report({ kind: 'commit_bounds', replica, tick, message: `${where}: commit ${after.commit} > op ${after.op}` });
    }
    if (after.op !== last) {
      this.report({ kind: 'commit_bounds', replica, tick, message: `${where}: op ${after.op} but the log's last op is ${last} (start ${after.log.start})` });
    }
    if (after.machine.appliedOp > after.commit) {
      this.report({ kind: 'commit_bounds', replica, tick, message: `${where}: applied op ${after.machine.appliedOp} beyond commit ${after.commit}` });
    }
    const floor = Math.max(before.commit, this.#commits[replica] ?? 0);
    if (after.commit < floor) {
      this.report({ kind: 'commit_bounds', replica, tick, message: `${where}: commit went backwards from ${floor} to ${after.commit} without a crash` });
    }
    this.#commits[replica] = after.commit;
  }

  // ---- (a) ---------------------------------------------------------------------------------

  #checkPrimary({ replica, tick, after }: StepObservation): void {
    // A durable primary is one only once its promise is stored (README rule 18): until then it
    // sends nothing that depends on it, and a crash makes it a backup of its stored view, which
    // may be elected primary of the same view again (vopr seed 100232, durable). Diskless:
    // promiseHeld is always true.
    if (!isNormalPrimary(after) || !promiseHeld(after)) return;
    const key = `${after.epoch}:${after.view}`;
    const incarnation = this.incarnation(replica);
    const known = this.#primaries.get(key);
    if (known === undefined) {
      this.#primaries.set(key, { replica, incarnation, tick });
      return;
    }
    if (known.replica !== replica || known.incarnation !== incarnation) {
      this.report({
        kind: 'two_primaries',
        replica,
        tick,
        message:
          `two primaries of epoch ${after.epoch} view ${after.view}: replica ${known.replica} (incarnation ${known.incarnation}, since tick ${known.tick}) ` +
          `and replica ${replica} (incarnation ${incarnation})`,
      });
    }
  }

  // ---- (b) ---------------------------------------------------------------------------------

  #checkCommitted(observation: StepObservation): void {
    const { replica, tick, before, after } = observation;
    if (after.status === 'stopped') return;
    const last = Math.min(after.commit, lastOp(after.log));
    const sameIncarnationLog = before.status !== 'stopped';
    // Newly committed entries.
    const newFrom = Math.max(sameIncarnationLog ? before.commit : 0, after.log.start) + 1;
    this.#checkRange(after, newFrom, last, tick, 'newly committed');
    const entered = after.status === 'normal' && (before.status !== 'normal' || before.view !== after.view);
    if (entered) {
      // A view change, recovery or state transfer may have replaced the log: check all of it.
      this.#checkRange(after, after.log.start + 1, Math.min(last, newFrom - 1), tick, 'after entering normal status');
    } else if (after.log !== before.log) {
      // The log changed: re-check a trailing window of already committed entries.
      this.#checkRange(after, Math.max(after.log.start + 1, newFrom - recheckWindow), Math.min(last, newFrom - 1), tick, 'after a log change');
    }
    if (after.commit > this.#maxCommitted) this.#maxCommitted = after.commit;
    // A recovering replica's view is not known yet (a durable one reloads its commits while
    // still at view 0): its commits were made in views already on record.
    if (after.status === 'recovering') return;
    let views = this.#commitsByView.get(after.epoch);
    if (views === undefined) {
      views = new Map();
      this.#commitsByView.set(after.epoch, views);
    }
    const known = views.get(after.view);
    if (known === undefined || known.commit < after.commit) views.set(after.view, { commit: after.commit, replica });
  }

  /** The highest op committed in a view <= `view` of `epoch`, and by whom. */
  #committedUpTo(epoch: number, view: number): { commit: number; replica: number } {
    let best = { commit: 0, replica: -1 };
    for (const [seen, known] of this.#commitsByView.get(epoch) ?? []) {
      if (seen <= view && known.commit > best.commit) best = known;
    }
    return best;
  }

  #checkRange(state: ReplicaState, from: number, to: number, tick: number, why: string): void {
    const replica = state.index;
    for (let op = Math.max(from, state.log.start + 1); op <= to; op++) {
      const entry = entryAt(state.log, op);
      if (entry === undefined) continue;
      if (entry.op !== op) {
        this.report({ kind: 'committed_prefix', replica, tick, message: `replica ${replica} holds an entry labelled op ${entry.op} at position ${op} (${why})` });
        return;
      }
      const digest = entryDigest(entry);
      const known = this.#committed.get(op);
      if (known === undefined) {
        this.#committed.set(op, { digest, replica, tick });
        for (const request of entry.requests) {
          if (request.op.type === 'tree' && !isWriteOp(request.op.op)) this.#readsAt.add(`${request.clientId}#${request.requestNum}@${op}`);
        }
      } else if (known.digest !== digest) {
        this.report({
          kind: 'committed_prefix',
          replica,
          tick,
          message:
            `committed entries differ at op ${op} (${why}): replica ${known.replica} committed ${short(known.digest)} at tick ${known.tick}, ` +
            `replica ${replica} (commit ${state.commit}, view ${state.view}) holds ${short(digest)}`,
        });
        return;
      }
    }
  }

  // ---- (d) ---------------------------------------------------------------------------------

  #checkPrimaryHoldsCommitted({ replica, tick, before, after }: StepObservation): void {
    if (!isNormalPrimary(after)) return;
    const required = this.#committedUpTo(after.epoch, after.view);
    if (after.op < required.commit) {
      this.report({
        kind: 'committed_lost',
        replica,
        tick,
        message: `replica ${replica} is primary of view ${after.view} with op ${after.op}, but op ${required.commit} was committed in a view <= ${after.view} (replica ${required.replica} held it)`,
      });
      return;
    }
    const becamePrimary = !isNormalPrimary(before) || before.view !== after.view || before.epoch !== after.epoch;
    if (!becamePrimary) return;
    for (let op = after.log.start + 1; op <= required.commit; op++) {
      const known = this.#committed.get(op);
      const entry = entryAt(after.log, op);
      if (known === undefined || entry === undefined) continue;
      const digest = entryDigest(entry);
      if (digest !== known.digest) {
        this.report({
          kind: 'committed_lost',
          replica,
          tick,
          message:
            `replica ${replica} became primary of view ${after.view} with a different entry at committed op ${op}: ` +
            `committed ${short(known.digest)} (by replica ${known.replica}), primary holds ${short(digest)}`,
        });
        return;
      }
    }
  }

  // ---- (g) ---------------------------------------------------------------------------------

  #checkRecoveringVotes({ replica, tick, before, after, effects }: StepObservation): void {
    if (!stateless(before.status) && !stateless(after.status)) return;
    // Recovered within this step (the simulator steps a recovering replica one input at a
    // time): acknowledging what it now holds, in the view it recovered into, is not a vote
    // cast while recovering (src/vr/recovery.ts sends it as an extension).
    const recovered = stateless(before.status) && after.status === 'normal';
    for (const effect of effects) {
      if (effect.type !== 'send' || !votes.has(effect.message.type)) continue;
      const message = effect.message;
      if (recovered && message.type === 'prepare_ok' && message.view === after.view && message.op <= after.op) continue;
      this.report({
        kind: 'recovering_vote',
        replica,
        tick,
        message: `replica ${replica} went ${before.status} -> ${after.status} and sent ${message.type} to ${effect.to}: ${short(canonical(message))}`,
      });
      return;
    }
  }

  // ---- (e) ---------------------------------------------------------------------------------

  #checkReplies({ replica, tick, before, after, inputs, effects }: StepObservation): void {
    // README rule 22: a read a primary answers without logging it is in no entry; it is known
    // as a read by the request that arrived.
    for (const input of inputs) {
      if (input.type === 'receive' && input.message.type === 'request' && input.message.op.type === 'tree' && !isWriteOp(input.message.op.op)) {
        this.#readRequests.add(`${input.message.clientId}#${input.message.requestNum}`);
        this.#readFloors.set(`${replica}:${input.message.clientId}#${input.message.requestNum}`, { op: this.#maxAcknowledgedWrite, tick });
      }
    }
    for (const effect of effects) {
      if (effect.type !== 'reply') continue;
      const message = effect.message;
      if (message.clientId !== effect.clientId) {
        this.report({ kind: 'reply', replica, tick, message: `replica ${replica} sent an answer for client ${message.clientId} to client ${effect.clientId}` });
        continue;
      }
      if (message.type !== 'reply') continue;
      const body = message.body;
      const key = `${message.clientId}#${message.requestNum}`;
      if (body.type === 'stale_request') {
        if (body.lastRequestNum <= message.requestNum) {
          this.report({ kind: 'reply', replica, tick, message: `replica ${replica} answered ${key} stale_request naming last request ${body.lastRequestNum}, not a later one` });
        }
        continue;
      }
      // Nothing ran now: a registration's answer, or the session is unknown.
      if (body.type === 'registered' || body.type === 'session_expired') continue;
      if (body.type === 'tree' && message.op > after.commit) {
        this.report({
          kind: 'reply',
          replica,
          tick,
          message: `replica ${replica} replied to ${key} with op ${message.op} beyond its commit ${after.commit}`,
        });
      }
      if (body.type === 'tree' && this.#isReadAt(message.clientId, message.requestNum, message.op, before, after)) {
        const floor = this.#readFloors.get(`${replica}:${key}`);
        if (floor !== undefined && message.op < floor.op) {
          this.report({
            kind: 'reply',
            replica,
            tick,
            message: `replica ${replica} answered the read ${key} at op ${message.op}, before op ${floor.op}: a write acknowledged before that read reached it (at tick ${floor.tick}) is missing from the answer`,
          });
        }
        // A read ran at this op (again, if it was retried): one body per execution.
        const at = `${key}@${message.op}`;
        const first = this.#readReplies.get(at);
        if (first === undefined) {
          this.#readReplies.set(at, { body, replica, tick });
        } else if (!deepEqual(first.body, body)) {
          this.report({
            kind: 'reply',
            replica,
            tick,
            message: `two different replies to the read ${key} executed at op ${message.op}: replica ${first.replica} at tick ${first.tick} sent ${short(canonical(first.body))}, replica ${replica} sent ${short(canonical(body))}`,
          });
        }
        continue;
      }
      // A write's reply: acknowledged from now on (reads that arrive later must see it).
      if (message.op > this.#maxAcknowledgedWrite) this.#maxAcknowledgedWrite = message.op;
      const known = this.#replies.get(key);
      if (known === undefined) {
        this.#replies.set(key, { body, op: message.op, replica, tick });
      } else if (!deepEqual(known.body, body) || known.op !== message.op) {
        this.report({
          kind: 'reply',
          replica,
          tick,
          message:
            `two different replies to ${key}: replica ${known.replica} at tick ${known.tick} sent op ${known.op} ${short(canonical(known.body))}, ` +
            `replica ${replica} sent op ${message.op} ${short(canonical(body))}`,
        });
      }
    }
  }

  /** Whether the committed entry at `op` holds `clientId`'s request `requestNum` as a read-only tree op. */
  #isReadAt(clientId: string, requestNum: number, op: number, before: ReplicaState, after: ReplicaState): boolean {
    if (this.#readsAt.has(`${clientId}#${requestNum}@${op}`)) return true;
    if (this.#readRequests.has(`${clientId}#${requestNum}`)) return true;
    // Not recorded: the entry may have been committed and truncated within this very step.
    const entry = entryAt(after.log, op) ?? entryAt(before.log, op);
    if (entry === undefined || entry.op !== op) return false;
    return entry.requests.some((request) => request.clientId === clientId && request.requestNum === requestNum && request.op.type === 'tree' && !isWriteOp(request.op.op));
  }

  // ---- (f) ---------------------------------------------------------------------------------

  #checkApplied({ replica, tick, before, after }: StepObservation): void {
    if (after.machine === before.machine || after.status === 'stopped') return;
    const appliedOp = after.machine.appliedOp;
    const known = this.#applied.get(appliedOp);
    if (known === undefined) {
      this.#applied.set(appliedOp, { machine: after.machine, replica, tick });
      return;
    }
    const difference = machineDifference(known.machine, after.machine);
    if (difference !== null) {
      this.report({
        kind: 'applied_state',
        replica,
        tick,
        message:
          `replicas ${known.replica} (tick ${known.tick}) and ${replica} applied up to op ${appliedOp} but hold different ${difference}: ` +
          `checkpoint digests ${machineDigest(known.machine).slice(0, 12)} vs ${machineDigest(after.machine).slice(0, 12)}`,
      });
    }
  }
}

/**
 * Null when the two machines hold the same tree, client table and lease table, else what
 * differs. Cheap: structural comparison that stops at shared subtrees, instead of encoding both.
 */
export function machineDifference(a: Machine, b: Machine): string | null {
  if (a === b) return null;
  if (a.appliedOp !== b.appliedOp) return 'applied ops';
  if (!treesEqual(a.tree, b.tree)) return 'trees';
  if (a.clients !== b.clients) {
    if (a.clients.size !== b.clients.size) return 'client tables (sizes)';
    // In order: the LRU order decides which sessions expire next, so it is replicated state too.
    const others = b.clients.entries();
    let position = 0;
    for (const [clientId, record] of a.clients.entries()) {
      const next = others.next();
      if (next.done === true) return 'client tables (sizes)';
      const [otherId, other] = next.value;
      if (otherId !== clientId) return `client tables (order at position ${position}: ${clientId} vs ${otherId})`;
      if (!deepEqual(record, other)) return `client tables (client ${clientId})`;
      position += 1;
    }
  }
  return a.leases === b.leases ? null : leaseTableDifference(a.leases, b.leases);
}

/**
 * Null when two lease tables hold the same replicated fields (those of their checkpoint terms:
 * clock, next id, each lease's owner, TTL, renewal op, count start and nodes), else what differs.
 */
export function leaseTableDifference(a: LeaseTable, b: LeaseTable): string | null {
  if (a.clock !== b.clock || a.nextId !== b.nextId) return `lease tables (clock ${a.clock} vs ${b.clock}, next id ${a.nextId} vs ${b.nextId})`;
  if (a.leases.size !== b.leases.size) return `lease tables (${a.leases.size} vs ${b.leases.size} leases)`;
  for (const [id, left] of a.leases) {
    const right = b.leases.get(id);
    const same =
      right !== undefined &&
      (left === right ||
        (left.owner === right.owner && left.ttlMs === right.ttlMs && left.ttlTicks === right.ttlTicks && left.renewedOp === right.renewedOp && left.countFrom === right.countFrom && left.nodes.equals(right.nodes)));
    if (!same) return `lease tables (lease ${id}: ${leaseTerm(a, id)} vs ${leaseTerm(b, id)})`;
  }
  return null;
}

/** One lease of a table as its checkpoint term (for reports). */
function leaseTerm(table: LeaseTable, id: number): string {
  const [, , leases] = leaseTerms(table);
  return short(canonical(leases.find((term) => term[0] === id) ?? null));
}
