/**
 * Shared helpers of the durability tests (issue 13, "Tests with real processes and files"):
 * haret nodes as real processes (`haret start`, or a small embedding script run with tsx),
 * killed with SIGKILL and restarted on the same data directories and ports; closed-loop
 * writers through the client library that record what was acknowledged; and the check that
 * every acknowledged write is in its queue exactly once, in push order.
 *
 * Every process started here is registered in a `Processes` set the test kills (SIGKILL) in
 * its `finally`, and every temporary directory is removed there too, even on failure.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, writeFileSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync, ftruncateSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Packr } from 'msgpackr';
import type { AdminActorReport } from '../../src/api/admin_wire.ts';
import { AdminClient, type AdminQuery } from '../../src/net/admin_client.ts';
import { connect, type ConnectOptions, type RemoteConnection } from '../../src/net/index.ts';
import { HaretError, type NamespaceClient } from '../../src/node/index.ts';
import type { SimpleOp } from '../../src/tree/ops.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const haretBin = join(repoRoot, 'bin', 'haret.js');

/** Resolves after `ms` (pauses between restarts; never used to wait for a condition). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until truthy; rejects with the last error after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs: number, pollMs = 50): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== null && value !== undefined && value !== false) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === null ? '' : `: ${String(last)}`}`);
    await pause(pollMs);
  }
}

/** `count` TCP ports free on 127.0.0.1 now, chosen up front so a restarted process keeps its addresses. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/**
 * One real-process scenario: a temporary directory and a process set for `body` (with the time
 * it started); its report printed at the end with `totalMs`, or marked failed when the body
 * throws; and whatever happens, `cleanUp` (the body's writers and connection), then every
 * process killed and the directory removed.
 */
export async function runScenario(
  prefix: string,
  report: Record<string, unknown>,
  body: (dir: string, procs: Processes, started: number) => Promise<void>,
  cleanUp: () => void | Promise<void>,
): Promise<void> {
  const started = performance.now();
  const dir = tempDir(prefix);
  const procs = new Processes();
  try {
    await body(dir, procs, started);
    report['totalMs'] = Math.round(performance.now() - started);
    console.log(`      ${JSON.stringify(report)}`);
  } catch (error) {
    console.log(`      (failed) ${JSON.stringify(report)}`);
    throw error;
  } finally {
    await cleanUp();
    await procs.killAll();
    removeDir(dir);
  }
}

/** A temporary directory, removed by `removeDir` (tests call it in `finally`). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export type Exit = { readonly code: number | null; readonly signal: NodeJS.Signals | null };

/** A child process with its output kept (stdout whole, stderr's last 1 MiB). */
export type Proc = {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
  /** True once it exited (by any cause). */
  done(): boolean;
};

const stderrKept = 1 << 20;

/** Every process a test started: `killAll` in its `finally`. */
export class Processes {
  readonly #all = new Set<Proc>();

  spawn(name: string, command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd ?? repoRoot, env: options.env ?? process.env });
    let out = '';
    let err = '';
    let finished = false;
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      if (err.length > stderrKept) err = err.slice(-stderrKept);
    });
    const exited = new Promise<Exit>((resolve) =>
      child.on('exit', (code, signal) => {
        finished = true;
        resolve({ code, signal });
      }),
    );
    if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
    const proc: Proc = { name, child, pid: child.pid, exited, stdout: () => out, stderr: () => err, done: () => finished };
    this.#all.add(proc);
    void exited.then(() => this.#all.delete(proc));
    return proc;
  }

  /** SIGKILL to every process in the same tick (a whole-cluster power cut); resolves once all exited. */
  async killAll(): Promise<void> {
    const procs = [...this.#all];
    for (const proc of procs) if (!proc.done()) proc.child.kill('SIGKILL');
    await Promise.all(procs.map((proc) => proc.exited));
  }
}

