/**
 * One embedded node (issue 13, "Tests with real processes and files"): a child process runs
 * `startNode({ namespaces: [{ name: 'default', replicas: 3 }], dataDir, clientApi: { port: 0 } })`
 * (a script written into the temp dir, run with tsx); eight closed-loop writers push through
 * `connect()`; the child gets SIGKILL while they are writing (every replica of the namespace
 * dies at once: they share the process), and the same script restarts on the same directory.
 * Every acknowledged push must be in its queue exactly once, in push order, and the replicas
 * must come back by themselves (restart from intact storage, no recovery protocol).
 */

import { expect } from 'chai';
import type { RemoteConnection } from '../../src/net/index.ts';
import {
  checkQueues,
  connectWithin,
  createQueue,
  namespaceClient,
  pause,
  queuePath,
  runScenario,
  startEmbedded,
  waitFor,
  writeEmbeddedScript,
  Writers,
} from './processes.ts';
import { join } from 'node:path';

const writerCount = 8;

describe('durability: kill -9 of an embedded node under load', function () {
  this.timeout(120_000);

  it('restarted on the same data directory, it has every acknowledged write and serves again', async () => {
    let remote: RemoteConnection | null = null;
    let writers: Writers | null = null;
    const report: Record<string, unknown> = {};
    await runScenario('haret-durable-embedded-', report, async (dir, procs, started) => {
      const script = writeEmbeddedScript(dir);
      const dataDir = join(dir, 'data');
      const first = await startEmbedded(procs, 'embedded', script, dataDir);
      report['startedMs'] = Math.round(performance.now() - started);
      remote = await connectWithin([first.client], 10_000);
      const client = await namespaceClient(remote, 'default', 10_000);
      for (let w = 0; w < writerCount; w++) await waitFor(`queue ${queuePath(w)}`, () => createQueue(client, queuePath(w)), 30_000);
      writers = new Writers(client, writerCount);
      writers.start();
      await pause(2_000);
      const beforeKill = writers.total;

      // SIGKILL while the writers are still pushing; then stop them and drop the connection.
      first.child.kill('SIGKILL');
      const exit = await first.exited;
      expect(exit.signal).to.equal('SIGKILL');
      writers.stop();
      await remote.close();
      remote = null;
      await writers.settled();
      expect(writers.failures, 'writers that failed with an unexpected error').to.deep.equal([]);
      report['acknowledged'] = writers.total;
      report['acknowledgedBeforeKillSignal'] = beforeKill;
      report['writerErrors'] = writers.errorSummary();
      expect(writers.total).to.be.greaterThan(50);

      const restartAt = performance.now();
      const second = await startEmbedded(procs, 'embedded-restarted', script, dataDir);
      remote = await connectWithin([second.client], 10_000);
      const after = await namespaceClient(remote, 'default', 10_000);
      await waitFor('the namespace to take a new write', async () => {
        await createQueue(after, '/after');
        await after.queuePush('/after', 'new');
        return true;
      }, 30_000, 200);
      report['servesAfterRestartMs'] = Math.round(performance.now() - restartAt);

      const checked = await checkQueues(after, writers);
      report['found'] = checked.found;
      expect(checked.problems, 'acknowledged pushes lost, doubled or reordered').to.deep.equal([]);

      const status = await second.status();
      report['startedAs'] = status.replicas.map((r) => `${r.actor}:${r.startedAs}`);
      report['problems'] = status.problems;
      expect(status.replicas.map((r) => r.status)).to.deep.equal(['normal', 'normal', 'normal']);
      expect(status.serving, status.problems.join('; ')).to.equal(true);
    }, async () => {
      writers?.stop();
      await remote?.close();
    });
  });
});
