/**
 * Watches under real workers and faults (issue 14, "Tests: Real workers and TCP"), embedded:
 * - writers and six watchers (exact and recursive, values on and off) while the test kills the
 *   worker of a replica serving watches, then the primary's worker: every watcher sees every
 *   committed change to its paths exactly once, in order (the versions of each path are exactly
 *   0..final, the batch ops are the ops the writers' results report, values are the ones written);
 * - get-then-watch under concurrent writers to the same path: the watch from a read's op starts
 *   after it and misses nothing (each batch's version is the read's plus the puts committed in
 *   between, by the writers' own results);
 * - garbage sent straight to the replica actors (as if from the endpoint) kills nothing, leaks
 *   nothing and leaves watches working.
 * Counts and timings are printed for the report.
 */

import { expect } from 'chai';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import { eventually } from '../runtime/helpers.ts';
import { removeDir, tempDir } from '../durability/processes.ts';
import { PathWriter, Recorder, runProblems, streamProblems, type Put } from './watch_check.ts';

const decoder = new TextDecoder();

/** Watches open at each replica of `ns` (null for one whose worker is down) and at the endpoint. */
async function watchCounts(node: HaretNode, ns = 'default'): Promise<{ replicas: Record<string, number | null>; endpoint: number }> {
  const { actors } = await node.status();
  const replicas: Record<string, number | null> = {};
  let endpoint = -1;
  for (const actor of actors) {
    const detail = actor.detail as { watches?: unknown; role?: unknown } | null;
    if (actor.actor.startsWith(`${ns}/r`)) replicas[actor.actor] = typeof detail?.watches === 'number' ? detail.watches : null;
    if (detail?.role === 'endpoint' && typeof detail.watches === 'number') endpoint = detail.watches;
  }
  return { replicas, endpoint };
}

async function allNormal(node: HaretNode, ns = 'default', count = 3): Promise<boolean> {
  const { actors } = await node.status();
  return actors.filter((actor) => actor.ns === ns && actor.status === 'normal').length === count;
}

