/**
 * Leases, ephemeral and sequential nodes, a lock and an election in the simulator (src/vr
 * README rule 21): client processes beside the workload's that use them through the product's
 * session hosts, and the checkers that judge the committed history they leave.
 *
 * Clients. Each is a session host of its own (`lh0`, `lk0`, `le0`, ...; two sessions: one for
 * its main flow, one for keep-alives), so its sessions `lk0.1`, `lk0.2` are one lease owner.
 * - holders (`lhN`) grant leases with TTLs drawn per seed, hang ephemeral nodes on them, plain
 *   and sequential, under `/leases/<lease id>/`, and keep some alive by periodic keep-alives
 *   (now and then naming an old lease too, which must come back not alive), let others lapse
 *   (no keep-alive at all, or they stop), and revoke some;
 * - lock contenders (`lkN`) run the ZooKeeper lock recipe with raw ops (src/coord's shell
 *   recipe uses real timers): a lease and its keep-alives, a sequential ephemeral
 *   `/lock/L/lock-`, then `list /lock/L` until their node is the lowest; holding, they write the
 *   fenced register: multi_cas guards [{path: own node, version: 0}] ops [blob_put /lockreg/R
 *   value = token]; then they release (delete the node), revoke the lease, or vanish (stop
 *   keeping it alive: a crashed client, whose node only the lease's expiry removes);
 * - candidates (`leN`) run the same recipe on `/elect/E/cand-`; the leader writes
 *   `/elecreg/E` the same way now and then through its term, then resigns (revoke) or vanishes.
 * The token is the create's committed op, with the node's sequence number as a tiebreak
 * (`op.seq`): two creates batched into one log entry share the op, so the op alone would give
 * two holders one token. A create whose answer never came may have made a node nobody knows:
 * the client revokes its lease (which deletes it) and starts over with a new one.
 * The workload never touches these top-level components (`leaseComponents`), and the
 * linearizability model leaves them out: expiry deletes nodes with no client op.
 *
 * Checkers, from the committed log: every replica step reports its commit number (the first
 * global tick at which any replica's commit reached each op is recorded) and the committed
 * entries its log holds; the log is replayed request by request with the core's own
 * `applyEntry` (writes in request order, then reads, as the core applies an entry; sessions
 * expired at checkpoint ops), and the replayed machine is compared with every replica's
 * machine at the same op (tree, client table, lease table), so the replay is the history the
 * replicas applied.
 * - never early: a lease_clock entry that ends a lease is first committed at least ttlTicks
 *   after its last renewal (grant or keep-alive) was first committed, in global ticks, across
 *   primary changes; the lease's ephemeral nodes are gone in that same op;
 * - the clock: with each primary's proposals seen as they are made (the tick a primary makes a
 *   lease_clock request, its ticks measured), every committed lease_clock entry counts no
 *   more ticks than passed since the previous committed one was proposed (a primary counts from
 *   its previous proposal, a new one from its takeover, which follows every entry it adopted),
 *   and its `through` op was committed by the tick its interval began (its proposal tick minus
 *   its ticks). These judge the clock to the tick whatever the commit latency, which the
 *   expiry check above must allow for (an entry commits ticks after its proposal);
 * - not forever (liveness phase, from the tick the cluster was healed): a lease whose last
 *   renewal committed at tick R is gone by max(R, healed) + ttlTicks + leaseClockTicks +
 *   `expiryBoundTicks` (3 x (viewChangeTimeoutTicks + viewChangeJitterTicks): time for a view
 *   change, whose new primary counts only from its takeover, plus commit latency);
 * - fencing: every fenced write that succeeded did so at an op where the writer's node was the
 *   lowest child of the contended directory (mutual exclusion; checked on the tree just before
 *   that request), its token is that node's (create op, sequence), and per register the tokens
 *   strictly increase across distinct holders in op order (one token, one node: never two
 *   leaders in one term);
 * - keep-alive answers agree with the log: `alive` true only for a lease not yet ended at the
 *   answer's op, false only for one that had ended;
 * - lease tables agree across replicas at equal applied op (./checkers.ts (f) compares them).
 * The clients and their hosts draw from the lease stream only (forked after every other), so
 * with `--no-leases` a seed runs exactly as it did before they existed.
 */

import { assertNever } from '../../src/base/assert.ts';
import type { CallOutcome } from '../../src/client/io.ts';
import type { Lease, LeaseTable } from '../../src/tree/leases.ts';
import { lookup, type Tree } from '../../src/tree/lookup.ts';
import type { NodeType } from '../../src/tree/node_type.ts';
import { isLeaseOp, isWriteOp, type OpOutcome, type TreeOp } from '../../src/tree/ops.ts';
import { primaryOf, type ReplicaConfig } from '../../src/vr/config.ts';
import { entryAt } from '../../src/vr/log.ts';
import type { LogEntry, Request } from '../../src/vr/messages.ts';
import type { ReplicaState } from '../../src/vr/state.ts';
import { applyEntry, emptyMachine, expireAtCheckpoint, type AppliedReply, type Machine } from '../../src/vr/state_machine.ts';
import { machineDifference } from './checkers.ts';
import type { CallRecord } from './cluster.ts';
import { Prng } from './prng.ts';
import { opComponents } from './tree_model.ts';

// ---- options -------------------------------------------------------------------------------

/** Top-level components only lease clients touch (left out of the linearizability check). */
export const leaseComponents: readonly string[] = ['leases', 'lock', 'lockreg', 'elect', 'elecreg'];

const lockDir = '/lock/L';
const lockRegister = '/lockreg/R';
const electDir = '/elect/E';
const electRegister = '/elecreg/E';
/** Contended directory by fenced register. */
const contended: ReadonlyMap<string, string> = new Map([
  [lockRegister, lockDir],
  [electRegister, electDir],
]);

