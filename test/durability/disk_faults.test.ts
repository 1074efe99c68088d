/**
 * Disk faults on a real process (issue 13, "Tests with real processes and files").
 *
 * Disk full: `haret start --data-dir` with a namespace of three replicas of its own runs under a
 * file-size limit (`prlimit --fsize`, or `ulimit -f` through sh) that its log segments reach
 * while closed-loop writers push. Node ignores SIGXFSZ, so a write past the limit fails with
 * EFBIG instead of killing the process. Expected: the process stays up, no worker crash loop
 * (restarts do not climb), calls fail with a typed error, an error-level `storage_failing`
 * line says why (once per episode and replica); once the limit is lifted (`prlimit --pid`)
 * writes succeed again and nothing acknowledged before is lost.
 *
 * Read-only directory: the embedded node (the script of embedded_kill.test.ts, so that
 * `node.status()` with its `problems` can be read) runs as an unprivileged user (setpriv to
 * 65534 when the tests run as root: root ignores permissions); one replica's directory, the
 * primary's, is made read-only under load (0555, files 0444). Permissions are checked when a
 * file is opened, so the store's open segment and superblock stay writable and it would only
 * fail on a new file (a new segment or a checkpoint, each after 64 MiB of log): that phase
 * asserts no crash and no restart, and reports what it saw. Then the node is killed and
 * restarted while the directory is read-only: that replica cannot open its store, is down
 * (a status problem naming it, logged once, no crash loop) and the two others serve.
 * Permissions restored: the replica comes back to normal, nothing acknowledged is lost.
 */

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RemoteConnection } from '../../src/net/index.ts';
import {
  admin,
  adminStatus,
  checkQueues,
  connectWithin,
  createQueue,
  type EmbeddedProc,
  type EmbeddedStatus,
  logLines,
  namespaceClient,
  pause,
  type Proc,
  queuePath,
  runScenario,
  startEmbedded,
  startHaret,
  type StatusLine,
  waitFor,
  writeEmbeddedScript,
  Writers,
} from './processes.ts';

const writerCount = 8;
/** Client calls give up after 60 ticks of 50 ms: a stalled namespace shows as typed errors within seconds. */
const quickClient = { client: { giveUpTicks: 60 } } as const;

