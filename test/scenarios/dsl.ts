/**
 * A small DSL for named scenario tests: a thin, readable layer over the deterministic simulator
 * (test/sim/cluster.ts) so that a scenario reads like its specification.
 *
 *   const t = scenario({ replicas: 3, seed: 1 });
 *   t.create('/k0', 'blob').done();
 *   t.isolate(0);
 *   t.runUntil('a new view forms', () => t.primary() === 1, 500);
 *   t.write('/k0', [1]).done();
 *   t.end(); // no checker found a violation, and the client history is linearizable
 *
 * Everything is deterministic: the seed fixes the network's and the replicas' randomness, and
 * nothing reads a clock. The scenario records every message put on the network (`t.sent`,
 * before loss or partitions decide its fate) and every message a replica actually received
 * (`t.received`), so tests can assert on the protocol's traffic as well as on states.
 *
 * Every scenario must end with `t.end()`: the simulator's checkers (../sim/checkers.ts) found
 * no violation, including the final full re-check of committed logs, and the history of client
 * calls is linearizable against the tree model.
 */

import { expect } from 'chai';
import type { CallOutcome } from '../../src/client/io.ts';
import type { ClientConfig } from '../../src/client/config.ts';
import type { NodeType } from '../../src/tree/node_type.ts';
import type { OpOutcome, TreeOp } from '../../src/tree/ops.ts';
import { lookupTyped } from '../../src/tree/lookup.ts';
import type { Tree } from '../../src/tree/tree.ts';
import type { ReplicaConfig } from '../../src/vr/config.ts';
import { stepAll } from '../../src/vr/step.ts';
import { entryAt } from '../../src/vr/log.ts';
import type { LogEntry, PeerMessage, PeerMessageType, ReplicaMessage } from '../../src/vr/messages.ts';
import type { ReplicaState } from '../../src/vr/state.ts';
import type { ForgeryKind } from '../sim/byzantine.ts';
import { machineDifference, type Violation } from '../sim/checkers.ts';
import { checkerHistory, Cluster, type CallRecord, type MessageFilter, type SimMessage, type StepFunction, type WorkloadOptions } from '../sim/cluster.ts';
import { checkHistory } from '../sim/linearizability.ts';
import { reliableNetwork, type NetworkFaults, type NodeId } from '../sim/network.ts';
import { canonical, makeTreeModel } from '../sim/tree_model.ts';

export type ScenarioOptions = {
  readonly seed: number;
  /** Replicas (2f+1); default 3. */
  readonly replicas?: number;
  /** Client processes `c0`.. (each a session host with one session, client id `c0.1` ...); default 3. */
  readonly clients?: number;
  /** Protocol configuration on top of the simulator's defaults (simReplicaConfig). */
  readonly config?: Partial<ReplicaConfig>;
  readonly clientConfig?: Partial<ClientConfig>;
  /** Network faults on top of a reliable network with a one-tick delay. */
  readonly faults?: Partial<NetworkFaults>;
  /** A random background workload; default none (the scenario makes every call). */
  readonly workload?: WorkloadOptions | null;
  /** A substitute core (mutation tests); default the real `stepAll`. */
  readonly stepFunction?: StepFunction;
};

/** A message put on the network (it may still be lost, partitioned away or filtered). */
export type Sent = { readonly tick: number; readonly from: NodeId; readonly to: NodeId; readonly message: SimMessage };

/** A message a replica actually received, at the tick it was stepped with it. */
export type Received = { readonly tick: number; readonly replica: number; readonly message: ReplicaMessage };

export type CallOptions = {
  /** The client process to use; default the next idle one (round robin). */
  readonly client?: string;
};

/** Bytes from a short literal: `[1, 2]` or a string. */
export type BytesLike = Uint8Array | readonly number[] | string;

export function bytes(value: BytesLike): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new TextEncoder().encode(value);
  return Uint8Array.from(value);
}

/** A client call in flight or completed. */
export class Call {
  readonly #t: Scenario;
  readonly record: CallRecord;

  constructor(t: Scenario, record: CallRecord) {
    this.#t = t;
    this.record = record;
  }

  get clientId(): string {
    return this.record.clientId;
  }

  get op(): TreeOp {
    return this.record.op;
  }

  /** Null while in flight. */
  get result(): CallOutcome | null {
    return this.record.result;
  }

  get settled(): boolean {
    return this.record.result !== null;
  }

  get isDone(): boolean {
    return this.record.result?.type === 'done';
  }

  /** Runs the simulation until this call completes (any result); fails the test if it does not. */
  await(maxTicks = 2000): this {
    this.#t.runUntil(`${this.describe()} completes`, () => this.settled, maxTicks);
    return this;
  }