export type LeaseSimOptions = {
  /** Seeds the clients' PRNG (independent of every other stream of the run). */
  readonly seed: number;
  readonly holders: number;
  readonly lockers: number;
  readonly candidates: number;
  /** A lease's TTL is drawn in [ttlTicksMin, ttlTicksMax] ticks (its ttlMs rounds up to that). */
  readonly ttlTicksMin: number;
  readonly ttlTicksMax: number;
  /** The replicas' config.leaseClockTicks for the run. */
  readonly leaseClockTicks: number;
  /** A client starts at a tick in [0, startTicksMax]. */
  readonly startTicksMax: number;
  /** Contenders re-list every 10..pollTicksMax ticks. */
  readonly pollTicksMax: number;
  /** Keep-alives per TTL (the period is ttl / this). */
  readonly keepAlivesPerTtl: number;
  /** A holder lets a lease lapse without a single keep-alive. */
  readonly lapseProbability: number;
  /** A holder or contender ends by revoking its lease (else a holder lets it lapse, a lock holder deletes its node). */
  readonly revokeProbability: number;
  /** A contender vanishes (stops keeping its lease alive, forgets it) instead of releasing. */
  readonly vanishProbability: number;
  /** Judge each lease_clock entry against the ticks that passed (default true; off, only expiries are judged). */
  readonly clockChecks?: boolean;
};

export function leaseSimOptions(overrides: Partial<LeaseSimOptions> & { readonly seed: number }): LeaseSimOptions {
  return {
    holders: 2,
    lockers: 3,
    candidates: 2,
    ttlTicksMin: 30,
    ttlTicksMax: 150,
    leaseClockTicks: 20,
    startTicksMax: 100,
    pollTicksMax: 10,
    keepAlivesPerTtl: 3,
    lapseProbability: 0.3,
    revokeProbability: 0.3,
    vanishProbability: 0.2,
    ...overrides,
  };
}

/**
 * Draws a seed's lease options (swarm testing, like the rest of a VOPR seed) for a group of
 * `replicaCount` replicas (the seed's draw, read, not drawn again).
 */
export function drawLeaseSimOptions(prng: Prng, replicaCount: number): LeaseSimOptions {
  const ttlTicksMin = prng.pick([40, 60]);
  return {
    seed: prng.next(),
    holders: 1,
    lockers: 2,
    candidates: prng.range(1, 2),
    ttlTicksMin,
    ttlTicksMax: prng.pick([ttlTicksMin, 150, 300]),
    // 2 in a one-replica group: a clock entry every other tick, committed at once, so the check
    // judges an expiry to the tick (no slack at all for half of them). Larger groups take ticks
    // to commit any entry, so there a short interval would only cost entries: the default 20.
    leaseClockTicks: replicaCount === 1 ? prng.pick([2, 20]) : 20,
    startTicksMax: prng.pick([10, 300]),
    pollTicksMax: prng.pick([30, 60]),
    keepAlivesPerTtl: 2,
    lapseProbability: prng.pick([0.1, 0.4]),
    revokeProbability: prng.pick([0.2, 0.5]),
    vanishProbability: prng.pick([0.1, 0.3]),
  };
}

/**
 * How late (beyond ttlTicks + leaseClockTicks) a lease may expire in a healthy cluster: a view
 * change (a timeout with its jitter, and the new primary counts only from its takeover), three
 * times over, which covers commit latency too.
 */
export function expiryBoundTicks(config: ReplicaConfig): number {
  return 3 * (config.viewChangeTimeoutTicks + config.viewChangeJitterTicks);
}

// ---- the committed log, replayed ---------------------------------------------------------

/** How a lease ended, and at which op. */
export type LeaseEnd = { readonly op: number; readonly how: 'expired' | 'revoked' };

export type LedgerStats = {
  grants: number;
  keepAlives: number;
  revokes: number;
  expiries: number;
  /** Expiries by a lease_clock entry of a later view than the lease's last renewal (a primary change in between). */
  expiriesAcrossViews: number;
  /** Least (expiry commit tick − renewal commit tick − ttlTicks) over expiries (null: none). */
  expirySlackMin: number | null;
  clockEntries: number;
  /** Views whose primary's lease_clock entries committed. */
  clockViews: number;
  /** Committed lease_clock entries whose proposal was seen (judged by the clock checks). */
  clockJudged: number;
  ephemeralCreates: number;
  sequentialCreates: number;
  /** Fenced writes that succeeded, and distinct holders (tokens) seen, per register. */
  lockWrites: number;
  lockHolders: number;
  electWrites: number;
  leaderTerms: number;
  /** Replica machines compared with the replay. */
  compared: number;
};

type Token = { readonly op: number; readonly seq: number };

/** A node's sequence number: the 10 digits a sequential create appends. */
export function sequenceOf(path: string): number {
  return Number(path.slice(-10));
}

function tokenText(token: Token): string {
  return `${token.op}.${token.seq}`;
}

export function encodeToken(token: Token): Uint8Array {
  return new TextEncoder().encode(tokenText(token));
}

function decodeToken(bytes: Uint8Array): Token | null {
  const match = /^(\d+)\.(\d+)$/.exec(new TextDecoder().decode(bytes));
  return match === null ? null : { op: Number(match[1]), seq: Number(match[2]) };
}