/** Resolves with the first match of `pattern` on a complete stdout line; rejects if the process exits or `timeoutMs` passes. */
export async function stdoutLine(proc: Proc, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const line of proc.stdout().split('\n').slice(0, -1)) {
      const match = pattern.exec(line);
      if (match !== null) return match;
    }
    if (proc.done()) throw new Error(`${proc.name} exited (${JSON.stringify(await proc.exited)}) before printing ${pattern}\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr().slice(-4000)}`);
    if (performance.now() > deadline) throw new Error(`${proc.name}: no line ${pattern} within ${timeoutMs} ms\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr().slice(-4000)}`);
    await pause(25);
  }
}

/** The pino lines (JSON) of a process's stderr whose `msg` starts with `prefix`. */
export function logLines(proc: Proc, prefix: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of proc.stderr().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed['msg'] === 'string' && parsed['msg'].startsWith(prefix)) lines.push(parsed);
    } catch {
      // A line cut by the 1 MiB window: not one to count.
    }
  }
  return lines;
}

/** One admin request; its value or an Error with the node's message. */
export async function admin(address: string, query: AdminQuery): Promise<unknown> {
  const client = await AdminClient.open(address, {});
  try {
    const answer = await client.request(query);
    if (answer.type !== 'ok') throw new Error(`${query.type}: ${answer.code} ${answer.message}`);
    return answer.value;
  } finally {
    client.close();
  }
}

/** One actor line of the admin `status` answer. */
export type StatusLine = AdminActorReport;

export async function adminStatus(address: string): Promise<StatusLine[]> {
  return (await admin(address, { type: 'status' })) as StatusLine[];
}

/** A `haret start` process and the addresses it printed. */
export type HaretProc = Proc & { readonly client: string; readonly admin: string; readonly cluster: string | null };

const startLine = /^haret: node (\S+) serving .* on (\S+), admin on (\S+?)(?:, cluster on (\S+))?$/;

/**
 * Starts `haret start --name NAME ...flags` (client and admin ports from `flags`, or ephemeral),
 * optionally behind a wrapper that execs it (`prlimit --fsize=N`, `setpriv ...`), and resolves
 * once it printed its start line.
 */
export async function startHaret(
  procs: Processes,
  name: string,
  flags: readonly string[],
  options: { readonly wrapper?: readonly string[]; readonly logLevel?: string; readonly timeoutMs?: number } = {},
): Promise<HaretProc> {
  const args = [haretBin, 'start', '--name', name, '--log-level', options.logLevel ?? 'warn', ...flags];
  if (!flags.includes('--client-address')) args.push('--client-address', '127.0.0.1:0');
  if (!flags.includes('--admin-address')) args.push('--admin-address', '127.0.0.1:0');
  const wrapper = options.wrapper ?? [];
  const proc = wrapper.length === 0 ? procs.spawn(name, process.execPath, args) : procs.spawn(name, wrapper[0] as string, [...wrapper.slice(1), process.execPath, ...args]);
  const match = await stdoutLine(proc, startLine, options.timeoutMs ?? 60_000);
  return { ...proc, client: match[2] as string, admin: match[3] as string, cluster: match[4] ?? null };
}

/** Connects the client library, retrying while no node answers yet. */
export async function connectWithin(addresses: readonly string[], timeoutMs: number, options: ConnectOptions = {}): Promise<RemoteConnection> {
  return waitFor('a client connection', () => connect(addresses, { connectTimeoutMs: 2_000, ...options }), timeoutMs, 200);
}

/** The namespace's client once the connected node knows the namespace (it may learn it late after a restart). */
export async function namespaceClient(remote: RemoteConnection, ns: string, timeoutMs: number): Promise<NamespaceClient> {
  await waitFor(`namespace ${ns} on ${remote.node}`, async () => (await remote.refreshNamespaces()).includes(ns), timeoutMs, 200);
  return remote.client(ns);
}

/** A create that timed out may have run: already_exists then means it did. */
export async function createQueue(client: NamespaceClient, path: string): Promise<boolean> {
  return client.create(path, 'queue').then(
    () => true,
    (error: unknown) => {
      if (error instanceof HaretError && error.code === 'already_exists') return true;
      throw error;
    },
  );
}

