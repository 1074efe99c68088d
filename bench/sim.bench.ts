/**
 * `npm run bench -- sim`: committed ops/s of a 3-replica group run entirely in one thread
 * (no workers, no faults, no copies between replicas): the pure core's own cost, the baseline
 * that worker-thread figures are compared with.
 *
 * A round delivers, for each replica, every message queued for it in ONE `stepAll` call (so the
 * primary batches what arrived together into one log entry), then every client answer. Clients
 * run closed loops: each keeps one 100-byte blob put outstanding on its own blob. A tick goes
 * to everyone every `roundsPerTick` rounds. The batch size is bounded by `batchMax`.
 *
 * A second table isolates the client side: ns of CPU per `clientStep` pair (a call that
 * sends, then the reply that completes it) and per tick with a request outstanding; then the
 * session pool (`poolStepAll`, one produce per batch) at 1,024 sessions, inputs batched 256 per
 * call: ns per op (its call and its reply) and per tick over 1,024 busy sessions.
 */

import type { ClientEffect } from '../src/client/io.ts';
import { clientStep, initialClientState, type ClientState } from '../src/client/session.ts';
import { defaultClientConfig } from '../src/client/config.ts';
import { initialPoolState, poolStepAll, type PoolInput, type PoolState } from '../src/client/pool.ts';
import type { TreeOp } from '../src/tree/ops.ts';
import { makeReplicaConfig } from '../src/vr/config.ts';
import type { ReplicaEffect, ReplicaInput } from '../src/vr/io.ts';
import type { ClientAnswer, Request } from '../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../src/vr/state.ts';
import { stepAll } from '../src/vr/step.ts';
import { formatInteger, formatNs, median, printTable, progress, writeResults, type SuiteContext } from './report.ts';

export type SimBenchCase = { readonly name: string; readonly batchMax: number; readonly clients: number };

export type SimBenchOptions = {
  readonly cases: readonly SimBenchCase[];
  readonly msPerRun: number;
  readonly reps: number;
  readonly write: boolean;
  readonly outDir?: string;
};

/** ns of CPU per clientStep call+receive pair, and per tick with a request outstanding. */
export type ClientSessionRow = { readonly nsPerCallAndReceive: number; readonly nsPerTick: number };

/** ns of CPU per pool op (call + receive, batched) and per pool tick over `sessions` busy sessions. */
export type ClientPoolRow = { readonly sessions: number; readonly batch: number; readonly nsPerOp: number; readonly nsPerTick: number };

export type SimBenchRow = {
  readonly name: string;
  readonly batchMax: number;
  readonly clients: number;
  readonly opsPerSecond: number;
  readonly nsPerOp: number;
  readonly meanBatch: number;
  readonly committed: number;
};

const roundsPerTick = 4;
const valueBytes = 100;

export const defaultSimCases: readonly SimBenchCase[] = [
  { name: 'batch 1, 1 client', batchMax: 1, clients: 1 },
  { name: 'batch 1, 100 clients', batchMax: 1, clients: 100 },
  { name: 'batch 100, 100 clients', batchMax: 100, clients: 100 },
  { name: 'batch 100, 1000 clients', batchMax: 100, clients: 1000 },
];

export function simSuite(context: SuiteContext): void {
  const options: SimBenchOptions = context.quick
    ? { cases: defaultSimCases, msPerRun: 300, reps: 3, write: true, outDir: context.outDir }
    : { cases: defaultSimCases, msPerRun: 1000, reps: 5, write: true, outDir: context.outDir };
  runSimBench(options);
}