function compareTokens(a: Token, b: Token): number {
  return a.op - b.op || a.seq - b.seq;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

/** Children names of a directory in `tree` (empty when it is missing). */
function childNames(tree: Tree, path: string): string[] {
  const found = lookup(tree, path);
  if (!found.ok || found.node.type !== 'directory') return [];
  return Array.from(found.node.children.keys());
}

/** Whether a logged request concerns the lease checks: a lease_clock, or a lease client's tree op. */
function concernsLeases(request: Request): boolean {
  const op = request.op;
  if (op.type === 'lease_clock') return true;
  if (op.type !== 'tree') return false;
  return isLeaseOp(op.op) || opComponents(op.op).some((component) => leaseComponents.includes(component));
}

/** Whether `op` is a fenced register write (one guard on a contender's node, one blob_put to a register). */
function fencedWrite(op: TreeOp): { readonly node: string; readonly register: string; readonly value: Uint8Array } | null {
  if (op.type !== 'multi_cas' || op.guards.length !== 1 || op.ops.length !== 1) return null;
  const guard = op.guards[0];
  const put = op.ops[0];
  if (guard === undefined || put === undefined || put.type !== 'blob_put' || !contended.has(put.path)) return null;
  return { node: guard.path, register: put.path, value: put.value };
}

/** Replayed ops compared with a replica's machine: one in this many. */
const compareEvery = 8;

/**
 * The committed log as it is learnt (commit numbers and entries, in any order), replayed in op
 * order with the core's own apply, and the checks on it (see the file comment).
 */
export class LeaseLedger {
  readonly #config: ReplicaConfig;
  readonly #report: (message: string) => void;
  /** commitTicks[op]: the first tick at which some replica's commit number reached op. */
  readonly #commitTicks: number[] = [0];
  #machine: Machine = emptyMachine();
  /** Committed entries learnt ahead of the replay. */
  readonly #ahead = new Map<number, LogEntry>();
  /** Replayed machines of recent ops, and replica machines seen ahead of the replay, for the cross-check. */
  readonly #replayed = new Map<number, Machine>();
  readonly #seenAhead = new Map<number, { readonly machine: Machine; readonly replica: number }>();
  readonly #compared = new Set<number>();
  readonly ends = new Map<number, LeaseEnd>();
  /** Sequential nodes made in contended directories: path -> token. */
  readonly #created = new Map<string, Token>();
  /** Per register: the last successful fenced write's node and token. */
  readonly #lastWrite = new Map<string, { readonly node: string; readonly token: Token; readonly op: number }>();
  readonly #holders = new Map<string, Set<string>>();
  /** The view of each replayed entry (index: op), and the views of committed lease_clock entries. */
  readonly #views: number[] = [0];
  readonly #clockViews = new Set<number>();
  /** `${view}:${op}` -> the tick the primary of view made the lease_clock request it logged at op. */
  readonly #proposals = new Map<string, number>();
  /** The proposal tick of the last committed lease_clock entry replayed (0: none yet). */
  #lastClockProposal = 0;
  readonly stats: LedgerStats = {
    grants: 0,
    keepAlives: 0,
    revokes: 0,
    expiries: 0,
    expiriesAcrossViews: 0,
    expirySlackMin: null,
    clockEntries: 0,
    clockViews: 0,
    clockJudged: 0,
    ephemeralCreates: 0,
    sequentialCreates: 0,
    lockWrites: 0,
    lockHolders: 0,
    electWrites: 0,
    leaderTerms: 0,
    compared: 0,
  };
  /** Judge lease_clock entries against their proposals (see LeaseSimOptions.clockChecks). */
  readonly #clockChecks: boolean;

  constructor(config: ReplicaConfig, report: (message: string) => void, clockChecks = true) {
    this.#config = config;
    this.#report = report;
    this.#clockChecks = clockChecks;
  }

  /** The highest op any replica's commit number reached. */
  get maxCommit(): number {
    return this.#commitTicks.length - 1;
  }

  /** The op the replay has reached. */
  get replayedOp(): number {
    return this.#machine.appliedOp;
  }

  /** The lease table at the replayed op. */
  get leases(): LeaseTable {
    return this.#machine.leases;
  }

  /** Some replica's commit number is `commit` at `tick` (ticks never go back). */
  commitReached(commit: number, tick: number): void {
    while (this.#commitTicks.length <= commit) this.#commitTicks.push(tick);
  }

  /** The primary of `view` logged at `op` a lease_clock request it made at `tick` (the first report counts). */
  proposed(view: number, op: number, tick: number): void {
    const key = `${view}:${op}`;
    if (!this.#proposals.has(key)) this.#proposals.set(key, tick);
  }

  /** Whether entry `op` is still needed by the replay. */
  wants(op: number): boolean {
    return op > this.replayedOp && !this.#ahead.has(op);
  }

  /** A committed entry; replayed once every entry before it is known. */
  committed(entry: LogEntry): void {
    if (!this.wants(entry.op)) return;
    this.#ahead.set(entry.op, entry);
    for (let next = this.#ahead.get(this.replayedOp + 1); next !== undefined; next = this.#ahead.get(this.replayedOp + 1)) {
      this.#ahead.delete(next.op);
      this.#replay(next);
    }
  }

  /**
   * A replica's machine: compared with the replay at its op, now or once the replay gets there.
   * One op in `compareEvery` (a full comparison walks both trees: they share no structure).
   */
  replicaMachine(replica: number, machine: Machine): void {
    const op = machine.appliedOp;
    if (op === 0 || op % compareEvery !== 0 || this.#compared.has(op)) return;
    const replayed = this.#replayed.get(op);
    if (replayed !== undefined) this.#compare(op, replayed, machine, replica);
    else if (op > this.replayedOp && !this.#seenAhead.has(op)) this.#seenAhead.set(op, { machine, replica });
  }

  /**
   * Liveness: the first lease still alive past its deadline (see the file comment) at `now`,
   * described, or null.
   */
  overdue(now: number, healedAt: number, boundTicks: number): string | null {
    for (const lease of this.#machine.leases.leases.values()) {
      const deadline = this.deadline(lease, healedAt, boundTicks);
      if (now > deadline) {
        const renewed = this.#commitTicks[lease.renewedOp] ?? 0;
        return (
          `lease ${lease.id} (owner ${lease.owner}, ttl ${lease.ttlTicks} ticks) is still alive at tick ${now} (op ${this.replayedOp}): ` +
          `its last renewal, op ${lease.renewedOp}, committed at tick ${renewed}; healed at tick ${healedAt}; deadline ${deadline} = ` +
          `max(renewal, healed) + ttl + leaseClockTicks ${this.#config.leaseClockTicks} + bound ${boundTicks}; lease clock ${this.#machine.leases.clock}, ` +
          `counting from ${lease.countFrom === null ? 'not yet' : lease.countFrom}`
        );
      }
    }
    return null;
  }

  /** The tick by which `lease` must be gone in a cluster healed at `healedAt`. */
  deadline(lease: Lease, healedAt: number, boundTicks: number): number {
    const renewed = this.#commitTicks[lease.renewedOp] ?? 0;
    return Math.max(renewed, healedAt) + lease.ttlTicks + this.#config.leaseClockTicks + boundTicks;
  }

  /** Keep-alive answers against the log: `alive[i]` for `ids[i]` at op `op`. */
  checkKeepAlive(clientId: string, op: number, ids: readonly number[], alive: readonly boolean[]): void {
    ids.forEach((id, i) => {
      const end = this.ends.get(id);
      // An end in the same entry may come before or after the keep-alive: either answer holds.
      if (end !== undefined && end.op === op) return;
      const ended = end !== undefined && end.op < op;
      if (alive[i] === ended) {
        this.#report(`${clientId}'s keep-alive committed at op ${op} answered lease ${id} ${alive[i] === true ? 'alive' : 'not alive'}, but the log ${end === undefined ? 'never ended it' : `${end.how} it at op ${end.op}`}`);
      }
    });
  }

  // ---- replay ----------------------------------------------------------------------------

  #replay(entry: LogEntry): void {
    const op = entry.op;
    this.#views[op] = entry.view;
    if (entry.requests.some(concernsLeases)) {
      const isRead = (request: Request): boolean => request.op.type === 'tree' && !isWriteOp(request.op.op);
      // The core applies an entry's writes in request order, then its reads (README rule 19):
      // one request at a time, the same, with the machine between them to look at.
      const ordered = [...entry.requests.filter((request) => !isRead(request)), ...entry.requests.filter(isRead)];
      for (const request of ordered) {
        const before = this.#machine;
        const replies: AppliedReply[] = [];
        this.#machine = applyEntry(before, { op, view: entry.view, requests: [request] }, this.#config, replies);
        this.#observe(op, request, before, this.#machine, replies[0]);
      }
    } else {
      // Nothing here for the checks (the workload's requests): applied whole, which is cheaper.
      this.#machine = applyEntry(this.#machine, entry, this.#config, []);
    }
    if (op % this.#config.checkpointIntervalOps === 0) this.#machine = expireAtCheckpoint(this.#machine, this.#config);
    if (op % compareEvery === 0) {
      this.#replayed.set(op, this.#machine);
      this.#replayed.delete(op - 256 * compareEvery);
    }
    const seen = this.#seenAhead.get(op);
    if (seen !== undefined) {
      this.#seenAhead.delete(op);
      this.#compare(op, this.#machine, seen.machine, seen.replica);
    }
  }

  #compare(op: number, replayed: Machine, machine: Machine, replica: number): void {
    this.#compared.add(op);
    this.stats.compared += 1;
    const difference = machineDifference(replayed, machine);
    if (difference !== null) this.#report(`the replayed committed log and replica ${replica} differ at op ${op}: ${difference}`);
  }

  #observe(op: number, request: Request, before: Machine, after: Machine, reply: AppliedReply | undefined): void {
    const requestOp = request.op;
    switch (requestOp.type) {
      case 'register':
        return;
      case 'lease_clock':
        this.stats.clockEntries += 1;
        this.#clockViews.add(this.#views[op] ?? 0);
        this.stats.clockViews = this.#clockViews.size;
        this.#clock(op, requestOp.elapsedTicks, requestOp.through);
        this.#expiries(op, before, after);
        return;
      case 'tree': {
        // Only a request that ran now: a retry answered from the client table ran earlier.
        const record = before.clients.get(request.clientId);
        if (record === undefined || request.requestNum <= record.requestNum) return;
        const outcome = reply !== undefined && reply.body.type === 'tree' ? reply.body.outcome : null;
        if (outcome !== null) this.#treeRequest(op, request.clientId, requestOp.op, outcome, before, after);
        return;
      }
      default:
        assertNever(requestOp, 'request op');
    }
  }

  #treeRequest(op: number, clientId: string, treeOp: TreeOp, outcome: OpOutcome, before: Machine, after: Machine): void {
    if (outcome.type === 'error') return;
    switch (treeOp.type) {
      case 'lease_grant':
        this.stats.grants += 1;
        return;
      case 'lease_keepalive':
        this.stats.keepAlives += 1;
        return;
      case 'lease_revoke': {
        this.stats.revokes += 1;
        this.ends.set(treeOp.id, { op, how: 'revoked' });
        this.#nodesGone(op, before.leases.leases.get(treeOp.id), after.tree, 'revoked');
        return;
      }
      case 'create': {
        if (treeOp.lease !== undefined) this.stats.ephemeralCreates += 1;
        if (treeOp.sequential !== true || outcome.type !== 'ok' || outcome.path === undefined) return;
        this.stats.sequentialCreates += 1;
        const made = outcome.path;
        if (parentOf(made) === lockDir || parentOf(made) === electDir) this.#created.set(made, { op, seq: sequenceOf(made) });
        return;
      }
      case 'multi_cas': {
        const fenced = fencedWrite(treeOp);
        if (fenced !== null && outcome.type === 'txn') this.#fenced(op, clientId, fenced, before.tree);
        return;
      }
      default:
        return;
    }
  }

  /** A committed lease_clock entry against the ticks that passed (see the file comment). */
  #clock(op: number, elapsedTicks: number, through: number): void {
    const view = this.#views[op] ?? 0;
    const proposedAt = this.#proposals.get(`${view}:${op}`);
    this.#proposals.delete(`${view}:${op}`);
    if (proposedAt === undefined || !this.#clockChecks) return;
    this.stats.clockJudged += 1;
    const previous = this.#lastClockProposal;
    this.#lastClockProposal = proposedAt;
    const where = `the lease_clock entry at op ${op} (view ${view}, proposed at tick ${proposedAt}, ${elapsedTicks} ticks through op ${through})`;
    if (previous > 0 && elapsedTicks > proposedAt - previous) {
      this.#report(`${where} counts more ticks than passed since the previous committed one was proposed at tick ${previous}: the lease clock runs fast`);
      return;
    }
    const throughAt = this.#commitTicks[through] ?? Number.POSITIVE_INFINITY;
    if (throughAt > proposedAt - elapsedTicks) {
      this.#report(`${where}: op ${through} was first committed at tick ${throughAt}, after its interval began at tick ${proposedAt - elapsedTicks}: renewals up to it count ticks from before they committed`);
    }
  }

  /** A lease_clock entry: every lease it ended, against its last renewal's commit tick. */
  #expiries(op: number, before: Machine, after: Machine): void {
    const expiredAt = this.#commitTicks[op] ?? Number.POSITIVE_INFINITY;
    for (const [id, lease] of before.leases.leases) {
      if (after.leases.leases.has(id)) continue;
      this.stats.expiries += 1;
      if ((this.#views[lease.renewedOp] ?? 0) !== (this.#views[op] ?? 0)) this.stats.expiriesAcrossViews += 1;
      this.ends.set(id, { op, how: 'expired' });
      const renewedAt = this.#commitTicks[lease.renewedOp] ?? Number.POSITIVE_INFINITY;
      const slack = expiredAt - renewedAt - lease.ttlTicks;
      this.stats.expirySlackMin = this.stats.expirySlackMin === null ? slack : Math.min(this.stats.expirySlackMin, slack);
      if (slack < 0) {
        this.#report(
          `lease ${id} (owner ${lease.owner}, ttl ${lease.ttlMs} ms = ${lease.ttlTicks} ticks) expired early: the lease_clock entry at op ${op} that ended it was first committed at tick ${expiredAt}, ` +
            `${expiredAt - renewedAt} ticks after its last renewal (op ${lease.renewedOp}) was first committed at tick ${renewedAt}`,
        );
      }
      this.#nodesGone(op, lease, after.tree, 'expired');
    }
  }

  /** An ended lease's ephemeral nodes are gone in the op that ended it. */
  #nodesGone(op: number, lease: Lease | undefined, tree: Tree, how: string): void {
    if (lease === undefined) return;
    for (const path of lease.nodes) {
      if (lookup(tree, path).ok) this.#report(`lease ${lease.id} ${how} at op ${op}, but its ephemeral node ${path} still exists after that op`);
    }
  }

  /** A fenced write that succeeded at `op`: mutual exclusion, its token, token order. */
  #fenced(op: number, clientId: string, write: { readonly node: string; readonly register: string; readonly value: Uint8Array }, tree: Tree): void {
    const dir = contended.get(write.register) as string;
    const kind = write.register === lockRegister ? 'lock' : 'election';
    if (kind === 'lock') this.stats.lockWrites += 1;
    else this.stats.electWrites += 1;
    const where = `${clientId}'s fenced write of ${write.register} at op ${op} (guard ${write.node})`;
    if (parentOf(write.node) !== dir) {
      this.#report(`${where}: the guarded node is not a child of ${dir}`);
      return;
    }
    const names = childNames(tree, dir);
    const lowest = names.reduce<string | null>((low, name) => (low === null || sequenceOf(name) < sequenceOf(low) ? name : low), null);
    if (lowest !== baseName(write.node)) {
      this.#report(`${where}: mutual exclusion broken: the writer's node is not the lowest child of ${dir} (children ${names.sort().join(', ') || 'none'})`);
      return;
    }
    const token = decodeToken(write.value);
    const created = this.#created.get(write.node);
    if (token === null || created === undefined || compareTokens(token, created) !== 0) {
      this.#report(`${where}: token ${new TextDecoder().decode(write.value)} is not its node's (create op and sequence ${created === undefined ? 'unknown' : tokenText(created)})`);
      return;
    }
    const last = this.#lastWrite.get(write.register);
    if (last !== undefined) {
      const order = compareTokens(token, last.token);
      if (last.node === write.node ? order !== 0 : order <= 0) {
        this.#report(`${where}: token ${tokenText(token)} after ${tokenText(last.token)} written by the holder of ${last.node} at op ${last.op}: tokens must strictly increase across holders`);
        return;
      }
    }
    this.#lastWrite.set(write.register, { node: write.node, token, op });
    let holders = this.#holders.get(write.register);
    if (holders === undefined) {
      holders = new Set();
      this.#holders.set(write.register, holders);
    }
    holders.add(write.node);
    this.stats.lockHolders = this.#holders.get(lockRegister)?.size ?? 0;
    this.stats.leaderTerms = this.#holders.get(electRegister)?.size ?? 0;
  }
}

