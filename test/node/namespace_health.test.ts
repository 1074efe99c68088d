/**
 * Issue 13: a namespace that cannot come back by itself says so and never hangs its callers.
 * The monitor's judgement on synthetic status snapshots (grace, one error line on entering and
 * one warn line on leaving, cluster namespaces counted against their total, failing disks); a
 * real in-memory node whose two of three replicas are killed at once (they stay recovering
 * for good) answers embedded, raw TCP and client-library calls `unavailable` at once; a healthy
 * node under load through a replica crash never marks anything; and a durable `haret start`
 * whose files may not grow past 1 MiB (prlimit --fsize: EFBIG, which works as root where a
 * read-only chmod does not) marks its namespace with one error-level log line.
 */

import { expect } from 'chai';
import { connect } from '../../src/net/index.ts';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';
import type { ActorReport } from '../../src/node/node.ts';
import { NamespaceHealth, namespaceOutage, type HealthLog, type HealthSource, type WatchedNamespace } from '../../src/node/health.ts';
import { eventually } from '../runtime/helpers.ts';
import { RawClient, register, treeRequest } from '../net/raw_client.ts';
import { Processes, logLines, removeDir, startHaret, tempDir, waitFor } from '../durability/processes.ts';

/** A replica's report as node.status() gives it. */
function report(actor: string, ns: string, status: string, detail: Record<string, unknown> = {}): ActorReport {
  return {
    actor,
    worker: actor,
    state: 'running',
    restarts: 0,
    failure: null,
    retryAt: null,
    role: 'backup',
    ns,
    status,
    view: 0,
    op: 0,
    commit: 0,
    mailboxDepth: 0,
    mailboxDropped: 0,
    watches: 0,
    leases: 0,
    detail: { ns, status, ...detail },
  };
}

type Line = { readonly level: 'error' | 'warn'; readonly fields: object; readonly message: string };

function recorder(): HealthLog & { readonly lines: Line[] } {
  const lines: Line[] = [];
  return {
    lines,
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
  };
}

/** A monitor over a snapshot the test sets (never started: the test calls `observe` with its own clock). */
function monitor(namespaces: readonly WatchedNamespace[], graceMs = 1_500): { health: NamespaceHealth; log: ReturnType<typeof recorder>; changes: [string, string | null][] } {
  const log = recorder();
  const changes: [string, string | null][] = [];
  const source: HealthSource = { status: () => Promise.resolve({ actors: [] }), namespaces: () => namespaces };
  return { health: new NamespaceHealth(source, log, { graceMs, onChange: (ns, reason) => changes.push([ns, reason]) }), log, changes };
}

const three: WatchedNamespace = { name: 'default', replicaCount: 3, durable: false };
const normal = (i: number, ns = 'default'): ActorReport => report(`${ns}/r${i}`, ns, 'normal');
const recovering = (i: number, ns = 'default'): ActorReport => report(`${ns}/r${i}`, ns, 'recovering');