export function runSimBench(options: SimBenchOptions): SimBenchRow[] {
  const startedAt = new Date();
  const rows: SimBenchRow[] = [];
  for (const benchCase of options.cases) {
    if (options.write) progress(`sim: ${benchCase.name}`);
    const runs: { ops: number; ns: number; batch: number; committed: number }[] = [];
    for (let rep = 0; rep < options.reps; rep++) runs.push(measure(benchCase, options.msPerRun));
    const opsPerSecond = median(runs.map((run) => (run.ops * 1e9) / run.ns));
    rows.push({
      name: benchCase.name,
      batchMax: benchCase.batchMax,
      clients: benchCase.clients,
      opsPerSecond,
      nsPerOp: 1e9 / opsPerSecond,
      meanBatch: median(runs.map((run) => run.batch)),
      committed: median(runs.map((run) => run.committed)),
    });
  }
  if (options.write) {
    printTable(
      `Simulated 3-replica group, one thread, no faults (median of ${options.reps} runs of ${options.msPerRun} ms)`,
      [
        { header: 'case' },
        { header: 'batchMax', align: 'right' },
        { header: 'clients', align: 'right' },
        { header: 'committed ops/s', align: 'right' },
        { header: 'ns/op', align: 'right' },
        { header: 'mean batch', align: 'right' },
      ],
      rows.map((row) => [
        row.name,
        String(row.batchMax),
        formatInteger(row.clients),
        formatInteger(Math.round(row.opsPerSecond)),
        formatNs(row.nsPerOp),
        row.meanBatch.toFixed(1),
      ]),
    );
    const session = measureClientSession(options.msPerRun, options.reps);
    const pool = measureClientPool(options.msPerRun, options.reps);
    printTable(
      `Client side alone, against an instant replica (median of ${options.reps} runs of ${options.msPerRun} ms, CPU time)`,
      [{ header: 'case' }, { header: 'ns', align: 'right' }],
      [
        ['clientStep, one session: call + receive (2 steps)', formatNs(session.nsPerCallAndReceive)],
        ['clientStep, one session: tick, request outstanding', formatNs(session.nsPerTick)],
        [`poolStepAll, ${formatInteger(pool.sessions)} sessions, ${pool.batch} inputs per step: per op (call + receive)`, formatNs(pool.nsPerOp)],
        [`poolStepAll, ${formatInteger(pool.sessions)} sessions: one tick, all busy`, formatNs(pool.nsPerTick)],
        [`poolStepAll, ${formatInteger(pool.sessions)} sessions: one tick, per busy session`, formatNs(pool.nsPerTick / pool.sessions)],
      ],
    );
    const files = writeResults(
      options.outDir ?? 'bench/results',
      'sim',
      { options: { ...options, cases: options.cases.map((c) => ({ ...c })) }, rows: rows.map((row) => ({ ...row })), clientSession: { ...session }, clientPool: { ...pool } },
      startedAt,
    );
    progress(`sim: results in ${files.path}`);
  }
  return rows;
}

/** CPU ns since an arbitrary origin (the machine may be shared: wall time would count other work). */
function cpuNs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) * 1000;
}

/** One session in a closed loop against a replica that answers at once. */
export function measureClientSession(msPerRun: number, reps: number): ClientSessionRow {
  const value = new Uint8Array(valueBytes).fill(7);
  const answer = (request: Request): ClientAnswer =>
    request.op.type === 'register'
      ? { type: 'reply', epoch: 0, view: 0, op: 1, clientId: request.clientId, requestNum: 0, body: { type: 'registered', isNew: true, lastRequestNum: 0 } }
      : { type: 'reply', epoch: 0, view: 0, op: 2, clientId: request.clientId, requestNum: request.requestNum, body: { type: 'tree', outcome: { type: 'ok', version: 1 } } };
  let state = initialClientState('c0', { ...defaultClientConfig, giveUpTicks: 1_000_000_000 }, 1);
  let callId = 0;
  /** One call through to its result; returns the number of steps taken. */
  const roundTrip = (): number => {
    let steps = 1;
    let result = clientStep(state, { type: 'call', callId: callId++, op: { type: 'blob_put', path: '/c0', value } });
    state = result.state;
    for (;;) {
      const sent = result.effects.find((effect) => effect.type === 'send');
      if (sent === undefined || sent.type !== 'send') return steps;
      result = clientStep(state, { type: 'receive', message: answer(sent.request) });
      state = result.state;
      steps += 1;
    }
  };
  roundTrip(); // registers
  const pairs: number[] = [];
  const ticks: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let count = 0;
    let started = cpuNs();
    const deadline = started + msPerRun * 1e6 * 0.5;
    let now = started;
    while (now < deadline) {
      for (let i = 0; i < 256; i++) roundTrip();
      count += 256;
      now = cpuNs();
    }
    pairs.push((now - started) / count);
    // Ticks with a request outstanding (sent, never answered: the backoff expires and it is re-sent).
    state = clientStep(state, { type: 'call', callId: callId++, op: { type: 'blob_put', path: '/c0', value } }).state;
    count = 0;
    started = cpuNs();
    now = started;
    const tickDeadline = started + msPerRun * 1e6 * 0.5;
    while (now < tickDeadline) {
      for (let i = 0; i < 256; i++) state = clientStep(state, { type: 'tick' }).state;
      count += 256;
      now = cpuNs();
    }
    ticks.push((now - started) / count);
    // Complete the outstanding call so the next run starts idle.
    const outstanding = state.outstanding;
    if (outstanding !== null) state = clientStep(state, { type: 'receive', message: answer(outstanding.request) }).state;
  }
  return { nsPerCallAndReceive: median(pairs), nsPerTick: median(ticks) };
}