// ---- clients -----------------------------------------------------------------------------

/** What the clients need of the cluster. */
export type LeaseHost = {
  readonly now: number;
  readonly config: ReplicaConfig;
  /** Starts a call on client process `clientId` (a session host). */
  call(clientId: string, op: TreeOp): CallRecord;
  /** Records a violation (kind `lease`). */
  report(message: string): void;
};

/**
 * One strand of a client: at most one call in flight, then what to do with its result; or a
 * wait, then what to do next. Once the sim settles, no new call starts.
 */
class Flow {
  readonly #sim: LeaseSim;
  readonly #clientId: string;
  #call: CallRecord | null = null;
  #then: ((result: CallOutcome, record: CallRecord) => void) | null = null;
  #wakeAt = Number.POSITIVE_INFINITY;
  #wake: (() => void) | null = null;

  constructor(sim: LeaseSim, clientId: string) {
    this.#sim = sim;
    this.#clientId = clientId;
  }

  call(op: TreeOp, then: (result: CallOutcome, record: CallRecord) => void): void {
    if (this.#sim.settling) return;
    this.#wake = null;
    this.#call = this.#sim.call(this.#clientId, op);
    this.#then = then;
  }

  after(ticks: number, next: () => void): void {
    this.#wakeAt = this.#sim.now + Math.max(1, ticks);
    this.#wake = next;
  }

  /** Runs what is due: a finished call's continuation, else a wait that is over. */
  poll(now: number): void {
    const call = this.#call;
    if (call !== null) {
      if (call.result === null) return;
      const then = this.#then as (result: CallOutcome, record: CallRecord) => void;
      this.#call = null;
      this.#then = null;
      then(call.result, call);
      return;
    }
    if (this.#wake !== null && now >= this.#wakeAt) {
      const wake = this.#wake;
      this.#wake = null;
      wake();
    }
  }
}

/** A lease as its client knows it. */
type HeldLease = { readonly id: number; readonly ttlTicks: number; keep: boolean; lost: boolean };

function outcomeOf(result: CallOutcome): OpOutcome | null {
  return result.type === 'done' ? result.outcome : null;
}

abstract class LeaseClient {
  readonly id: string;
  readonly sim: LeaseSim;
  readonly prng: Prng;
  readonly main: Flow;
  readonly keeper: Flow;
  lease: HeldLease | null = null;
  /** Leases this client held before (some still alive, most gone): named in keep-alives now and then. */
  readonly pastIds: number[] = [];