  /** Awaits the call and asserts it completed `done`; returns the done result. */
  done(maxTicks = 2000): Extract<CallOutcome, { type: 'done' }> {
    this.await(maxTicks);
    const result = this.record.result;
    expect(result?.type, `${this.describe()} returned ${canonical(result)}`).to.equal('done');
    return result as Extract<CallOutcome, { type: 'done' }>;
  }

  /** Awaits the call, asserts it is done, and returns the operation's outcome. */
  outcome(maxTicks = 2000): OpOutcome {
    return this.done(maxTicks).outcome;
  }

  describe(): string {
    return `${this.record.clientId} call ${this.record.callId} (${this.record.op.type} ${'path' in this.record.op ? this.record.op.path : ''})`;
  }
}

/** A message filter that can be lifted. */
export type Drop = { readonly id: number; remove(): void };

export class Scenario {
  readonly cluster: Cluster;
  /** Every message put on the network, in order. */
  readonly sent: Sent[] = [];
  /** Every message a replica received, in order. */
  readonly received: Received[] = [];
  #nextClient = 0;

  constructor(options: ScenarioOptions) {
    const inner: StepFunction = options.stepFunction ?? ((_index, state, inputs) => stepAll(state, inputs));
    const received = this.received;
    const stepFunction: StepFunction = (index, state, inputs) => {
      for (const input of inputs) {
        // (The cluster starts its replicas while it is being built: those inputs are `start`.)
        if (input.type === 'receive') received.push({ tick: this.cluster.now, replica: index, message: input.message });
      }
      return inner(index, state, inputs);
    };
    this.cluster = new Cluster({
      seed: options.seed,
      replicaCount: options.replicas ?? 3,
      clientCount: options.clients ?? 3,
      faults: { ...reliableNetwork, ...options.faults },
      workload: options.workload ?? null,
      stepFunction,
      ...(options.config === undefined ? {} : { replicaConfig: options.config }),
      ...(options.clientConfig === undefined ? {} : { clientConfig: options.clientConfig }),
    });
    // A tap: the first filter sees every send and drops nothing.
    this.cluster.network.addFilter((from, to, message) => {
      this.sent.push({ tick: this.cluster.now, from, to, message });
      return false;
    });
  }

  // ---- time --------------------------------------------------------------------------------

  get now(): number {
    return this.cluster.now;
  }

  /** Advances `n` ticks; fails the test if a checker halts the run. */
  runTicks(n: number): this {
    this.cluster.runTicks(n);
    this.#assertNotHalted(`running ${n} ticks`);
    return this;
  }

  /**
   * Runs until `predicate` holds (checked before every tick), at most `maxTicks` ticks; fails the
   * test, naming `what` and the replicas' states, if it does not. Returns the ticks it took.
   */
  runUntil(what: string, predicate: (t: Scenario) => boolean, maxTicks: number): number {
    const start = this.now;
    const held = this.cluster.runUntil(() => predicate(this), maxTicks);
    this.#assertNotHalted(`waiting until ${what}`);
    expect(held, `not within ${maxTicks} ticks: ${what}\n  ${this.describe()}`).to.equal(true);
    return this.now - start;
  }

  /** Runs until every call has completed (any result). */
  settle(calls: readonly Call[], maxTicks = 3000): this {
    this.runUntil(`${calls.length} call(s) complete`, () => calls.every((call) => call.settled), maxTicks);
    return this;
  }

  /**
   * Runs until every running replica is in normal status in the primary's view and has
   * applied everything the primary committed (the heartbeat carries the commit number).
   */
  converge(maxTicks = 500): this {
    this.runUntil(
      'every running replica catches up with the primary',
      () => {
        const primary = this.primary();
        if (primary === null) return false;
        const p = this.replica(primary);
        return this.replicas.every((s, i) => this.cluster.isDown(i) || (s.status === 'normal' && s.view === p.view && s.lastNormalView === p.view && s.commit === p.commit && s.op === p.op));
      },
      maxTicks,
    );
    return this;
  }

  // ---- calls -------------------------------------------------------------------------------

  /** Starts a call on a client process (the next idle one unless `client` is given). */
  call(op: TreeOp, options: CallOptions = {}): Call {
    const clientId = options.client ?? this.#pickClient();
    return new Call(this, this.cluster.call(clientId, op));
  }

  create(path: string, nodeType: NodeType, options: CallOptions = {}): Call {
    return this.call({ type: 'create', path, nodeType }, options);
  }

  /** blob_put. */
  write(path: string, value: BytesLike, options: CallOptions = {}): Call {
    return this.call({ type: 'blob_put', path, value: bytes(value) }, options);
  }

