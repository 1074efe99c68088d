/**
 * Runs a batch of simulator seeds on two threads: this one and one worker (seed_worker.ts),
 * each taking the next seed from a shared counter until none is left (seeds differ in length
 * up to 20x). The simulator is single-threaded and deterministic, so a seed's result does not
 * depend on the thread; when the second core is otherwise idle while the simulator runs, a
 * batch takes about half the time. In `npm test`'s pure shard (test/shards.mjs) the other
 * shard has that core, so there every seed runs on this thread.
 */
import { Worker } from 'node:worker_threads';
import { bootstrapScript, tsxRegisterUrl } from '../../runtime/bootstrap.ts';
import { formatFailure, runSeed, type VoprOptions } from './vopr.ts';

/** Seeds from..to; `next` (one Int32) counts the seeds taken by either thread. */
export type SeedJob = { readonly id: number; readonly from: number; readonly to: number; readonly next: SharedArrayBuffer; readonly options: VoprOptions };
export type SeedFailure = { readonly seed: number; readonly kind: string; readonly formatted: string; readonly replay: string };

const workerModule = new URL('./seed_worker.ts', import.meta.url).href;

/** Runs seeds of `job` taken from its counter until none is left; the failures. */
export function runSeeds(job: SeedJob): SeedFailure[] {
  const next = new Int32Array(job.next);
  const failures: SeedFailure[] = [];
  for (let seed = job.from + Atomics.add(next, 0, 1); seed <= job.to; seed = job.from + Atomics.add(next, 0, 1)) {
    const report = runSeed(seed, job.options);
    if (!report.ok) failures.push({ seed, kind: report.violation?.kind ?? '?', formatted: formatFailure(report), replay: report.replay });
  }
  return failures;
}

export class SeedThreads {
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (failures: SeedFailure[]) => void; reject: (error: Error) => void }>();

  #start(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(bootstrapScript, { eval: true, workerData: { haretEntry: workerModule, haretTsx: tsxRegisterUrl(workerModule) } });
    worker.on('message', (answer: { id: number; failures: SeedFailure[] }) => {
      this.#waiting.get(answer.id)?.resolve(answer.failures);
      this.#waiting.delete(answer.id);
    });
    const fail = (error: Error): void => {
      for (const waiter of this.#waiting.values()) waiter.reject(error);
      this.#waiting.clear();
      this.#worker = null;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`seed worker exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  /** Every seed in from..to; the failures, in seed order. */
  async run(from: number, to: number, options: VoprOptions = {}): Promise<SeedFailure[]> {
    if (process.env['HARET_TEST_SHARD'] === 'pure') return runSeeds({ id: 0, from, to, next: new SharedArrayBuffer(4), options });
    const worker = this.#start();
    const id = this.#nextId++;
    const answer = new Promise<SeedFailure[]>((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
    const job: SeedJob = { id, from, to, next: new SharedArrayBuffer(4), options };
    worker.postMessage(job);
    const failures = runSeeds(job);
    failures.push(...(await answer));
    return failures.sort((a, b) => a.seed - b.seed);
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    if (worker !== null) {
      worker.removeAllListeners('exit');
      await worker.terminate();
    }
  }
}