  constructor(sim: LeaseSim, id: string, prng: Prng, startAt: number) {
    this.sim = sim;
    this.id = id;
    this.prng = prng;
    this.main = new Flow(sim, id);
    this.keeper = new Flow(sim, id);
    this.main.after(startAt, () => this.begin());
  }

  abstract begin(): void;

  poll(now: number): void {
    this.keeper.poll(now);
    this.main.poll(now);
  }

  /** Grants a lease with a drawn TTL, then `next` (or retries later). */
  grant(next: () => void): void {
    const options = this.sim.options;
    const ttlTicks = this.prng.range(options.ttlTicksMin, options.ttlTicksMax);
    // Not always a whole number of ticks: the core rounds up.
    const ttlMs = ttlTicks * this.sim.config.tickMs - this.prng.int(this.sim.config.tickMs);
    this.main.call({ type: 'lease_grant', ttlMs }, (result) => {
      const outcome = outcomeOf(result);
      if (outcome?.type === 'lease') {
        this.lease = { id: outcome.id, ttlTicks, keep: false, lost: false };
        next();
        return;
      }
      // A grant with no answer may have run: that lease lapses, nobody keeps it alive.
      this.main.after(1 + this.prng.int(20), () => this.begin());
    });
  }

  /** Keeps `lease` alive every ttl / keepAlivesPerTtl ticks until it is dropped or found gone. */
  keepAlive(lease: HeldLease): void {
    lease.keep = true;
    const period = Math.max(1, Math.floor(lease.ttlTicks / this.sim.options.keepAlivesPerTtl));
    const again = (): void => {
      if (this.lease !== lease || !lease.keep || lease.lost) return;
      const ids = this.pastIds.length > 0 && this.prng.chance(0.2) ? [lease.id, this.prng.pick(this.pastIds)] : [lease.id];
      this.keeper.call({ type: 'lease_keepalive', ids }, (result) => {
        const outcome = outcomeOf(result);
        if (result.type === 'done' && outcome?.type === 'lease_kept') {
          this.sim.keepAliveAnswered(this.id, result.op, ids, outcome.alive);
          if (outcome.alive[0] !== true) lease.lost = true;
        }
        // Only for the lease still held: a newer one has its own keep-alives scheduled.
        if (this.lease === lease && lease.keep && !lease.lost) this.keeper.after(result.type === 'done' ? period : 1 + this.prng.int(5), again);
      });
    };
    this.keeper.after(period, again);
  }