export const queuePath = (writer: number): string => `/q${writer}`;
const valueOf = (writer: number, index: number): string => `w${writer}-${index}`;

/**
 * Closed-loop writers, one per queue: writer w pushes `w<w>-0`, `w<w>-1`, ... to `/q<w>`, one at
 * a time, and records each push as acknowledged (in push order), unknown (the call may have
 * run: executed 'maybe') or refused (certainly not run). Errors are counted by code.
 */
export class Writers {
  readonly acknowledged: number[][];
  readonly unknown: Set<number>[];
  readonly refused: Set<number>[];
  /** Calls that failed, by `code/executed`. */
  readonly errors = new Map<string, number>();
  /** Errors no writer expects (not a HaretError, or a tree error): a bug. */
  readonly failures: string[] = [];
  #stop = false;
  #running: Promise<void>[] = [];
  /** The next index each writer pushes. */
  #next: number[] = [];

  readonly #client: NamespaceClient;
  readonly count: number;

  constructor(client: NamespaceClient, count: number) {
    this.#client = client;
    this.count = count;
    this.acknowledged = Array.from({ length: count }, () => []);
    this.unknown = Array.from({ length: count }, () => new Set<number>());
    this.refused = Array.from({ length: count }, () => new Set<number>());
  }

  get total(): number {
    return this.acknowledged.reduce((sum, list) => sum + list.length, 0);
  }

  start(): void {
    this.#stop = false;
    this.#running = Array.from({ length: this.count }, (_, w) => this.#run(w));
  }

  /** Stops issuing new pushes (calls in flight still settle). */
  stop(): void {
    this.#stop = true;
  }