describe('node: watches under faults', function () {
  this.timeout(120_000);
  let node: HaretNode | null = null;
  const recorders: Recorder[] = [];
  const writers: PathWriter[] = [];
  let dir: string | null = null;

  afterEach(async () => {
    await Promise.all(writers.splice(0).map((writer) => writer.stop().catch(() => undefined)));
    await Promise.all(recorders.splice(0).map((recorder) => recorder.stop()));
    await node?.stop();
    node = null;
    if (dir !== null) removeDir(dir);
    dir = null;
  });

  for (const durable of [false, true]) {
    it(`${durable ? 'durable' : 'in-memory'} replicas: writers and six watchers while the worker of a replica serving watches, then the primary's, is killed: every change exactly once, in order`, async () => {
      const started = performance.now();
      if (durable) dir = tempDir('haret-watch-faults-');
      // A worker per replica, so that one replica's worker can be killed (a durable node's default is one worker for all).
      node = await startNode({ logLevel: 'silent', workerLayout: 'actor_per_worker', ...(dir === null ? {} : { dataDir: dir }) });
      expect(node.options.durable).to.equal(durable);
      const client = node.client();
      await client.create('/k', 'directory');
      const specs = [
        { name: 'k-recursive-values', path: '/k', recursive: true, values: true },
        { name: 'k-recursive', path: '/k', recursive: true, values: false },
        { name: 'root-recursive', path: '/', recursive: true, values: false },
        { name: 'k0-exact-values', path: '/k/0', recursive: false, values: true },
        { name: 'k1-exact', path: '/k/1', recursive: false, values: false },
        { name: 'k3-exact-values', path: '/k/3', recursive: false, values: true },
      ];
      for (const spec of specs) recorders.push(new Recorder(spec.name, client.watch(spec.path, { recursive: spec.recursive, values: spec.values })));
      await eventually('every watcher started', () => recorders.every((recorder) => recorder.position !== null), 10_000);
      for (let i = 0; i < 4; i++) writers.push(new PathWriter(`/k/${i}`));
      for (const writer of writers) writer.start(client);
      const ackedTotal = (): number => writers.reduce((sum, writer) => sum + writer.acked.length, 0);
      const lastAckedOp = (): number => Math.max(...writers.map((writer) => writer.acked.at(-1)?.op ?? 0));
      /** Every watcher is past what was acknowledged now (its replica serves it again). */
      const watchersPast = async (what: string): Promise<void> => {
        const op = lastAckedOp();
        await eventually(`${what}: every watcher past op ${op}`, () => recorders.every((recorder) => (recorder.position ?? -1) >= op), 30_000, 20);
      };
      await eventually('200 puts acknowledged', () => ackedTotal() >= 200, 20_000, 10);

      // (a) A backup serving watches (by its own status); the primary only if no backup serves any.
      const primary = await node.primaryOf('default');
      expect(primary).to.not.equal(null);
      const counts = await watchCounts(node);
      const serving = Object.entries(counts.replicas).filter(([, watches]) => (watches ?? 0) > 0);
      expect(serving.reduce((sum, [, watches]) => sum + (watches ?? 0), 0), 'watches served by the replicas').to.equal(specs.length);
      const victim = (serving.find(([actor]) => actor !== node?.replicaId('default', primary as number)) ?? serving[0])?.[0];
      expect(victim).to.be.a('string');
      const servedByVictim = counts.replicas[victim as string];
      const ackedBeforeKill = ackedTotal();
      let killedAt = performance.now();
      await node.faults.terminate(victim as string);
      await eventually('the killed replica normal again', () => allNormal(node as HaretNode), 30_000, 50);
      const firstRecoveryMs = Math.round(performance.now() - killedAt);
      await watchersPast('after the serving replica\'s restart');
      const firstResumeMs = Math.round(performance.now() - killedAt);

      // (b) The primary (whichever it is now).
      const primaryNow = await eventually('a primary', () => node?.primaryOf('default'), 10_000);
      const primaryActor = node.replicaId('default', primaryNow);
      const servedByPrimary = (await watchCounts(node)).replicas[primaryActor];
      const ackedBeforeSecondKill = ackedTotal();
      killedAt = performance.now();
      await node.faults.terminate(primaryActor);
      await eventually('a new primary, every replica normal', async () => (await allNormal(node as HaretNode)) && (await node?.primaryOf('default')) !== primaryNow, 30_000, 50);
      const secondRecoveryMs = Math.round(performance.now() - killedAt);
      await eventually('200 more puts after the primary change', () => ackedTotal() >= ackedBeforeSecondKill + 200, 30_000, 10);
      await watchersPast('after the primary change');
      const secondResumeMs = Math.round(performance.now() - killedAt);

      await Promise.all(writers.map((writer) => writer.stop()));
      const finals = new Map<string, { version: number; op: number }>();
      for (const writer of writers) finals.set(writer.path, await client.stat(writer.path));
      const finalOp = Math.max(...[...finals.values()].map((final) => final.op));
      await eventually(`every watcher through op ${finalOp}`, () => recorders.every((recorder) => (recorder.position ?? -1) >= finalOp), 30_000, 20);
      for (const recorder of recorders) expect(recorder.error, `${recorder.name} ended with an error`).to.equal(null);
      expect(recorders.every((recorder) => !recorder.ended)).to.equal(true);

      const problems = runProblems(specs, recorders, writers, finals);
      console.log(
        `      [watch faults, ${durable ? 'durable' : 'in-memory'}] ${ackedTotal()} puts acknowledged (${writers.map((w) => w.ambiguous).join('/')} ambiguous, ${writers.map((w) => w.notExecuted).join('/')} not executed), final versions ${[...finals.values()].map((f) => f.version).join('/')}, final op ${finalOp}; ` +
          `killed ${victim} serving ${servedByVictim} watches after ${ackedBeforeKill} puts (normal again in ${firstRecoveryMs} ms, every watcher past it in ${firstResumeMs} ms), ` +
          `then primary ${primaryActor} serving ${servedByPrimary} (new primary normal in ${secondRecoveryMs} ms, watchers past it in ${secondResumeMs} ms); ` +
          `batches per watcher ${recorders.map((r) => r.batches.length).join('/')}, longest gaps ${recorders.map((r) => r.longestGapMs).join('/')} ms; ${Math.round(performance.now() - started)} ms in all`,
      );
      expect(problems, problems.slice(0, 20).join('\n')).to.deep.equal([]);

      await Promise.all(recorders.map((recorder) => recorder.stop()));
      await eventually('every watch freed at the replicas and the endpoint', async () => {
        const after = await watchCounts(node as HaretNode);
        return after.endpoint === 0 && Object.values(after.replicas).every((watches) => watches === 0);
      }, 15_000, 50);
    });
  }

  it('get-then-watch while four writers put to the same path: the watch starts after the read and misses nothing', async () => {
    node = await startNode({ logLevel: 'silent' });
    const client = node.client();
    await client.create('/g', 'blob');
    const puts: Put[] = [];
    const failures: string[] = [];
    let stop = false;
    let loops: Promise<void>[] = [];
    /** Four closed-loop writers of /g; each round starts them and stops them once its watch saw enough. */
    const startWriters = (round: number): void => {
      stop = false;
      loops = Array.from({ length: 4 }, async (_, w) => {
        for (let n = 0; !stop; n++) {
          const value = `r${round}w${w}#${n}`;
          try {
            const result = await client.blobPut('/g', value);
            puts.push({ op: result.op, version: result.version, value });
          } catch (error) {
            failures.push(String(error));
          }
        }
      });
    };
    const stopWriters = async (): Promise<void> => {
      stop = true;
      await Promise.all(loops);
    };
    const rounds: { fromOp: number; fromVersion: number; batches: number; events: number }[] = [];
    const problems: string[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        startWriters(round);
        await new Promise((resolve) => setTimeout(resolve, 150));
        const read = await client.blobGet('/g');
        const recorder = new Recorder(`round ${round}`, client.watch('/g', { fromOp: read.op, values: true }));
        recorders.push(recorder);
        const putsBefore = puts.length;
        await eventually(`round ${round}: 50 more puts`, () => puts.length >= putsBefore + 50, 20_000, 5);
        // Stopped before checking: an event may arrive before its put's answer, so only a settled
        // writer's record is complete.
        await stopWriters();
        const through = Math.max(...puts.map((put) => put.op));
        await eventually(`round ${round}: the watcher through op ${through}`, () => (recorder.position ?? -1) >= through, 20_000, 5);
        await recorder.stop();
        expect(recorder.error).to.equal(null);
        problems.push(...streamProblems(recorder, read.op));
        const events = recorder.batches.filter((batch) => batch.kind === 'events');
        const first = events[0];
        if (first === undefined || first.op <= read.op) problems.push(`round ${round}: first events batch at ${first?.op ?? 'none'}, read at ${read.op}`);
        // Each batch: the read's version plus every put committed in (read.op, batch.op], and the value of the last of them.
        for (const batch of events) {
          const [event, ...others] = batch.events;
          if (event === undefined || others.length > 0 || event.path !== '/g' || event.kind !== 'changed') {
            problems.push(`round ${round}: batch ${batch.op} is ${JSON.stringify(batch.events.map((e) => [e.kind, e.path]))}`);
            continue;
          }
          const committed = puts.filter((put) => put.op > read.op && put.op <= batch.op).length;
          if (event.version !== read.version + committed) problems.push(`round ${round}: batch ${batch.op} version ${event.version}, expected ${read.version} + ${committed}`);
          const inEntry = puts.filter((put) => put.op === batch.op);
          const last = inEntry.reduce<Put | undefined>((best, put) => (best === undefined || put.version > best.version ? put : best), undefined);
          if (last === undefined) problems.push(`round ${round}: batch ${batch.op} matches no acknowledged put`);
          else if (event.value === undefined || event.value === null || decoder.decode(event.value) !== last.value) problems.push(`round ${round}: batch ${batch.op} value differs from the entry's last put`);
        }
        // Every entry that committed a put after the read and through the end of the round is a batch.
        const batchOps = new Set(events.map((batch) => batch.op));
        const endOp = recorder.position ?? 0;
        const missed = [...new Set(puts.filter((put) => put.op > read.op && put.op <= endOp).map((put) => put.op))].filter((op) => !batchOps.has(op));
        if (missed.length > 0) problems.push(`round ${round}: entries with puts never delivered: ${missed.slice(0, 10).join(',')}`);
        rounds.push({ fromOp: read.op, fromVersion: read.version, batches: recorder.batches.length, events: events.length });
      }
    } finally {
      await stopWriters();
    }
    console.log(`      [get-then-watch] ${puts.length} puts by 4 writers to /g; rounds ${rounds.map((r) => `from op ${r.fromOp} (v${r.fromVersion}): ${r.events} events batches`).join('; ')}`);
    expect(failures).to.deep.equal([]);
    expect(problems, problems.slice(0, 20).join('\n')).to.deep.equal([]);
  });

  it('garbage sent straight to the replica actors crashes nothing, opens nothing, and watches still work', async () => {
    node = await startNode({ logLevel: 'silent' });
    const client = node.client();
    await client.create('/x', 'blob');
    const long = 'w'.repeat(10_000);
    const garbage: unknown[] = [
      null,
      42,
      'watch_subscribe',
      { type: 'watch_subscribe' },
      { type: 'watch_subscribe', watchId: 'g.1', path: '..', recursive: false, fromOp: null, values: false },
      { type: 'watch_subscribe', watchId: 'g.2', path: '/x', recursive: 'yes', fromOp: null, values: false },
      { type: 'watch_subscribe', watchId: 'g.3', path: '/x', recursive: false, fromOp: -1, values: false },
      { type: 'watch_subscribe', watchId: 'g.4', path: '/x', recursive: false, fromOp: Number.NaN, values: false },
      { type: 'watch_subscribe', watchId: 'g.5', path: '/x', recursive: false, fromOp: 2 ** 60, values: false },
      { type: 'watch_subscribe', watchId: 'g.6', path: '/x', recursive: false, fromOp: 2.5, values: false },
      { type: 'watch_subscribe', watchId: long, path: '/x', recursive: false, fromOp: null, values: false },
      { type: 'watch_subscribe', watchId: 'g.7', path: `/${'p'.repeat(5_000)}`, recursive: false, fromOp: null, values: false },
      { type: 'watch_subscribe', watchId: 'g.8', path: '/x', recursive: false, fromOp: null, values: false, extra: { deep: [1, 2, 3] } },
      { type: 'watch_ack', watchId: 'g.8', through: 1e15 },
      { type: 'watch_ack', watchId: 'nobody', through: -5 },
      { type: 'watch_ack', watchId: 'g.8', through: 'lots' },
      { type: 'watch_cancel', watchId: 12 },
      { type: 'watch_cancel', watchId: 'nobody' },
      { type: 'watch_cancel', watchId: 'g.8' },
      { type: 'watch_events', watchId: 'g.9', op: 1, events: [], more: false },
      { type: 'watch_subscribe', watchId: 'g.10', path: ['/x'], recursive: false, fromOp: null, values: false },
    ];
    const replicas = [0, 1, 2].map((index) => node?.replicaId('default', index) as string);
    for (let round = 0; round < 50; round++) for (const to of replicas) for (const message of garbage) node.faults.sendRaw(to, message);
    // Valid subscriptions from a sender that is no subscriber (a forged id): served then idle, never crashing.
    for (const to of replicas) node.faults.sendRaw(to, { type: 'watch_cancel', watchId: 'g.8' });
    await client.blobPut('/x', 'after the garbage');
    await eventually('every watch freed at the replicas', async () => Object.values((await watchCounts(node as HaretNode)).replicas).every((watches) => watches === 0), 15_000, 50);
    const { actors } = await node.status();
    for (const actor of actors.filter((a) => a.ns === 'default')) {
      expect(actor.restarts, `${actor.actor} restarts`).to.equal(0);
      expect(actor.status).to.equal('normal');
    }
    const recorder = new Recorder('after garbage', client.watch('/x', { values: true }));
    recorders.push(recorder);
    await eventually('the watch started', () => recorder.position !== null, 10_000);
    const put = await client.blobPut('/x', 'seen');
    await eventually('the put seen', () => recorder.batches.some((batch) => batch.op === put.op), 10_000);
    const batch = recorder.batches.find((b) => b.op === put.op);
    expect(batch?.events.map((event) => [event.kind, event.path, event.version, decoder.decode(event.value ?? new Uint8Array())])).to.deep.equal([['changed', '/x', put.version, 'seen']]);
  });
});