  /** Forgets the current lease (keep-alives stop); `revoke`: ends it first, whatever the answer. */
  dropLease(revoke: boolean, next: () => void): void {
    const lease = this.lease;
    this.lease = null;
    if (lease === null) {
      next();
      return;
    }
    lease.keep = false;
    this.pastIds.push(lease.id);
    if (this.pastIds.length > 8) this.pastIds.shift();
    if (!revoke) {
      next();
      return;
    }
    this.main.call({ type: 'lease_revoke', id: lease.id }, () => next());
  }

  pause(): number {
    return this.prng.range(40, 200);
  }
}

/** Grants leases, hangs ephemeral nodes on them, keeps some alive, lets others lapse, revokes some. */
class Holder extends LeaseClient {
  begin(): void {
    this.grant(() => {
      const lease = this.lease as HeldLease;
      if (!this.prng.chance(this.sim.options.lapseProbability)) this.keepAlive(lease);
      this.#attach(lease, this.prng.int(4));
    });
  }

  #attach(lease: HeldLease, left: number): void {
    if (left === 0) {
      // Held for a while (kept alive or lapsing meanwhile), then revoked or let go.
      this.main.after(this.prng.range(Math.floor(lease.ttlTicks / 2), 3 * lease.ttlTicks), () => this.#end(lease));
      return;
    }
    const nodeType: NodeType = this.prng.pick(['blob', 'queue', 'set']);
    const sequential = this.prng.chance(0.5);
    const path = sequential ? `/leases/${lease.id}/s-` : `/leases/${lease.id}/e${this.prng.int(3)}`;
    this.main.call({ type: 'create', path, nodeType, lease: lease.id, ...(sequential ? { sequential: true } : {}) }, (result) => {
      const outcome = outcomeOf(result);
      if (outcome?.type === 'error' && (outcome.error.code === 'no_such_lease' || outcome.error.code === 'lease_not_owned')) lease.lost = true;
      this.#attach(lease, lease.lost ? 0 : left - 1);
    });
  }

  #end(lease: HeldLease): void {
    this.dropLease(!lease.lost && this.prng.chance(this.sim.options.revokeProbability), () => this.main.after(this.pause(), () => this.begin()));
  }
}

/** The lock recipe (`lock`) or the election (`elect`) with raw ops; see the file comment. */
class Contender extends LeaseClient {
  readonly kind: 'lock' | 'elect';
  readonly dir: string;
  readonly prefix: string;
  readonly register: string;
  node: { readonly path: string; readonly token: Token } | null = null;
  registerReady = false;

  constructor(sim: LeaseSim, id: string, prng: Prng, startAt: number, kind: 'lock' | 'elect') {
    super(sim, id, prng, startAt);
    this.kind = kind;
    this.dir = kind === 'lock' ? lockDir : electDir;
    this.prefix = kind === 'lock' ? 'lock-' : 'cand-';
    this.register = kind === 'lock' ? lockRegister : electRegister;
  }

  begin(): void {
    if (!this.registerReady) {
      this.main.call({ type: 'create', path: this.register, nodeType: 'blob' }, (result) => {
        const outcome = outcomeOf(result);
        if (outcome !== null && (outcome.type === 'ok' || (outcome.type === 'error' && outcome.error.code === 'already_exists'))) this.registerReady = true;
        this.main.after(1 + this.prng.int(5), () => this.begin());
      });
      return;
    }
    if (this.lease === null || this.lease.lost) {
      this.dropLease(false, () =>
        this.grant(() => {
          this.keepAlive(this.lease as HeldLease);
          this.#createNode();
        }),
      );
      return;
    }
    this.#createNode();
  }