  /** Resolves once every writer has returned (after `stop` and the settling of calls in flight). */
  async settled(): Promise<void> {
    await Promise.all(this.#running);
  }

  async #run(w: number): Promise<void> {
    for (;;) {
      if (this.#stop) return;
      const index = this.#next[w] ?? 0;
      this.#next[w] = index + 1;
      try {
        await this.#client.queuePush(queuePath(w), valueOf(w, index));
        (this.acknowledged[w] as number[]).push(index);
      } catch (error) {
        if (error instanceof HaretError && error.executed !== true) {
          const key = `${error.code}/${String(error.executed)}`;
          this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
          if (error.executed === 'maybe') (this.unknown[w] as Set<number>).add(index);
          else (this.refused[w] as Set<number>).add(index);
          // A writer refused at once would spin: give the node a moment.
          if (error.executed === false) await pause(20);
        } else {
          this.failures.push(`writer ${w} push ${index}: ${error instanceof Error ? `${error.name} ${(error as { code?: unknown }).code ?? ''} ${error.message}` : String(error)}`);
          return;
        }
      }
    }
  }

  /** Error counts as a sorted object, for reports. */
  errorSummary(): Record<string, number> {
    return Object.fromEntries([...this.errors].sort(([a], [b]) => a.localeCompare(b)));
  }
}

const decoder = new TextDecoder();
const popBatch = 128;

/** Pops a whole queue in transactions of 128 pops; the values in queue order. */
export async function drainQueue(client: NamespaceClient, path: string): Promise<string[]> {
  const values: string[] = [];
  const ops: SimpleOp[] = Array.from({ length: popBatch }, () => ({ type: 'queue_pop', path }));
  for (;;) {
    const txn = await client.multiCas([], ops);
    let empty = false;
    for (const result of txn.results) {
      if (result.type !== 'element') throw new Error(`queue_pop answered ${result.type}`);
      if (result.value === null) {
        empty = true;
        break;
      }
      values.push(decoder.decode(result.value));
    }
    if (empty) return values;
  }
}

/**
 * Problems with what the queues hold against what the writers saw: an acknowledged push
 * missing, a value twice, out of push order, or one nobody may have written (a push refused
 * for sure, or never attempted). Empty when everything holds.
 */
export async function checkQueues(client: NamespaceClient, writers: Writers): Promise<{ problems: string[]; found: number }> {
  const problems: string[] = [];
  let found = 0;
  const drained = await Promise.all(Array.from({ length: writers.count }, (_, w) => drainQueue(client, queuePath(w))));
  for (let w = 0; w < writers.count; w++) {
    const values = drained[w] as string[];
    found += values.length;
    const indexes: number[] = [];
    for (const value of values) {
      const match = /^w(\d+)-(\d+)$/.exec(value);
      if (match === null || Number(match[1]) !== w) {
        problems.push(`queue ${w}: stray value ${value}`);
        continue;
      }
      indexes.push(Number(match[2]));
    }
    const seen = new Set<number>();
    let previous = -1;
    for (const index of indexes) {
      if (seen.has(index)) problems.push(`queue ${w}: w${w}-${index} twice`);
      else if (index < previous) problems.push(`queue ${w}: w${w}-${index} after w${w}-${previous} (out of push order)`);
      seen.add(index);
      previous = Math.max(previous, index);
    }
    const acked = new Set(writers.acknowledged[w]);
    const lost = (writers.acknowledged[w] as number[]).filter((index) => !seen.has(index));
    if (lost.length > 0) problems.push(`queue ${w}: ${lost.length} acknowledged pushes lost, e.g. ${lost.slice(0, 10).map((i) => `w${w}-${i}`).join(', ')} (acknowledged ${acked.size}, last acknowledged w${w}-${(writers.acknowledged[w] as number[]).at(-1) ?? 'none'}, queue holds ${indexes.length}, its last w${w}-${indexes.at(-1) ?? 'none'})`);
    const strays = [...seen].filter((index) => !acked.has(index) && !(writers.unknown[w] as Set<number>).has(index));
    if (strays.length > 0) problems.push(`queue ${w}: values nobody may have written: ${strays.slice(0, 10).map((i) => `w${w}-${i}`).join(', ')}${strays.some((i) => (writers.refused[w] as Set<number>).has(i)) ? ' (some were refused with executed=false)' : ''}`);
  }
  return { problems, found };
}

/** The log segments of a replica directory, oldest first. */
export function segments(replicaDir: string): string[] {
  return readdirSync(replicaDir)
    .filter((name) => /^log-\d{20}\.seg$/.test(name))
    .sort();
}

/** The newest log segment of a replica directory (the highest name). */
export function newestSegment(replicaDir: string): string {
  const all = segments(replicaDir);
  const last = all.at(-1);
  if (last === undefined) throw new Error(`no log segment in ${replicaDir}: ${readdirSync(replicaDir).join(', ')}`);
  return join(replicaDir, last);
}

/** Appends `count` random bytes to a file (a torn write of garbage after the last record). */
export function appendGarbage(path: string, count: number): { before: number; after: number } {
  const before = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, randomBytes(count), 0, count, before);
  } finally {
    closeSync(fd);
  }
  return { before, after: statSync(path).size };
}

/**
 * Cuts the last record of a segment in half (a torn last write): walks the records
 * ([u32 length][u32 crc][u64 seq] payload, actors/storage/record_format.ts) and truncates
 * the file in the middle of the last one.
 */
export function tearLastRecord(path: string): { before: number; after: number; records: number; lastRecordBytes: number; lastRecordOp: number | null } {
  const bytes = readFileSync(path);
  let pos = 0;
  let lastStart = -1;
  let records = 0;
  while (pos + 16 <= bytes.length) {
    const length = bytes.readUInt32BE(pos);
    if (pos + 16 + length > bytes.length) break;
    lastStart = pos;
    pos += 16 + length;
    records += 1;
  }
  if (lastStart < 0) throw new Error(`${path}: no whole record to tear (${bytes.length} bytes)`);
  const lastRecordBytes = pos - lastStart;
  const lastRecordOp = entryOp(bytes.subarray(lastStart + 16, pos));
  const cut = lastStart + Math.floor(lastRecordBytes / 2);
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, cut);
  } finally {
    closeSync(fd);
  }
  return { before: bytes.length, after: cut, records, lastRecordBytes, lastRecordOp };
}