function hasCommand(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, [...args], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

/**
 * A wrapper that runs a command with a soft file-size limit of `bytes` (the hard limit stays
 * unlimited: raising a hard limit needs CAP_SYS_RESOURCE, which a container's root may lack,
 * while anyone may raise a soft limit up to the hard one).
 */
function fsizeWrapper(bytes: number): string[] {
  if (hasCommand('prlimit', ['--version'])) return ['prlimit', `--fsize=${bytes}:unlimited`];
  // sh's ulimit -f counts 512-byte blocks (POSIX).
  return ['sh', '-c', `ulimit -S -f ${Math.floor(bytes / 512)} && exec "$@"`, 'sh'];
}

/** What the tests read of a node's status: its replicas' supervision and protocol state, and (embedded only) its problems. */
type Health = {
  readonly replicas: readonly { readonly actor: string; readonly state: string; readonly restarts: number; readonly status: string | null }[];
  /** Worker restarts, by worker (admin status: by replica actor). */
  readonly restarts: Record<string, number>;
  /** node.status().serving and problems (the admin API's `health` answer for a `haret start` node). */
  readonly serving: boolean | null;
  readonly problems: readonly string[] | null;
};

function healthOfAdmin(lines: readonly StatusLine[], ns: string, health: { serving: boolean; problems: readonly string[] }): Health {
  const replicas = lines.filter((line) => line.actor.startsWith(`${ns}/`));
  return { replicas, restarts: Object.fromEntries(lines.map((line) => [line.actor, line.restarts])), serving: health.serving, problems: health.problems };
}

function healthOfEmbedded(status: EmbeddedStatus): Health {
  return { replicas: status.replicas, restarts: Object.fromEntries(status.workers.map((w) => [w.name, w.restarts])), serving: status.serving, problems: status.problems };
}

/**
 * Disk full: the node runs with a soft file-size limit of 256 KiB, which its log segments
 * (one per replica) reach after a few thousand pushes.
 */
async function diskFull(kind: 'haret' | 'embedded'): Promise<void> {
  expect(hasCommand('prlimit', ['--version']), 'prlimit (util-linux) is needed to lift the limit of a running process').to.equal(true);
  let remote: RemoteConnection | null = null;
  let writers: Writers | null = null;
  const limit = 256 * 1024;
  const report: Record<string, unknown> = { kind, limitBytes: limit };
  await runScenario('haret-durable-fsize-', report, async (dir, procs, started) => {
    const dataDir = join(dir, 'data');
    const ns = kind === 'haret' ? 'ns1' : 'default';
    let node: Proc & { readonly client: string };
    let health: () => Promise<Health>;
    if (kind === 'haret') {
      const started = await startHaret(procs, 'full', ['--data-dir', dataDir, '--namespace', ns, '--replicas', '3'], { wrapper: fsizeWrapper(limit) });
      node = started;
      health = async () => healthOfAdmin(await adminStatus(started.admin), ns, (await admin(started.admin, { type: 'health' })) as { serving: boolean; problems: readonly string[] });
    } else {
      const started = await startEmbedded(procs, 'full-embedded', writeEmbeddedScript(dir), dataDir, fsizeWrapper(limit));
      node = started;
      health = async () => healthOfEmbedded(await started.status());
    }
    remote = await connectWithin([node.client], 10_000, quickClient);
    const client = await namespaceClient(remote, ns, 10_000);
    for (let w = 0; w < writerCount; w++) await waitFor(`queue ${queuePath(w)}`, () => createQueue(client, queuePath(w)), 30_000);
    const restartsBefore = (await health()).restarts;
    writers = new Writers(client, writerCount);
    writers.start();

    // The log reaches the limit: the disk fails (EFBIG) and the replicas stop acknowledging.
    const failing = await waitFor('an error-level storage_failing line', () => {
      if (node.done()) throw new Error('the node exited');
      const lines = logLines(node, 'storage_failing');
      return lines.length > 0 ? lines : null;
    }, 60_000, 100).catch(async (error: unknown) => {
      if (node.done()) throw new Error(`the node exited ${JSON.stringify(await node.exited)} (SIGXFSZ? the product must ignore it) while writing: ${node.stderr().slice(-2000)}`);
      throw error;
    });
    report['failedAfterMs'] = Math.round(performance.now() - started);
    report['failingLine'] = { code: failing[0]?.['code'], actor: failing[0]?.['actor'], msg: failing[0]?.['msg'] };
    report['acknowledgedBeforeFull'] = writers.total;
    expect(failing[0]?.['code'], JSON.stringify(failing[0])).to.equal('EFBIG');

    // While full: no more acknowledgements after a moment, typed errors, no crash loop.
    await pause(1_000);
    const stalledAt = writers.total;
    const errorsAt = [...writers.errors.values()].reduce((a, b) => a + b, 0);
    await pause(3_000);
    report['acknowledgedWhileFull'] = writers.total - stalledAt;
    report['errorsWhileFull'] = [...writers.errors.values()].reduce((a, b) => a + b, 0) - errorsAt;
    report['writerErrorsWhileFull'] = writers.errorSummary();
    expect(node.done(), 'the node process exited while its disk was full').to.equal(false);
    const whileFull = await health();
    report['statusWhileFull'] = whileFull.replicas.map((line) => `${line.actor} ${line.state} restarts ${line.restarts} ${line.status}`);
    report['problemsWhileFull'] = whileFull.problems ?? 'not available over the admin API';
    expect(whileFull.replicas.map((line) => line.state)).to.deep.equal(['running', 'running', 'running']);
    expect(whileFull.restarts, 'worker restarts while the disk is full').to.deep.equal(restartsBefore);
    expect(writers.errors.size, 'calls while the disk is full fail with a typed error').to.be.greaterThan(0);
    const failingLines = logLines(node, 'storage_failing').length;
    report['storageFailingLines'] = failingLines;
    expect(failingLines, 'storage_failing is logged once per episode and replica').to.be.at.most(3);
    expect(writers.failures, 'writers that failed with an unexpected error').to.deep.equal([]);
    if (whileFull.serving !== null) {
      expect(whileFull.serving, 'node.status().serving while the disk is full').to.equal(false);
      expect(whileFull.problems?.join('\n') ?? '', 'node.status().problems while the disk is full').to.match(/disk fails/);
    }

    // Lift the limit: the store's retry succeeds and writes resume.
    const lift = spawnSync('prlimit', ['--pid', String(node.pid), '--fsize=unlimited:unlimited'], { encoding: 'utf8' });
    expect(lift.status, lift.stderr).to.equal(0);
    const liftedAt = performance.now();
    const resumedFrom = writers.total;
    await waitFor('acknowledgements again after the limit is lifted', () => writers !== null && writers.total >= resumedFrom + 200, 30_000, 50);
    report['resumedAfterMs'] = Math.round(performance.now() - liftedAt);
    report['storageRecoveredLines'] = logLines(node, 'storage_recovered').length;
    writers.stop();
    await writers.settled();
    expect(writers.failures, 'writers that failed with an unexpected error').to.deep.equal([]);
    report['acknowledged'] = writers.total;
    report['writerErrors'] = writers.errorSummary();

    const checked = await checkQueues(client, writers);
    report['found'] = checked.found;
    expect(checked.problems, 'acknowledged pushes lost, doubled or reordered').to.deep.equal([]);
    const after = await health();
    expect(after.replicas.map((line) => line.status)).to.deep.equal(['normal', 'normal', 'normal']);
    expect(after.restarts, 'worker restarts').to.deep.equal(restartsBefore);
    if (after.serving !== null) expect(after.serving, (after.problems ?? []).join('; ')).to.equal(true);
    expect(node.done()).to.equal(false);
  }, async () => {
    writers?.stop();
    await remote?.close();
  });
}

describe('durability: disk faults on a real process', function () {
  this.timeout(150_000);

  it('disk full under `haret start` (a file-size limit the log reaches): the process stays up, calls fail typed, writes resume when the limit is lifted, nothing acknowledged lost', async function () {
    await diskFull('haret');
  });

  it('disk full under an embedded node: the same, and node.status() reports the problem while the disk is full', async function () {
    await diskFull('embedded');
  });

  it('read-only replica directory: typed errors or a status problem, no crash loop; permissions restored, the replica recovers and nothing acknowledged is lost', async function () {
    let remote: RemoteConnection | null = null;
    let writers: Writers | null = null;
    const report: Record<string, unknown> = {};
    const asRoot = process.getuid?.() === 0;
    /** The directory made read-only, restored in `finally` (a non-root user could not remove it otherwise). */
    let readOnlyDir: string | null = null;
    // Root ignores permissions: run the node as nobody (65534), its temp dir chowned to it.
    const wrapper = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    report['runAs'] = asRoot ? 'uid 65534 via setpriv' : `uid ${process.getuid?.()}`;
    await runScenario('haret-durable-readonly-', report, async (dir, procs, started) => {
      if (asRoot) expect(hasCommand('setpriv', ['--version']), 'setpriv (util-linux) to run the node unprivileged').to.equal(true);
      const script = writeEmbeddedScript(dir);
      const dataDir = join(dir, 'data');
      if (asRoot) {
        chownSync(dir, 65534, 65534);
        chownSync(script, 65534, 65534);
      }
      let node: EmbeddedProc = await startEmbedded(procs, 'readonly', script, dataDir, wrapper);
      remote = await connectWithin([node.client], 10_000, quickClient);
      const client = await namespaceClient(remote, 'default', 10_000);
      for (let w = 0; w < writerCount; w++) await waitFor(`queue ${queuePath(w)}`, () => createQueue(client, queuePath(w)), 30_000);
      writers = new Writers(client, writerCount);
      writers.start();
      await waitFor('some acknowledged writes', () => writers !== null && writers.total >= 200, 20_000);
      const first = await node.status();
      const primary = first.primary ?? 0;
      const actor = `default/r${primary}`;
      const replicaDir = join(dataDir, 'replicas', `default.r${primary}`);
      const restartsBefore = first.workers.map((w) => `${w.name}:${w.restarts}`);
      report['readOnlyReplica'] = `${actor} (the primary)`;

      // Phase 1: the primary's directory becomes read-only under load. Its open files stay
      // writable through their descriptors (permissions are checked at open); only a new file
      // (a checkpoint, a segment) would fail: no crash, no restart; what happened is reported.
      readOnlyDir = replicaDir;
      setReadOnly(replicaDir, true);
      const readOnlyAt = performance.now();
      const ackedAtReadOnly = writers.total;
      const problemsSeen = new Set<string>();
      let last: EmbeddedStatus = first;
      while (performance.now() - readOnlyAt < 3_000) {
        last = await node.status();
        for (const problem of last.problems) problemsSeen.add(problem);
        await pause(500);
      }
      report['phase1'] = {
        acknowledged: writers.total - ackedAtReadOnly,
        writerErrors: writers.errorSummary(),
        problems: [...problemsSeen],
        replica: last.replicas.find((r) => r.actor === actor),
        logs: [...logLines(node, 'storage'), ...logLines(node, 'checkpoint')].map((line) => `${String(line['msg'])} ${String(line['code'] ?? '')}`),
      };
      expect(node.done(), 'the node process exited with a read-only replica directory').to.equal(false);
      expect(last.workers.map((w) => `${w.name}:${w.restarts}`), 'worker restarts with a read-only directory').to.deep.equal(restartsBefore);

      // Phase 2: kill -9 and restart while the directory is still read-only: that replica
      // cannot open its store. It is down (status problem, no crash loop); the other two serve.
      node.child.kill('SIGKILL');
      await node.exited;
      writers.stop();
      await remote.close();
      remote = null;
      await writers.settled();
      expect(writers.failures, 'writers that failed with an unexpected error').to.deep.equal([]);
      node = await startEmbedded(procs, 'readonly-restarted', script, dataDir, wrapper);
      remote = await connectWithin([node.client], 10_000, quickClient);
      const client2 = await namespaceClient(remote, 'default', 10_000);
      const down = await waitFor(`a status problem naming ${actor}`, async () => {
        const status = await node.status();
        return status.problems.some((problem) => problem.includes(actor)) ? status : null;
      }, 20_000, 200);
      report['phase2'] = { serving: down.serving, problems: down.problems, replica: down.replicas.find((r) => r.actor === actor) };
      expect(down.serving).to.equal(false);
      const restartsDown = down.workers.map((w) => `${w.name}:${w.restarts}`);
      // The two others serve meanwhile (f = 1).
      const servedAt = performance.now();
      await waitFor('the namespace to take a write with one replica down', async () => {
        await createQueue(client2, '/after');
        await client2.queuePush('/after', 'while-down');
        return true;
      }, 30_000, 200);
      report['phase2ServesAfterMs'] = Math.round(performance.now() - servedAt);
      await pause(2_000);
      const stillDown = await node.status();
      expect(stillDown.workers.map((w) => `${w.name}:${w.restarts}`), 'worker restarts while a replica is down').to.deep.equal(restartsDown);
      expect(logLines(node, 'storage_unavailable').length, 'storage_unavailable logged once per episode').to.equal(1);

      // Phase 3: permissions restored: the replica opens its store and is normal again.
      setReadOnly(replicaDir, false);
      readOnlyDir = null;
      const restoredAt = performance.now();
      const healed = await waitFor(`${actor} normal and the node serving`, async () => {
        const status = await node.status();
        return status.serving && status.replicas.every((r) => r.status === 'normal') ? status : null;
      }, 30_000, 200);
      report['recoveredAfterMs'] = Math.round(performance.now() - restoredAt);
      report['phase3'] = { startedAs: healed.replicas.map((r) => `${r.actor}:${r.startedAs}`), problems: healed.problems };

      const checked = await checkQueues(client2, writers);
      report['acknowledged'] = writers.total;
      report['found'] = checked.found;
      expect(checked.problems, 'acknowledged pushes lost, doubled or reordered').to.deep.equal([]);
    }, async () => {
      writers?.stop();
      await remote?.close();
      if (readOnlyDir !== null) setReadOnly(readOnlyDir, false);
    });
  });
});

/** chmod a replica directory read-only (0555, its files 0444) or back (0755, files 0644). */
function setReadOnly(dir: string, readOnly: boolean): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isFile()) chmodSync(path, readOnly ? 0o444 : 0o644);
  }
  chmodSync(dir, readOnly ? 0o555 : 0o755);
}