describe('namespace health: the monitor', () => {
  it('marks a namespace only after more than f replicas stayed unable for the grace, with one error line naming them and what to do', () => {
    const { health, log, changes } = monitor([three]);
    const stuck = [normal(0), recovering(1), recovering(2)];
    health.observe(stuck, 0);
    health.observe(stuck, 1_000);
    expect(health.unavailable('default')).to.equal(null);
    health.observe(stuck, 1_500);
    const reason = health.unavailable('default');
    expect(reason).to.be.a('string');
    expect(reason).to.contain('namespace default cannot serve: 2 of 3 replicas cannot take part');
    expect(reason).to.contain('default/r1 recovering').and.to.contain('default/r2 recovering').and.to.contain('more than f = 1');
    expect(reason).to.contain('restore the namespace from a backup');
    for (let t = 2_000; t <= 10_000; t += 500) health.observe(stuck, t);
    expect(log.lines.map((line) => line.level)).to.deep.equal(['error']);
    expect(log.lines[0]?.message).to.match(/^namespace_unavailable: namespace default cannot serve/);
    expect(log.lines[0]?.fields).to.deep.equal({ namespace: 'default', replicas: ['default/r1', 'default/r2'] });
    expect(changes).to.deep.equal([['default', reason]]);
    expect(health.counters).to.include({ checks: 20, entered: 1, left: 0 });
  });

  it('unmarks at the first healthy snapshot with one warn line; marking again takes the whole grace again', () => {
    const { health, log, changes } = monitor([three]);
    const stuck = [normal(0), recovering(1), recovering(2)];
    health.observe(stuck, 0);
    health.observe(stuck, 1_600);
    expect(health.unavailable('default')).to.not.equal(null);
    health.observe([normal(0), normal(1), recovering(2)], 2_000);
    expect(health.unavailable('default')).to.equal(null);
    expect(log.lines.map((line) => line.level)).to.deep.equal(['error', 'warn']);
    expect(log.lines[1]?.message).to.equal('namespace_available: namespace default can serve again');
    expect(changes.map(([, reason]) => reason === null)).to.deep.equal([false, true]);
    health.observe(stuck, 2_500);
    health.observe(stuck, 3_900);
    expect(health.unavailable('default')).to.equal(null);
    health.observe(stuck, 4_000);
    expect(health.unavailable('default')).to.not.equal(null);
    expect(health.counters).to.include({ entered: 2, left: 1 });
  });

  it('never marks a namespace that is unable for less than the grace at a time (view changes, restarts), nor one with at most f unable', () => {
    const { health, log } = monitor([three]);
    for (let t = 0; t < 60_000; t += 500) {
      // Two replicas recovering for 1 s of every 2 s: never 1.5 s in a row.
      const flapping = t % 2_000 < 1_000 ? [normal(0), recovering(1), recovering(2)] : [normal(0), normal(1), report('default/r2', 'default', 'view_change')];
      health.observe(flapping, t);
    }
    for (let t = 60_000; t < 70_000; t += 500) health.observe([normal(0), recovering(1), report('default/r2', 'default', 'view_change')], t);
    expect(health.unavailable('default')).to.equal(null);
    expect(log.lines).to.deep.equal([]);
  });

  it('counts durable replicas whose disk fails or whose store gave up, and down ones, naming why', () => {
    const durable: WatchedNamespace = { name: 'd', replicaCount: 3, durable: true };
    const failing = report('d/r0', 'd', 'normal', { storage: { state: 'failing' } });
    const lost = report('d/r1', 'd', 'normal', { storage: { state: 'lost' } });
    const down = report('d/r2', 'd', 'stopped', { down: { since: 1, reason: 'cannot open storage: EROFS' }, storage: { state: 'ok' } });
    const outage = namespaceOutage(durable, [failing, lost, down]);
    expect(outage?.replicas.map((replica) => replica.replica)).to.deep.equal(['d/r0', 'd/r1', 'd/r2']);
    expect(outage?.reason).to.contain('d/r0 its disk fails').and.to.contain('d/r1 its store gave up').and.to.contain('d/r2 down (cannot open storage: EROFS)');
    expect(outage?.reason).to.contain('fix the disk');
    expect(namespaceOutage(durable, [failing, report('d/r1', 'd', 'normal', { storage: { state: 'ok' } }), normal(2, 'd')])).to.equal(null);
  });

  it('a cluster namespace: only this node replicas are seen, counted against the total; other namespaces are apart', () => {
    const five: WatchedNamespace = { name: 'c', replicaCount: 5, durable: false };
    // This node hosts r1 and r3 of five: two recovering is at most f = 2.
    expect(namespaceOutage(five, [recovering(1, 'c'), recovering(3, 'c'), recovering(0), recovering(1), recovering(2)])).to.equal(null);
    // Three of five here, all recovering: more than f, whatever the other two do.
    expect(namespaceOutage(five, [recovering(0, 'c'), recovering(2, 'c'), recovering(4, 'c')])?.reason).to.contain('3 of 5 replicas cannot take part');
    const { health } = monitor([five, three], 0);
    health.observe([recovering(0, 'c'), recovering(2, 'c'), recovering(4, 'c'), normal(0), normal(1), normal(2)], 0);
    expect(health.unavailable('c')).to.not.equal(null);
    expect(health.unavailable('default')).to.equal(null);
  });

  it('takes the status on its interval, never two at once, and stops', async () => {
    let calls = 0;
    let inFlight = 0;
    let overlapped = false;
    const source: HealthSource = {
      status: async () => {
        calls += 1;
        inFlight += 1;
        if (inFlight > 1) overlapped = true;
        await new Promise((resolve) => setTimeout(resolve, 35));
        inFlight -= 1;
        return { actors: [normal(0), recovering(1), recovering(2)] };
      },
      namespaces: () => [three],
    };
    const log = recorder();
    const health = new NamespaceHealth(source, log, { intervalMs: 10, graceMs: 100 });
    health.start();
    try {
      await eventually('marked', () => health.unavailable('default'), 5_000, 5);
    } finally {
      health.stop();
    }
    const after = calls;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).to.equal(after);
    expect(overlapped).to.equal(false);
    expect(log.lines.filter((line) => line.level === 'error')).to.have.length(1);
  });
});

