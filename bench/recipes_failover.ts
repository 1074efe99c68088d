/**
 * Election failover, for the recipes benchmark: how long after its leader process dies an
 * election has a new leader.
 *
 * Each round: a leader process (bench/recipes_leader.ts, connected over TCP) campaigns and
 * leads; a standby on a connection of this process campaigns behind it; an observer on a third
 * connection follows `observe()`. The leader is SIGKILLed: nothing revokes its lease, which
 * the node expires once no keep-alive has come for its TTL, deleting its candidate node, and
 * the standby leads. Measured from the kill to the observer seeing the standby's value, and to
 * the standby's `campaign` resolving. The standby then resigns for the next round.
 *
 * The kill comes a random time (uniform below the TTL) after the standby queued: the steps of
 * a round take about the same time each round, so a kill right after them would always land
 * at the same point of the leader's keep-alive period, and measure one point of the range.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, type RemoteConnection } from '../src/net/index.ts';
import type { Leader, NamespaceClient } from '../src/client/namespace_client.ts';

export type FailoverOptions = {
  /** host:port of the node's client API. */
  readonly address: string;
  readonly namespace: string;
  readonly rounds: number;
  /** TTL of every candidate's lease. */
  readonly ttlMs: number;
  /** The whole measurement stops starting rounds past this. */
  readonly budgetMs: number;
};

export type FailoverSample = {
  /** SIGKILL of the leader process to the observer seeing the standby lead. */
  readonly killToObservedMs: number;
  /** SIGKILL to the standby's `campaign` resolving. */
  readonly killToStandbyMs: number;
};

export type FailoverResult = {
  readonly samples: readonly FailoverSample[];
  /** Rounds that failed, with why (a round that cannot finish within its bound fails). */
  readonly failures: readonly string[];
};

const leaderScript = fileURLToPath(new URL('./recipes_leader.ts', import.meta.url));
const electionPath = '/bench/election';
/** Bound of each wait of a round: a start, the leader's campaign, a failover. */
const stepTimeoutMs = 30_000;

const decoder = new TextDecoder();
const leaderValue = (leader: Leader | null): string | null => (leader === null ? null : decoder.decode(leader.value));

/** Leader processes alive: SIGKILLed should this process exit before the round does. */
const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
}

/** Rejects with `what` after `ms`; settles as `promise` otherwise. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The leader as the observer last saw it, and a wait for a given leader value. */
class Observer {
  #current: string | null | undefined = undefined;
  readonly #waiters: { readonly value: string | null; readonly resolve: (at: number) => void }[] = [];
  readonly #iterator: AsyncIterator<Leader | null>;
  /** Ends with the observation (an error after `stop()` is the closing connection's, not a failure). */
  readonly loop: Promise<void>;
  stopped = false;

  constructor(db: NamespaceClient) {
    this.#iterator = db.election(electionPath).observe()[Symbol.asyncIterator]();
    this.loop = this.#run();
  }

  async #run(): Promise<void> {
    for (;;) {
      const next = await this.#iterator.next();
      if (next.done === true) return;
      const at = performance.now();
      this.#current = leaderValue(next.value);
      for (let i = this.#waiters.length - 1; i >= 0; i -= 1) {
        const waiter = this.#waiters[i];
        if (waiter !== undefined && waiter.value === this.#current) {
          this.#waiters.splice(i, 1);
          waiter.resolve(at);
        }
      }
    }
  }

  /** When the observer saw `value` lead: now if it already does, else when it first does. */
  seen(value: string | null): Promise<number> {
    if (this.#current === value) return Promise.resolve(performance.now());
    return new Promise((resolve) => this.#waiters.push({ value, resolve }));
  }

  stop(): void {
    this.stopped = true;
    void this.#iterator.return?.().catch(() => undefined);
  }
}

/** Starts a leader process and resolves once it leads. */
async function startLeader(options: FailoverOptions, value: string): Promise<ChildProcess> {
  installExitHook();
  const child = spawn(process.execPath, ['--import', 'tsx', leaderScript, options.address, options.namespace, electionPath, value, String(options.ttlMs)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-2000)));
  const leading = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('leading ')) resolve();
    });
    child.on('exit', (code, signal) => reject(new Error(`leader process exited (${code ?? signal}): ${err.trim() || 'no output'}`)));
    child.on('error', reject);
  });
  try {
    await within(leading, stepTimeoutMs, `leader ${value} to lead`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return child;
}

/**
 * Waits until at least `count` candidates are queued under the election's path, so that the
 * standby is queued behind the leader before the kill (its campaign would otherwise add its
 * own creation to the measured time).
 */
async function candidatesQueued(db: NamespaceClient, count: number): Promise<void> {
  const deadline = performance.now() + stepTimeoutMs;
  while (performance.now() < deadline) {
    if ((await db.list(electionPath)).entries.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`fewer than ${count} candidates under ${electionPath} after ${stepTimeoutMs} ms`);
}

async function round(options: FailoverOptions, k: number, standbyDb: NamespaceClient, observer: Observer): Promise<FailoverSample> {
  const leaderName = `leader-${k}`;
  const standbyName = `standby-${k}`;
  const child = await startLeader(options, leaderName);
  try {
    await within(observer.seen(leaderName), stepTimeoutMs, `observer to see ${leaderName}`);
    const standby = standbyDb.election(electionPath, { ttlMs: options.ttlMs });
    const won = standby.campaign(standbyName).then(() => performance.now());
    // Should the round fail before the campaign settles, its rejection is handled here.
    won.catch(() => undefined);
    try {
      await candidatesQueued(standbyDb, 2);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * options.ttlMs));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const killedAt = performance.now();
      child.kill('SIGKILL');
      const [observedAt, standbyAt] = await within(Promise.all([observer.seen(standbyName), won]), stepTimeoutMs, `failover to ${standbyName}`);
      await exited;
      return { killToObservedMs: observedAt - killedAt, killToStandbyMs: standbyAt - killedAt };
    } finally {
      await within(standby.resign(), stepTimeoutMs, `${standbyName} to resign`).catch(() => undefined);
    }
  } finally {
    child.kill('SIGKILL');
  }
}

export async function measureFailover(options: FailoverOptions): Promise<FailoverResult> {
  const samples: FailoverSample[] = [];
  const failures: string[] = [];
  const connections: RemoteConnection[] = [];
  const stopAt = performance.now() + options.budgetMs;
  let observer: Observer | null = null;
  try {
    const standbyConnection = await connect([options.address]);
    connections.push(standbyConnection);
    const observerConnection = await connect([options.address]);
    connections.push(observerConnection);
    observer = new Observer(observerConnection.client(options.namespace));
    const observing = observer;
    observing.loop.then(
      () => (observing.stopped ? undefined : failures.push('observer ended early')),
      (error: unknown) => (observing.stopped ? undefined : failures.push(`observer ended: ${error instanceof Error ? error.message : String(error)}`)),
    );
    for (let k = 0; k < options.rounds && performance.now() < stopAt; k += 1) {
      try {
        samples.push(await round(options, k, standbyConnection.client(options.namespace), observing));
        // The next leader campaigns into an empty election.
        await within(observing.seen(null), stepTimeoutMs, 'the election to empty');
      } catch (error: unknown) {
        failures.push(`round ${k + 1}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    observer?.stop();
    await Promise.all(connections.map((connection) => connection.close().catch(() => undefined)));
    if (observer !== null) await within(observer.loop, 5000, 'observer to end').catch(() => undefined);
    for (const child of children) child.kill('SIGKILL');
  }
  return { samples, failures };
}
