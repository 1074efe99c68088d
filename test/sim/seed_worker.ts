/**
 * The second thread of test/sim/seed_threads.ts: takes seeds of a job from the shared counter
 * and runs them with `runSeed`, the same as the main thread, until none is left; answers with
 * the failing ones, formatted.
 */
import { parentPort } from 'node:worker_threads';
import { runSeeds, type SeedJob } from './seed_threads.ts';

if (parentPort === null) throw new Error('seed_worker runs in a worker');
const port = parentPort;
port.on('message', (job: SeedJob) => {
  port.postMessage({ id: job.id, failures: runSeeds(job) });
});