  /** blob_get (through the log: linearizable). */
  read(path: string, options: CallOptions = {}): Call {
    return this.call({ type: 'blob_get', path }, options);
  }

  push(path: string, value: BytesLike, options: CallOptions = {}): Call {
    return this.call({ type: 'queue_push', path, value: bytes(value) }, options);
  }

  stat(path: string, options: CallOptions = {}): Call {
    return this.call({ type: 'stat', path }, options);
  }

  /** Registers every client process's session (each one's first call registers it), one by one. */
  registerClients(): this {
    for (const clientId of this.cluster.clientIds) this.call({ type: 'stat', path: '/session' }, { client: clientId }).await();
    return this;
  }

  #pickClient(): string {
    const ids = this.cluster.clientIds;
    for (let i = 0; i < ids.length; i++) {
      const clientId = ids[(this.#nextClient + i) % ids.length] as string;
      if (this.cluster.openCalls().every((record) => record.clientId !== clientId)) {
        this.#nextClient = (this.#nextClient + i + 1) % ids.length;
        return clientId;
      }
    }
    const clientId = ids[this.#nextClient % ids.length] as string;
    this.#nextClient = (this.#nextClient + 1) % ids.length;
    return clientId;
  }

  /** Stops the background workload from starting new calls (calls in flight go on). */
  stopWorkload(): this {
    this.cluster.workloadEnabled = false;
    return this;
  }

  /** Every call made so far (scenario and workload), as handles. */
  calls(): Call[] {
    return this.cluster.history.map((record) => new Call(this, record));
  }

  /** Puts a message on the network as if `from` had sent it now (it arrives next tick or later). */
  inject(from: NodeId, to: NodeId, message: SimMessage): void {
    this.cluster.network.send(from, to, message, this.now);
  }

  /**
   * Puts a forged message on the network from the simulator's forger node (../sim/byzantine.ts).
   * `malformed` (the default) means the gate must drop it: a step given it that does not trace
   * `drop_malformed` is a `forged_accepted` violation.
   */
  forge(to: number, message: Record<string, unknown>, kind: ForgeryKind = 'huge_view', malformed = true): void {
    this.cluster.injectForged(to, message, malformed, kind);
  }

  // ---- faults ------------------------------------------------------------------------------

  /** Cuts a replica off from every replica and client, both ways. */
  isolate(replica: number): this {
    this.cluster.isolate(replica);
    return this;
  }

  /** Cuts every link between the two groups (replicas and/or clients), both ways. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): this {
    this.cluster.partition(groupA, groupB);
    return this;
  }

  /** Restores every link (drop filters stay until removed). */
  heal(): this {
    this.cluster.heal();
    return this;
  }

  crash(replica: number): this {
    this.cluster.crash(replica);
    return this;
  }

  /** Restarts a crashed replica: it starts in `recovering` (VRR §4.3). */
  restart(replica: number): this {
    this.cluster.restart(replica);
    return this;
  }

  /** Changes the network's faults from now on (on top of a reliable one-tick network). */
  setFaults(faults: Partial<NetworkFaults>): this {
    this.cluster.network.setFaults({ ...reliableNetwork, ...faults });
    return this;
  }

  /** Drops every message matching the filter (`from`, `to`, `types`) at send time until removed. */
  dropAll(filter: MessageFilter): Drop {
    const id = this.cluster.dropMessages(filter);
    return { id, remove: () => this.cluster.removeFilter(id) };
  }

  // ---- observations ------------------------------------------------------------------------

  replica(index: number): ReplicaState {
    return this.cluster.replica(index);
  }

  get replicas(): readonly ReplicaState[] {
    return this.cluster.replicas;
  }

  /** The normal primary of the highest view, or null while a view change is under way. */
  primary(): number | null {
    return this.cluster.primaryIndex();
  }

  /** The highest view of any running replica. */
  view(): number {
    return this.cluster.highestView();
  }

  /** The committed tree of a replica. */
  tree(replica: number): Tree {
    return this.replica(replica).machine.tree;
  }

  /** The elements of a queue in a replica's committed tree (throws if there is no queue there). */
  queue(replica: number, path: string): Uint8Array[] {
    const found = lookupTyped(this.tree(replica), path, 'queue');
    if (!found.ok) throw new Error(`r${replica} has no queue at ${path}: ${found.error.code}`);
    return found.node.elements.toArray();
  }

  /** The value of a blob in a replica's committed tree (throws if there is no blob there). */
  blob(replica: number, path: string): Uint8Array {
    const found = lookupTyped(this.tree(replica), path, 'blob');
    if (!found.ok) throw new Error(`r${replica} has no blob at ${path}: ${found.error.code}`);
    return found.node.value;
  }

  entry(replica: number, op: number): LogEntry | undefined {
    return entryAt(this.replica(replica).log, op);
  }

  /** Peer messages sent (optionally filtered by sender, receiver, type, and from a tick on). */
  peerMessagesSent<T extends PeerMessageType>(filter: { from?: number; to?: number; type: T; since?: number }): (Sent & { message: Extract<PeerMessage, { type: T }> })[] {
    return this.sent.filter(
      (sent): sent is Sent & { message: Extract<PeerMessage, { type: T }> } =>
        sent.message.type === filter.type &&
        (filter.from === undefined || sent.from === filter.from) &&
        (filter.to === undefined || sent.to === filter.to) &&
        sent.tick >= (filter.since ?? 0),
    );
  }

  /** Peer messages a replica received (optionally filtered). */
  peerMessagesReceived<T extends PeerMessageType>(filter: { replica?: number; type: T; since?: number }): (Received & { message: Extract<PeerMessage, { type: T }> })[] {
    return this.received.filter(
      (received): received is Received & { message: Extract<PeerMessage, { type: T }> } =>
        received.message.type === filter.type && (filter.replica === undefined || received.replica === filter.replica) && received.tick >= (filter.since ?? 0),
    );
  }

  /** Answers (reply, not_primary, busy) a replica sent to a client. */
  answersSent(filter: { from?: number; client?: string; requestNum?: number; since?: number } = {}): Sent[] {
    return this.sent.filter((sent) => {
      const message = sent.message;
      if (message.type !== 'reply' && message.type !== 'not_primary' && message.type !== 'busy') return false;
      return (
        typeof sent.from === 'number' &&
        (filter.from === undefined || sent.from === filter.from) &&
        // A client process (`c0`, where replies are routed) or one of its sessions (`c0.1`, the client id they name).
        (filter.client === undefined || sent.to === filter.client || message.clientId === filter.client) &&
        (filter.requestNum === undefined || message.requestNum === filter.requestNum) &&
        sent.tick >= (filter.since ?? 0)
      );
    });
  }

  /** One line per replica: status@view, lastNormalView, op, commit. */
  describe(): string {
    return this.replicas
      .map((s, i) => `r${i}${this.cluster.isDown(i) ? '(down)' : ''} ${s.status}@${s.view} lnv${s.lastNormalView} op${s.op} c${s.commit}`)
      .join(' | ');
  }

  // ---- expectations ------------------------------------------------------------------------

  /** Asserts that two replicas applied the same prefix and hold the same tree and client table. */
  expectSameState(a: number, b: number): this {
    const ma = this.replica(a).machine;
    const mb = this.replica(b).machine;
    expect(ma.appliedOp, `r${a} and r${b} applied different prefixes: ${this.describe()}`).to.equal(mb.appliedOp);
    expect(machineDifference(ma, mb), `r${a} and r${b} differ`).to.equal(null);
    return this;
  }

  /** The simulator's checkers found nothing, including a full re-check of the committed logs. */
  expectNoViolations(): this {
    if (this.cluster.violations.length === 0) this.cluster.checkers.finalCheck(this.cluster.replicas, this.now);
    expect(this.cluster.violations, this.#violationReport()).to.deep.equal([]);
    return this;
  }

  /** The history of client calls is linearizable against the tree model. */
  expectLinearizable(): this {
    const history = checkerHistory(this.cluster.history);
    const model = makeTreeModel({ history: history.map((op) => op.input), limits: this.cluster.config.treeLimits });
    const result = checkHistory(model, history);
    const reason = result.linearizable === true ? '' : `${result.reason}${'ops' in result ? `\n    ${result.ops.join('\n    ')}` : ''}`;
    expect(result.linearizable, `history of ${history.length} calls is not linearizable: ${reason}`).to.equal(true);
    return this;
  }

  /** Every scenario ends here: no violation, and a linearizable history. */
  end(): void {
    this.expectNoViolations();
    this.expectLinearizable();
  }

  #assertNotHalted(doing: string): void {
    if (this.cluster.violations.length > 0) expect.fail(`violation while ${doing}:\n${this.#violationReport()}`);
  }

  #violationReport(): string {
    const violations: readonly Violation[] = this.cluster.violations;
    if (violations.length === 0) return '';
    return [
      ...violations.slice(0, 3).map((v) => `${v.kind} at tick ${v.tick}${v.replica === undefined ? '' : ` (replica ${v.replica})`}: ${v.message}`),
      `replicas: ${this.describe()}`,
      ...this.cluster.traceTail(25).map((line) => `  ${line}`),
    ].join('\n');
  }
}

export function scenario(options: ScenarioOptions): Scenario {
  return new Scenario(options);
}