/** One member of a three-node test cluster: fixed ports (a restart keeps its addresses) and a data directory. */
export type Member = {
  readonly name: string;
  readonly clientPort: number;
  readonly adminPort: number;
  readonly clusterPort: number;
  readonly dataDir: string;
  proc: HaretProc | null;
};

/**
 * Three `haret start` members (n1, n2, n3) on 127.0.0.1 with data directories under `dir`,
 * cluster links, and ports chosen up front.
 */
export class Cluster {
  readonly members: Member[];
  readonly procs: Processes;

  private constructor(procs: Processes, members: Member[]) {
    this.procs = procs;
    this.members = members;
  }

  static async create(procs: Processes, dir: string): Promise<Cluster> {
    const ports = await freePorts(9);
    const members = ['n1', 'n2', 'n3'].map((name, i) => ({
      name,
      clientPort: ports[3 * i] as number,
      adminPort: ports[3 * i + 1] as number,
      clusterPort: ports[3 * i + 2] as number,
      dataDir: join(dir, name),
      proc: null,
    }));
    return new Cluster(procs, members);
  }

  member(name: string): Member {
    const member = this.members.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no member ${name}`);
    return member;
  }

  clusterAddress(name: string): string {
    return `127.0.0.1:${this.member(name).clusterPort}`;
  }

  clientAddresses(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  adminAddress(name: string): string {
    return `127.0.0.1:${this.member(name).adminPort}`;
  }

  /** Starts a member on its ports and data directory (`join`: cluster addresses to join at start). */
  async start(name: string, join: readonly string[] = []): Promise<HaretProc> {
    const member = this.member(name);
    const flags = [
      '--client-address', `127.0.0.1:${member.clientPort}`,
      '--admin-address', `127.0.0.1:${member.adminPort}`,
      '--cluster-address', `127.0.0.1:${member.clusterPort}`,
      '--data-dir', member.dataDir,
      '--no-local-namespace',
      ...join.flatMap((address) => ['--join', address]),
    ];
    member.proc = await startHaret(this.procs, name, flags);
    return member.proc;
  }

  /** Every member sees the other two with their links up. */
  async linked(timeoutMs: number): Promise<void> {
    await waitFor('every member to see three members with links up', async () => {
      for (const member of this.members) {
        const status = (await admin(this.adminAddress(member.name), { type: 'cluster_status' })) as { members: { name: string; link: string }[] };
        if (status.members.length !== 3 || status.members.some((m) => m.link === 'down')) return false;
      }
      return true;
    }, timeoutMs, 100);
  }

  /** SIGKILL to all three in the same tick. */
  async killAll(): Promise<void> {
    await this.procs.killAll();
    for (const member of this.members) member.proc = null;
  }
}

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** The op of a log record's payload when it is an entry (msgpack [1, op, view, requests]), else null. */
function entryOp(payload: Uint8Array): number | null {
  try {
    const decoded = packr.unpack(payload) as unknown;
    return Array.isArray(decoded) && decoded[0] === 1 && typeof decoded[1] === 'number' ? decoded[1] : null;
  } catch {
    return null;
  }
}

/** The highest entry op in a replica directory's log segments (whole records only), or null. */
export function highestLoggedOp(replicaDir: string): number | null {
  let highest: number | null = null;
  for (const name of segments(replicaDir)) {
    const bytes = readFileSync(join(replicaDir, name));
    let pos = 0;
    while (pos + 16 <= bytes.length) {
      const length = bytes.readUInt32BE(pos);
      if (pos + 16 + length > bytes.length) break;
      const op = entryOp(bytes.subarray(pos + 16, pos + 16 + length));
      if (op !== null) highest = Math.max(highest ?? 0, op);
      pos += 16 + length;
    }
  }
  return highest;
}

/**
 * The embedding script of the embedded-node tests: `startNode({ namespaces: [{ name:
 * 'default', replicas: 3 }], dataDir, clientApi: { port: 0 } })`, printing `port N` once it
 * serves; each `status` line on its stdin is answered with one `status {json}` line (the
 * node's serving flag, problems, primary, workers and replicas with their storage counters).
 */
export function writeEmbeddedScript(dir: string): string {
  const path = join(dir, 'embedded_node.mjs');
  const nodeModule = pathToFileURL(join(repoRoot, 'src', 'node', 'index.ts')).href;
  writeFileSync(
    path,
    `import { createInterface } from 'node:readline';
import { startNode } from ${JSON.stringify(nodeModule)};
const dataDir = process.argv[2];
const node = await startNode({ namespaces: [{ name: 'default', replicas: 3 }], dataDir, clientApi: { host: '127.0.0.1', port: 0 }, logLevel: 'warn' });
process.stdout.write('port ' + node.clientApiAddress.port + '\\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'status') return;
  void (async () => {
    const status = await node.status();
    const primary = await node.primaryOf('default');
    const replicas = status.actors.filter((a) => a.ns === 'default').map((a) => ({
      actor: a.actor, state: a.state, restarts: a.restarts, status: a.status, op: a.op, commit: a.commit,
      storage: a.detail?.storage ?? null, down: a.detail?.down ?? null, startedAs: a.detail?.startedAs ?? null,
    }));
    const workers = status.workers.map((w) => ({ name: w.name, state: w.state, restarts: w.restarts }));
    process.stdout.write('status ' + JSON.stringify({ serving: status.serving, problems: status.problems, primary, workers, replicas }) + '\\n');
  })();
});
`,
  );
  return path;
}

export type EmbeddedStatus = {
  readonly serving: boolean;
  readonly problems: readonly string[];
  readonly primary: number | null;
  readonly workers: readonly { readonly name: string; readonly state: string; readonly restarts: number }[];
  readonly replicas: readonly {
    readonly actor: string;
    readonly state: string;
    readonly restarts: number;
    readonly status: string | null;
    readonly op: number | null;
    readonly commit: number | null;
    readonly storage: { readonly state: string; readonly faults: number; readonly fsyncs: number; readonly entries: number } | null;
    readonly down: { readonly since: number | null; readonly reason: string | null } | null;
    readonly startedAs: string | null;
  }[];
};

/** An embedded node process: its client address and a `status` query over its stdin. */
export type EmbeddedProc = Proc & { readonly client: string; status(timeoutMs?: number): Promise<EmbeddedStatus> };

/** Runs the embedding script (`node --import tsx SCRIPT DATA_DIR`, optionally behind a wrapper that execs it) until it prints its port. */
export async function startEmbedded(procs: Processes, name: string, script: string, dataDir: string, wrapper: readonly string[] = []): Promise<EmbeddedProc> {
  const args = ['--import', 'tsx', script, dataDir];
  const proc = wrapper.length === 0 ? procs.spawn(name, process.execPath, args) : procs.spawn(name, wrapper[0] as string, [...wrapper.slice(1), process.execPath, ...args]);
  const match = await stdoutLine(proc, /^port (\d+)$/, 60_000);
  let asked = 0;
  const status = async (timeoutMs = 10_000): Promise<EmbeddedStatus> => {
    asked += 1;
    const wanted = asked;
    proc.child.stdin?.write('status\n');
    const line = await waitFor(`${name} status answer`, () => {
      if (proc.done()) throw new Error(`${name} exited`);
      const answers = proc.stdout().split('\n').filter((l) => l.startsWith('status '));
      return answers.length >= wanted ? (answers[wanted - 1] as string) : null;
    }, timeoutMs, 20);
    return JSON.parse(line.slice('status '.length)) as EmbeddedStatus;
  };
  return { ...proc, client: `127.0.0.1:${match[1]}`, status };
}