  #createNode(): void {
    const lease = this.lease as HeldLease;
    this.main.call({ type: 'create', path: `${this.dir}/${this.prefix}`, nodeType: 'blob', lease: lease.id, sequential: true }, (result) => {
      const outcome = outcomeOf(result);
      if (result.type === 'done' && outcome?.type === 'ok' && outcome.path !== undefined) {
        this.node = { path: outcome.path, token: { op: result.op, seq: sequenceOf(outcome.path) } };
        this.#check();
        return;
      }
      if (outcome?.type === 'error') {
        // The lease is gone (or over a limit): start again with a new one.
        lease.lost = true;
        this.main.after(1, () => this.begin());
        return;
      }
      // No answer: a node may exist that this client cannot name. Revoking the lease deletes it.
      this.dropLease(true, () => this.main.after(this.pause(), () => this.begin()));
    });
  }

  /** Lists the directory: the lowest node holds; otherwise poll again. */
  #check(): void {
    const node = this.node;
    if (node === null) return;
    this.main.call({ type: 'list', path: this.dir, recursive: false }, (result) => {
      const outcome = outcomeOf(result);
      if (outcome?.type !== 'list') {
        this.main.after(this.#pollTicks(), () => this.#check());
        return;
      }
      const names = outcome.entries.map((entry) => entry.name);
      if (!names.includes(baseName(node.path))) {
        // Our node is gone: the lease ended (expired while keep-alives were late, or lost).
        this.#lost();
        return;
      }
      const lowest = names.reduce((low, name) => (sequenceOf(name) < sequenceOf(low) ? name : low));
      if (lowest === baseName(node.path)) this.#hold(this.kind === 'lock' ? this.prng.range(1, 2) : this.prng.range(1, 3));
      else this.main.after(this.#pollTicks(), () => this.#check());
    });
  }

  #pollTicks(): number {
    return this.prng.range(Math.min(10, this.sim.options.pollTicksMax), this.sim.options.pollTicksMax);
  }

  /** Holding: fenced writes of the register, `writes` of them, then release. */
  #hold(writes: number): void {
    const node = this.node;
    if (node === null) return;
    if (writes === 0) {
      this.#release();
      return;
    }
    const op: TreeOp = { type: 'multi_cas', guards: [{ path: node.path, version: 0 }], ops: [{ type: 'blob_put', path: this.register, value: encodeToken(node.token) }] };
    this.main.call(op, (result) => {
      const outcome = outcomeOf(result);
      if (outcome?.type === 'txn') {
        this.main.after(this.kind === 'lock' ? this.prng.range(1, 10) : this.prng.range(20, 60), () => this.#hold(writes - 1));
      } else if (outcome?.type === 'error') {
        // The guard failed: our node is gone, and with it the lock.
        this.#lost();
      } else {
        this.main.after(1 + this.prng.int(5), () => this.#hold(writes));
      }
    });
  }

  #release(): void {
    const node = this.node as { readonly path: string };
    const options = this.sim.options;
    const again = (): void => this.main.after(this.pause(), () => this.begin());
    if (this.prng.chance(options.vanishProbability)) {
      // A client that dies: nobody keeps its lease alive; its node goes when the lease expires.
      this.node = null;
      this.dropLease(false, () => this.main.after(this.prng.range(1, 200), () => this.begin()));
      return;
    }
    if (this.kind === 'elect' || this.prng.chance(options.revokeProbability)) {
      this.node = null;
      this.dropLease(true, again);
      return;
    }
    this.main.call({ type: 'delete', path: node.path }, (result) => {
      this.node = null;
      if (result.type === 'done') again();
      else this.dropLease(true, again);
    });
  }

  #lost(): void {
    this.node = null;
    if (this.lease !== null) this.lease.lost = true;
    this.main.after(1 + this.prng.int(5), () => this.begin());
  }
}

// ---- the sim -------------------------------------------------------------------------------

export type LeaseStats = LedgerStats & {
  clients: number;
  /** Calls the lease clients made. */
  calls: number;
};

/** The lease clients of one cluster run and the lease checkers. */
export class LeaseSim {
  readonly options: LeaseSimOptions;
  readonly ledger: LeaseLedger;
  readonly #host: LeaseHost;
  readonly #prng: Prng;
  readonly #clients: LeaseClient[] = [];
  /** Liveness phase: no new calls; leases must expire by their deadlines from `healedAt`. */
  settling = false;
  #healedAt: number | null = null;
  #calls = 0;
  #reported = false;