/**
 * The session pool in a closed loop against a replica that answers at once: every session busy,
 * each `poolStepAll` gets `batch` inputs, half replies to the oldest requests in flight and half
 * new calls (which reuse the sessions those replies freed). Then ticks with every session busy
 * and nothing answered (backoffs expire and requests are re-sent).
 */
export function measureClientPool(msPerRun: number, reps: number, sessions = 1024, batch = 256): ClientPoolRow {
  const value = new Uint8Array(valueBytes).fill(7);
  const answer = (request: Request): ClientAnswer =>
    request.op.type === 'register'
      ? { type: 'reply', epoch: 0, view: 0, op: 1, clientId: request.clientId, requestNum: 0, body: { type: 'registered', isNew: true, lastRequestNum: 0 } }
      : { type: 'reply', epoch: 0, view: 0, op: 2, clientId: request.clientId, requestNum: request.requestNum, body: { type: 'tree', outcome: { type: 'ok', version: 1 } } };
  const config = { client: { ...defaultClientConfig, giveUpTicks: 1_000_000_000 }, sessionsMax: sessions, waitingMax: sessions, clientIdPrefix: 'bench.pool' };
  let state: PoolState = initialPoolState(config, 1);
  let callId = 0;
  /** Requests in flight, oldest first (a ring of the last sends). */
  let inFlight: Request[] = [];
  let head = 0;
  const step = (inputs: readonly PoolInput[]): void => {
    const result = poolStepAll(state, inputs);
    state = result.state;
    for (const effect of result.effects) {
      if (effect.type === 'send') inFlight.push(effect.request);
      else if (effect.type === 'result' && effect.result.type !== 'done') throw new Error(`pool bench: call failed: ${JSON.stringify(effect.result)}`);
    }
  };
  const call = (): PoolInput => ({ type: 'call', callId: callId++, op: { type: 'blob_put', path: '/p', value } });
  const answerOldest = (count: number): PoolInput[] => {
    const inputs: PoolInput[] = [];
    for (let i = 0; i < count && head < inFlight.length; i++) inputs.push({ type: 'receive', message: answer(inFlight[head++] as Request) });
    return inputs;
  };
  const compact = (): void => {
    inFlight = inFlight.slice(head);
    head = 0;
  };
  // Warm-up: every session opened, registered and busy with one call.
  step(Array.from({ length: sessions }, call));
  step(answerOldest(sessions));
  compact();
  const half = batch / 2;
  const oneBatch = (): void => {
    const inputs = answerOldest(half);
    for (let j = 0; j < half; j++) inputs.push(call());
    step(inputs);
  };
  // Untimed, so that the first timed run does not pay for compilation.
  for (let i = 0; i < 256; i++) {
    oneBatch();
    if (i % 16 === 15) compact();
  }
  const ops: number[] = [];
  const ticks: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let count = 0;
    let started = cpuNs();
    let now = started;
    const deadline = started + msPerRun * 1e6 * 0.5;
    while (now < deadline) {
      for (let i = 0; i < 16; i++) oneBatch();
      count += 16 * half;
      compact();
      now = cpuNs();
    }
    ops.push((now - started) / count);
    // Ticks: every session busy, nothing answered.
    count = 0;
    started = cpuNs();
    now = started;
    const tickDeadline = started + msPerRun * 1e6 * 0.5;
    const tick: readonly PoolInput[] = [{ type: 'tick' }];
    while (now < tickDeadline) {
      for (let i = 0; i < 4; i++) {
        const result = poolStepAll(state, tick);
        state = result.state;
        for (const effect of result.effects) if (effect.type === 'send') inFlight.push(effect.request);
      }
      count += 4;
      now = cpuNs();
    }
    ticks.push((now - started) / count);
    // Forget the re-sends: answer each session's request once, then refill.
    const latest = new Map<string, Request>();
    for (let i = head; i < inFlight.length; i++) latest.set((inFlight[i] as Request).clientId, inFlight[i] as Request);
    inFlight = [...latest.values()];
    head = 0;
  }
  return { sessions, batch, nsPerOp: median(ops), nsPerTick: median(ticks) };
}

/** One timed run of a fresh group: warm-up (every client registered and its blob created), then a closed loop of puts. */
function measure(benchCase: SimBenchCase, msPerRun: number): { ops: number; ns: number; batch: number; committed: number } {
  const group = new Group(benchCase);
  group.warmUp();
  const startOps = group.completed;
  const startCommit = group.primaryCommit();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(msPerRun) * 1_000_000n;
  let now = started;
  while (now < deadline) {
    for (let i = 0; i < 16; i++) group.round();
    now = process.hrtime.bigint();
  }
  const ops = group.completed - startOps;
  const entries = group.primaryCommit() - startCommit;
  return { ops, ns: Number(now - started), batch: entries === 0 ? 0 : ops / entries, committed: ops };
}