describe('namespace health: a node', function () {
  this.timeout(120_000);

  it('two of three in-memory replicas killed at once: embedded, raw TCP and client-library calls get `unavailable` at once, a call in flight too, status says so', async () => {
    const node = await startNode({ logLevel: 'silent', clientApi: { port: 0 } });
    const raw: RawClient[] = [];
    let remote: Awaited<ReturnType<typeof connect>> | null = null;
    try {
      const client = node.client();
      await client.create('/kept', 'blob');
      const port = node.clientApiAddress?.port ?? 0;
      expect(node.health.unavailable('default')).to.equal(null);
      // Replica 0 is the view-0 primary; 1 and 2 come back recovering and nobody can answer them.
      await Promise.all([node.faults.terminate(node.replicaId('default', 1)), node.faults.terminate(node.replicaId('default', 2))]);
      const crashedAt = performance.now();
      // A write sent now waits for a quorum that never comes: it must not wait out its deadline.
      const inFlight = client.create('/during', 'blob').then(
        () => null,
        (error: unknown) => ({ error, ms: performance.now() - crashedAt }),
      );
      const reason = await eventually('the namespace marked', () => node.health.unavailable('default'), 15_000, 20);
      expect(reason).to.contain('cannot serve').and.to.contain('default/r1').and.to.contain('default/r2');

      const settled = await inFlight;
      expect(settled, 'the write in flight settled').to.not.equal(null);
      expect(settled?.error).to.be.instanceOf(HaretError);
      expect(settled?.error).to.include({ code: 'unavailable', executed: 'maybe' });
      expect(settled?.ms ?? Infinity).to.be.below(node.options.callDeadlineMs - 2_000);

      // Embedded: at once, not executed.
      let started = performance.now();
      const embedded = await client.stat('/kept').then(
        () => null,
        (error: unknown) => error,
      );
      expect(performance.now() - started).to.be.below(200);
      expect(embedded).to.be.instanceOf(HaretError);
      expect(embedded).to.include({ code: 'unavailable', executed: false });
      expect((embedded as HaretError).message).to.contain('namespace default cannot serve');

      // Raw TCP: a typed error for the request's id, at once.
      const opened = await RawClient.open(port);
      raw.push(opened.client);
      started = performance.now();
      opened.client.send(register(1, 'health-raw-client'));
      const answer = await opened.client.answerTo(1, 5_000);
      expect(answer.atMs - started).to.be.below(200);
      expect(answer.message).to.deep.include({ type: 'error', id: 1, code: 'unavailable' });
      opened.client.send(treeRequest(2, 'health-raw-client', 1, { type: 'stat', path: '/kept' }));
      expect((await opened.client.answerTo(2, 5_000)).message).to.deep.include({ type: 'error', id: 2, code: 'unavailable' });
      expect(opened.client.isClosed).to.equal(false);

      // The client library: HaretError unavailable, not executed, at once.
      remote = await connect([`127.0.0.1:${port}`]);
      started = performance.now();
      const overTcp = await remote
        .client('default')
        .stat('/kept')
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(performance.now() - started).to.be.below(200);
      expect(overTcp).to.be.instanceOf(HaretError);
      expect(overTcp).to.include({ code: 'unavailable', executed: false });

      const status = await node.status();
      expect(status.serving).to.equal(false);
      expect(status.problems.some((line) => line.startsWith('namespace default:'))).to.equal(true);
      const counters = (id: string): Record<string, unknown> => (status.actors.find((actor) => actor.actor === id)?.detail ?? {}) as Record<string, unknown>;
      expect(counters('host/api')['namespaceUnavailable']).to.equal(2);
      expect(counters('host/net')['unavailable']).to.be.at.least(3);

      // Said once: checks go on, the error line is not repeated.
      const checks = node.health.counters.checks;
      await eventually('four more checks', () => node.health.counters.checks >= checks + 4, 10_000, 50);
      expect(node.health.counters).to.include({ entered: 1, left: 0 });
    } finally {
      for (const client of raw) client.destroy();
      await remote?.close();
      await node.stop();
    }
  });

  for (const durable of [false, true]) {
    it(`a healthy ${durable ? 'durable' : 'in-memory'} node under load, through a primary crash and its recovery, never marks its namespace`, async () => {
      const dir = durable ? tempDir('haret-health-ok-') : null;
      // A worker per replica (a durable node's default is one worker for all, where this kill
      // would be a whole-group restart: test/node/single_layout.test.ts).
      const node = await startNode({ logLevel: 'silent', workerLayout: 'actor_per_worker', supervisor: { maxRestarts: 5, windowMs: 60_000, backoffMinMs: 10, backoffMaxMs: 100 }, ...(dir === null ? {} : { dataDir: dir }) }).catch((error: unknown) => {
        if (dir !== null) removeDir(dir);
        throw error;
      });
      try {
        expect(node.options.durable).to.equal(durable);
        const client = node.client();
        let stop = false;
        let acked = 0;
        const unavailable: unknown[] = [];
        const writers = Array.from({ length: 20 }, async (_, k) => {
          await client.create(`/q${k}`, 'queue');
          for (let i = 0; !stop; i += 1) {
            try {
              await client.queuePush(`/q${k}`, `${i}`);
              acked += 1;
            } catch (error) {
              if (error instanceof HaretError && error.code === 'unavailable') unavailable.push(error);
            }
          }
        });
        await eventually('500 acknowledged', () => acked >= 500, 30_000, 10);
        const primary = await node.primaryOf('default');
        expect(primary).to.not.equal(null);
        await node.faults.terminate(node.replicaId('default', primary as number));
        await eventually(
          'the crashed replica normal again',
          async () => (await node.status()).actors.filter((actor) => actor.ns === 'default' && actor.status === 'normal').length === 3,
          30_000,
          50,
        );
        const ackedThen = acked;
        const checks = node.health.counters.checks;
        // Several more checks (≥ 2 s) under load after the recovery.
        await eventually('more checks under load', () => node.health.counters.checks >= checks + 4 && acked > ackedThen + 200, 30_000, 50);
        stop = true;
        await Promise.all(writers);
        expect(unavailable).to.deep.equal([]);
        expect(node.health.counters).to.include({ entered: 0, left: 0 });
        expect(node.health.counters.checks).to.be.above(4);
        expect(node.health.unavailable('default')).to.equal(null);
      } finally {
        await node.stop();
        if (dir !== null) removeDir(dir);
      }
    });
  }
});