  constructor(options: LeaseSimOptions, host: LeaseHost) {
    this.options = options;
    this.#host = host;
    this.#prng = new Prng(options.seed);
    this.ledger = new LeaseLedger(host.config, (message) => this.#report(message), options.clockChecks ?? true);
    const add = (prefix: string, count: number, make: (id: string, prng: Prng, startAt: number) => LeaseClient): void => {
      for (let i = 0; i < count; i++) this.#clients.push(make(`${prefix}${i}`, this.#prng.fork(), this.#prng.int(options.startTicksMax + 1)));
    };
    add('lh', options.holders, (id, prng, startAt) => new Holder(this, id, prng, startAt));
    add('lk', options.lockers, (id, prng, startAt) => new Contender(this, id, prng, startAt, 'lock'));
    add('le', options.candidates, (id, prng, startAt) => new Contender(this, id, prng, startAt, 'elect'));
  }

  get clientIds(): readonly string[] {
    return this.#clients.map((client) => client.id);
  }

  get now(): number {
    return this.#host.now;
  }

  get config(): ReplicaConfig {
    return this.#host.config;
  }

  /** A seed for a client process's session host, from this stream. */
  hostSeed(): number {
    return this.#prng.next();
  }

  call(clientId: string, op: TreeOp): CallRecord {
    this.#calls += 1;
    return this.#host.call(clientId, op);
  }

  keepAliveAnswered(clientId: string, op: number, ids: readonly number[], alive: readonly boolean[]): void {
    this.#claims.push({ clientId, op, ids, alive });
  }

  /** lease_clock requests waiting in a primary's pending queue -> the tick they were made. */
  readonly #measured = new WeakMap<Request, number>();

  readonly #claims: { readonly clientId: string; readonly op: number; readonly ids: readonly number[]; readonly alive: readonly boolean[] }[] = [];

  /**
   * After every replica step: its commit number (the first tick each op was known committed),
   * the committed entries its log holds, and its machine for the replay's cross-check.
   */
  afterStep(replica: number, before: ReplicaState, after: ReplicaState, now: number): void {
    const ledger = this.ledger;
    if (after.status === 'stopped') return;
    ledger.commitReached(after.commit, now);
    if (after.status === 'normal' && primaryOf(after.view, after.config) === replica) {
      // First (a one-replica group commits an entry in the step that logs it): a lease_clock
      // request is made when the primary measures its ticks, at the front of its
      // pending requests, and usually logged in the same step; with the pipeline full it waits.
      const waiting = after.primary.pending.first();
      if (waiting !== undefined && waiting.op.type === 'lease_clock' && !this.#measured.has(waiting)) this.#measured.set(waiting, now);
      for (let op = Math.max(before.op, after.log.start) + 1; op <= after.op; op++) {
        const entry = entryAt(after.log, op);
        if (entry === undefined || entry.view !== after.view) continue;
        for (const request of entry.requests) if (request.op.type === 'lease_clock') ledger.proposed(entry.view, op, this.#measured.get(request) ?? now);
      }
    }
    if (after.status === 'normal' || after.status === 'view_change') {
      // An entry committed and truncated within this step is still in the log the step began
      // with, which holds the view's entries only when no view change, catching up or
      // recovery replaced it meanwhile.
      const sameLog = before.status === 'normal' && after.status === 'normal' && before.epoch === after.epoch && before.view === after.view && before.lastNormalView === before.view;
      const last = Math.min(after.commit, ledger.replayedOp + 512);
      for (let op = ledger.replayedOp + 1; op <= last; op++) {
        if (!ledger.wants(op)) continue;
        let entry = entryAt(after.log, op);
        if (entry === undefined && sameLog) entry = entryAt(before.log, op);
        if (entry !== undefined && entry.op === op) ledger.committed(entry);
      }
    }
    if (after.machine !== before.machine) ledger.replicaMachine(replica, after.machine);
  }

  /** Once per tick, after the replicas and clients: the clients go on; past healing, the deadlines. */
  tick(now: number): void {
    for (const client of this.#clients) client.poll(now);
    if (this.#healedAt !== null) {
      const overdue = this.ledger.overdue(now, this.#healedAt, expiryBoundTicks(this.config));
      if (overdue !== null) this.#report(`not forever: ${overdue}`);
    }
  }

  /** Liveness phase: the cluster is healed at `now`; clients start no more calls (their leases lapse). */
  settle(now: number): void {
    this.settling = true;
    this.#healedAt = now;
  }

  /** No lease is left at the replayed op. */
  allExpired(): boolean {
    return this.ledger.leases.size === 0;
  }

  /** Ticks from `now` to the last deadline of the leases left (0 when none). */
  ticksToLastDeadline(now: number): number {
    const healedAt = this.#healedAt ?? now;
    let last = now;
    for (const lease of this.ledger.leases.leases.values()) last = Math.max(last, this.ledger.deadline(lease, healedAt, expiryBoundTicks(this.config)));
    return last - now + 1;
  }

  /** End of run: the replay reached the highest commit, keep-alive answers agree with the log, no lease outlived its deadline. */
  finalCheck(): void {
    const ledger = this.ledger;
    if (ledger.replayedOp < ledger.maxCommit) {
      this.#report(`the replay of the committed log stopped at op ${ledger.replayedOp} of ${ledger.maxCommit}: entry ${ledger.replayedOp + 1} was never seen in a log`);
      return;
    }
    for (const claim of this.#claims) ledger.checkKeepAlive(claim.clientId, claim.op, claim.ids, claim.alive);
    if (this.#healedAt !== null) {
      const overdue = ledger.overdue(this.now, this.#healedAt, expiryBoundTicks(this.config));
      if (overdue !== null) this.#report(`not forever: ${overdue}`);
    }
  }

  stats(): LeaseStats {
    return { ...this.ledger.stats, clients: this.#clients.length, calls: this.#calls };
  }

  #report(message: string): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#host.report(message);
  }
}

export function addLeaseStats(a: LeaseStats, b: LeaseStats): LeaseStats {
  const slack = a.expirySlackMin === null ? b.expirySlackMin : b.expirySlackMin === null ? a.expirySlackMin : Math.min(a.expirySlackMin, b.expirySlackMin);
  const sum = (key: Exclude<keyof LeaseStats, 'expirySlackMin'>): number => a[key] + b[key];
  return {
    clients: sum('clients'),
    calls: sum('calls'),
    grants: sum('grants'),
    keepAlives: sum('keepAlives'),
    revokes: sum('revokes'),
    expiries: sum('expiries'),
    expiriesAcrossViews: sum('expiriesAcrossViews'),
    expirySlackMin: slack,
    clockEntries: sum('clockEntries'),
    clockViews: sum('clockViews'),
    clockJudged: sum('clockJudged'),
    ephemeralCreates: sum('ephemeralCreates'),
    sequentialCreates: sum('sequentialCreates'),
    lockWrites: sum('lockWrites'),
    lockHolders: sum('lockHolders'),
    electWrites: sum('electWrites'),
    leaderTerms: sum('leaderTerms'),
    compared: sum('compared'),
  };
}

export function formatLeaseStats(stats: LeaseStats): string {
  return (
    `clients ${stats.clients} calls ${stats.calls} grants ${stats.grants} keep-alives ${stats.keepAlives} revokes ${stats.revokes} ` +
    `expiries ${stats.expiries} (${stats.expiriesAcrossViews} across views, least slack ${stats.expirySlackMin ?? '-'} ticks) clock entries ${stats.clockEntries} (${stats.clockViews} views, ${stats.clockJudged} judged) ` +
    `ephemeral ${stats.ephemeralCreates} sequential ${stats.sequentialCreates} lock writes ${stats.lockWrites} holders ${stats.lockHolders} ` +
    `leader writes ${stats.electWrites} terms ${stats.leaderTerms} replay checks ${stats.compared}`
  );
}

export function formatLeaseOptions(options: LeaseSimOptions): string {
  return (
    `leaseClockTicks ${options.leaseClockTicks} ttl ${options.ttlTicksMin}..${options.ttlTicksMax} ticks holders ${options.holders} lockers ${options.lockers} ` +
    `candidates ${options.candidates} poll ..${options.pollTicksMax} keep-alives/ttl ${options.keepAlivesPerTtl} lapse ${options.lapseProbability} ` +
    `revoke ${options.revokeProbability} vanish ${options.vanishProbability}${options.clockChecks === false ? ' (clock checks off)' : ''}`
  );
}