class Group {
  readonly #replicas: ReplicaState[];
  readonly #clients: ClientState[];
  readonly #replicaInbox: ReplicaInput[][];
  readonly #clientInbox: ClientAnswer[][];
  readonly #clientIndex = new Map<string, number>();
  readonly #values: Uint8Array[];
  #rounds = 0;
  #callId = 0;
  #sequence = 0;
  completed = 0;

  constructor(benchCase: SimBenchCase) {
    const config = makeReplicaConfig({ batchMax: benchCase.batchMax, pipelineMax: 64, pendingMax: 1_000_000, checkpointIntervalOps: 1024 });
    this.#replicas = [0, 1, 2].map((index) => initialReplicaState(config, index, 1));
    this.#replicaInbox = [[], [], []];
    this.#clients = [];
    this.#clientInbox = [];
    for (let i = 0; i < benchCase.clients; i++) {
      const id = `c${i}`;
      this.#clientIndex.set(id, i);
      this.#clients.push(initialClientState(id, { ...defaultClientConfig, giveUpTicks: 1_000_000 }, i + 1));
      this.#clientInbox.push([]);
    }
    this.#values = Array.from({ length: 64 }, (_, i) => new Uint8Array(valueBytes).fill(i));
    for (let index = 0; index < 3; index++) this.#stepReplica(index, [{ type: 'start', mode: 'fresh', nonce: 0 }]);
  }

  primaryCommit(): number {
    return (this.#replicas[0] as ReplicaState).commit;
  }

  /** Every client creates its blob; then every client has one put outstanding. */
  warmUp(): void {
    for (let i = 0; i < this.#clients.length; i++) this.#call(i, { type: 'create', path: `/c${i}`, nodeType: 'blob' });
    while (this.completed < this.#clients.length) this.round();
  }

  round(): void {
    for (let index = 0; index < 3; index++) {
      const inbox = this.#replicaInbox[index] as ReplicaInput[];
      if (inbox.length === 0) continue;
      this.#replicaInbox[index] = [];
      this.#stepReplica(index, inbox);
    }
    for (let i = 0; i < this.#clients.length; i++) {
      const inbox = this.#clientInbox[i] as ClientAnswer[];
      if (inbox.length === 0) continue;
      this.#clientInbox[i] = [];
      for (const message of inbox) this.#stepClient(i, { type: 'receive', message });
    }
    this.#rounds += 1;
    if (this.#rounds % roundsPerTick === 0) {
      for (let index = 0; index < 3; index++) (this.#replicaInbox[index] as ReplicaInput[]).push({ type: 'tick' });
      for (let i = 0; i < this.#clients.length; i++) this.#stepClient(i, { type: 'tick' });
    }
  }

  #call(client: number, op: TreeOp): void {
    this.#stepClient(client, { type: 'call', callId: this.#callId++, op });
  }

  #stepReplica(index: number, inputs: readonly ReplicaInput[]): void {
    const result = stepAll(this.#replicas[index] as ReplicaState, inputs);
    this.#replicas[index] = result.state;
    this.#route(result.effects);
  }

  #route(effects: readonly ReplicaEffect[]): void {
    for (const effect of effects) {
      if (effect.type === 'send') (this.#replicaInbox[effect.to] as ReplicaInput[]).push({ type: 'receive', message: effect.message });
      else if (effect.type === 'reply') {
        const client = this.#clientIndex.get(effect.clientId);
        if (client !== undefined) (this.#clientInbox[client] as ClientAnswer[]).push(effect.message);
      }
    }
  }

  #stepClient(client: number, input: Parameters<typeof clientStep>[1]): void {
    const result = clientStep(this.#clients[client] as ClientState, input);
    this.#clients[client] = result.state;
    for (const effect of result.effects as readonly ClientEffect[]) {
      if (effect.type === 'send') (this.#replicaInbox[effect.to] as ReplicaInput[]).push({ type: 'receive', message: effect.request });
      else if (effect.type === 'result') {
        if (effect.result.type !== 'done' || effect.result.outcome.type === 'error') {
          throw new Error(`sim bench: call failed: ${JSON.stringify(effect.result)}`);
        }
        this.completed += 1;
        // Closed loop: the next put on this client's own blob, with new bytes.
        this.#sequence += 1;
        this.#call(client, { type: 'blob_put', path: `/c${client}`, value: this.#values[this.#sequence % this.#values.length] as Uint8Array });
      }
    }
  }
}