describe('namespace health: a durable node whose disk refuses to grow', function () {
  this.timeout(180_000);

  it('files capped at 1 MiB (EFBIG): the namespace is marked with one error line, and requests get `unavailable` at once', async () => {
    const procs = new Processes();
    const dir = tempDir('haret-health-');
    const raw: RawClient[] = [];
    let remote: Awaited<ReturnType<typeof connect>> | null = null;
    try {
      const node = await startHaret(procs, 'capped', ['--data-dir', dir], { wrapper: ['prlimit', `--fsize=${1024 * 1024}`, '--'] });
      remote = await connect([node.client]);
      const db = remote.client('default');
      await db.create('/big', 'queue');
      // Closed-loop writers of 16 KiB values: the log segments pass 1 MiB after ~64 of them.
      const value = 'x'.repeat(16 * 1024);
      const errors: string[] = [];
      let stop = false;
      const writers = Array.from({ length: 4 }, async () => {
        while (!stop) {
          await db.queuePush('/big', value).catch((error: unknown) => {
            errors.push(error instanceof HaretError ? `${error.code}/${String(error.executed)}` : String(error));
          });
        }
      });
      const marked = await waitFor('the namespace_unavailable line', () => logLines(node, 'namespace_unavailable').at(0), 60_000, 100);
      stop = true;
      expect(marked['level']).to.equal(50);
      expect(marked['namespace']).to.equal('default');
      expect(String(marked['msg'])).to.contain('its disk fails').and.to.contain('fix the disk');
      expect(logLines(node, 'storage_failing').length).to.be.at.least(2);

      const port = Number(node.client.slice(node.client.lastIndexOf(':') + 1));
      const opened = await RawClient.open(port);
      raw.push(opened.client);
      const started = performance.now();
      opened.client.send(register(1, 'health-capped-client'));
      const answer = await opened.client.answerTo(1, 5_000);
      expect(answer.atMs - started).to.be.below(200);
      expect(answer.message).to.deep.include({ type: 'error', id: 1, code: 'unavailable' });

      // The writers stop: their calls in flight end (timeout then `unavailable` on the resend), none hangs.
      await Promise.race([Promise.all(writers), new Promise((_, reject) => setTimeout(() => reject(new Error('a writer still hangs')), 30_000))]);
      expect(errors.every((error) => error.startsWith('unavailable/') || error.startsWith('timeout/')), errors.join(', ')).to.equal(true);
      expect(errors.some((error) => error.startsWith('unavailable/'))).to.equal(true);
      expect(logLines(node, 'namespace_unavailable')).to.have.length(1);
    } finally {
      for (const client of raw) client.destroy();
      await remote?.close();
      await procs.killAll();
      removeDir(dir);
    }
  });
});
