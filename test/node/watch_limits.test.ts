/**
 * Watch limits and bad input on a real node (issue 14, "compacted and lagging are produced on
 * demand and typed", "Bad input"):
 * - `compacted`: a short history (historyOpsMax 20, historyBytesMax small), 200 puts, a watch
 *   from op 1 fails with the oldest retained op and the commit; from the oldest it delivers
 *   every later put; from the commit it works; big values leave the history by bytes;
 * - `lagging`: a watcher that never calls next() while writers write; by the replica's
 *   bound (small buffer and history) and by the client's (10,000 batches buffered); the
 *   replicas' watch counts return to 0 and their history stays within its bounds;
 * - `future`: a fromOp far beyond the commit fails at once;
 * - value cap: a blob over valueBytesMax travels without its value;
 * - bad input: malformed paths, fromOp and options throw a typed HaretError at once and open
 *   nothing; floods of 5,000 watches opened then cancelled, opened and cancelled at once,
 *   opened and `break`-ed leave no watch open anywhere and the heap bounded; the client's
 *   cap on open watches, and a replica's cap (watchesMax) with the excess served once room
 *   frees.
 * Counts and timings are printed for the report.
 */

import { expect } from 'chai';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { HaretError, startNode, type HaretNode } from '../../src/node/index.ts';
import type { NodeOptions } from '../../src/node/options.ts';
import type { WatchBatch } from '../../src/client/watch.ts';
import type { WatchStream } from '../../src/client/watch_stream.ts';
import { embeddedWatchBatchesMax, embeddedWatchesMax } from '../../src/node/endpoint.ts';
import { protocolNumberMax } from '../../src/base/limits.ts';
import { eventually } from '../runtime/helpers.ts';

/** The embedded streams' buffer in the client-side lagging test (the default, 10,000, takes ~10 s of writes to fill). */
const clientBatchesMax = 600;

const decoder = new TextDecoder();

/** The main thread's garbage collector, exposed for the heap measurements. */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** Everything a watch delivers until it ends: its batches and the error it ended with (null: ended normally). */
async function drain(stream: WatchStream, timeoutMs: number): Promise<{ batches: WatchBatch[]; error: unknown }> {
  const batches: WatchBatch[] = [];
  const timer = setTimeout(() => stream.cancel(), timeoutMs);
  try {
    for await (const batch of stream) batches.push(batch);
    return { batches, error: null };
  } catch (error) {
    return { batches, error };
  } finally {
    clearTimeout(timer);
  }
}

/** The first batch of a watch (its start), or the error it ended with; the watch stays open. */
async function first(stream: WatchStream, timeoutMs = 10_000): Promise<WatchBatch> {
  const iterator = stream[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no batch within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    if (result.done === true) throw new Error('the watch ended without a batch');
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

/** The error a watch ends with, expected within `timeoutMs`, with how long it took. */
async function endsWith(stream: WatchStream, timeoutMs: number): Promise<{ error: HaretError; ms: number; batches: WatchBatch[] }> {
  const started = performance.now();
  const { batches, error } = await drain(stream, timeoutMs);
  if (!(error instanceof HaretError)) throw new Error(`the watch ended with ${String(error)} after ${batches.length} batches, not a HaretError`);
  return { error, ms: Math.round(performance.now() - started), batches };
}

type ReplicaWatchView = { readonly actor: string; readonly watches: number | null; readonly historyOps: number | null; readonly historyBytes: number | null; readonly commit: number | null };

async function replicaViews(node: HaretNode, ns = 'default'): Promise<ReplicaWatchView[]> {
  const { actors } = await node.status();
  return actors
    .filter((actor) => actor.actor.startsWith(`${ns}/r`))
    .map((actor) => {
      const detail = actor.detail as { watches?: number; watchHistoryOps?: number; watchHistoryBytes?: number } | null;
      return { actor: actor.actor, watches: detail?.watches ?? null, historyOps: detail?.watchHistoryOps ?? null, historyBytes: detail?.watchHistoryBytes ?? null, commit: actor.commit };
    });
}

async function endpointWatches(node: HaretNode): Promise<number> {
  const { actors } = await node.status();
  const endpoint = actors.find((actor) => (actor.detail as { role?: unknown } | null)?.role === 'endpoint');
  const watches = (endpoint?.detail as { watches?: unknown } | undefined)?.watches;
  if (typeof watches !== 'number') throw new Error('the endpoint reports no watch count');
  return watches;
}

/** Polls until no watch is open at any replica nor at the endpoint. */
async function noWatchesLeft(node: HaretNode, timeoutMs = 15_000): Promise<void> {
  await eventually(
    'no watch open at the replicas nor at the endpoint',
    async () => (await endpointWatches(node)) === 0 && (await replicaViews(node)).every((view) => view.watches === 0),
    timeoutMs,
    50,
  );
}

/** Heap in MB: this thread's and the workers' together, after a full collection in each. */
async function heapMb(node: HaretNode): Promise<{ main: number; workers: number }> {
  collect();
  const workers = Object.values(await node.collectGarbage()).reduce((sum, bytes) => sum + bytes, 0);
  return { main: process.memoryUsage().heapUsed / 2 ** 20, workers: workers / 2 ** 20 };
}

const mb = (value: number): string => value.toFixed(1);

function withNode(options: NodeOptions, body: (node: HaretNode) => Promise<void>): () => Promise<void> {
  return async () => {
    const node = await startNode({ logLevel: 'silent', ...options });
    try {
      await body(node);
    } finally {
      await node.stop();
    }
  };
}

describe('node: watch limits, typed errors and bad input', function () {
  this.timeout(120_000);

  it(
    'compacted on demand: historyOpsMax 20, 200 puts; from op 1 a typed compacted error; from the oldest retained op every later put; from the commit it works; big values leave by bytes',
    withNode({ watch: { historyOpsMax: 20, historyBytesMax: 48 * 1024 } }, async (node) => {
      const client = node.client();
      await client.create('/c', 'blob');
      const puts: { op: number; version: number }[] = [];
      for (let n = 0; n < 200; n++) puts.push(await client.blobPut('/c', `c#${n}`));
      const lastOp = (puts.at(-1) as { op: number }).op;
      await eventually('every replica committed the last put, with 20 ops of history', async () => (await replicaViews(node)).every((view) => (view.commit ?? 0) >= lastOp && view.historyOps === 20), 10_000, 20);

      const fromOne = await endsWith(client.watch('/c', { fromOp: 1 }), 10_000);
      expect(fromOne.error.code).to.equal('compacted');
      expect(fromOne.batches).to.deep.equal([]);
      const { oldestOp, currentOp } = fromOne.error.details ?? { oldestOp: null, currentOp: null };
      expect(oldestOp).to.be.a('number').above(1).and.below(lastOp);
      expect(currentOp).to.be.a('number').at.least(lastOp);
      // 20 entries retained, each one put here: the oldest retained op is 20 puts back.
      expect(puts.filter((put) => put.op > (oldestOp as number)).length).to.equal(20);
      expect(fromOne.error.message).to.contain(`after op ${oldestOp}`);

      // Just before the oldest: compacted too; from the oldest: exactly the puts after it.
      expect((await endsWith(client.watch('/c', { fromOp: (oldestOp as number) - 1 }), 10_000)).error.code).to.equal('compacted');
      const fromOldest = client.watch('/c', { fromOp: oldestOp as number });
      const seen: WatchBatch[] = [];
      for await (const batch of fromOldest) {
        seen.push(batch);
        if (batch.op >= lastOp) break;
      }
      expect(seen[0]).to.deep.equal({ kind: 'start', op: oldestOp, events: [] });
      const events = seen.filter((batch) => batch.kind === 'events');
      expect(events.map((batch) => [batch.op, batch.events.map((event) => event.version)])).to.deep.equal(puts.filter((put) => put.op > (oldestOp as number)).map((put) => [put.op, [put.version]]));

      // From the commit: the start, then the next put.
      const fromCommit = client.watch('/c', { fromOp: currentOp as number });
      const start = await first(fromCommit);
      expect(start).to.deep.equal({ kind: 'start', op: currentOp, events: [] });
      const next = await client.blobPut('/c', 'after');
      const nextBatch = await (async () => {
        for await (const batch of fromCommit) if (batch.kind === 'events') return batch;
        return null;
      })();
      expect(nextBatch?.op).to.equal(next.op);
      expect(nextBatch?.events.map((event) => event.version)).to.deep.equal([next.version]);

      // 4 KiB values: 48 KiB of history holds about a dozen of them, not 20.
      const big = 'v'.repeat(4096);
      for (let n = 0; n < 40; n++) await client.blobPut('/c', `${n}${big}`);
      const views = await eventually('the history bounded by bytes', async () => {
        const all = await replicaViews(node);
        return all.every((view) => (view.historyOps ?? 99) < 20) ? all : null;
      }, 10_000, 20);
      for (const view of views) expect(view.historyBytes).to.be.at.most(48 * 1024 + 4096 + 512);
      console.log(`      [compacted] 200 puts through op ${lastOp}; history after op ${oldestOp} (commit ${currentOp}); with 4 KiB values: ${views.map((v) => `${v.historyOps} ops / ${v.historyBytes} B`).join(', ')}`);
      await noWatchesLeft(node);
    }),
  );

  it(
    'lagging on demand (a small replica buffer and history): a watcher that never calls next() while 8 writers put ends lagging, typed; the replicas free it and their history stays bounded',
    // The client acknowledges what it receives (the replica asks as soon as the buffer fills), so
    // in-process it usually keeps up and its own bound (watchBatchesMax) ends the watch; when it
    // does not, the replica's history moves past it first. Either end is `lagging`, typed.
    withNode({ watch: { historyOpsMax: 10, bufferBytesMax: 1024 }, watchBatchesMax: 2_000 }, async (node) => {
      const client = node.client();
      await client.create('/l', 'directory');
      for (let i = 0; i < 8; i++) await client.create(`/l/${i}`, 'blob');
      const heapBefore = await heapMb(node);
      const stalled = client.watch('/l', { recursive: true, values: true });
      const started = performance.now();
      let stop = false;
      let puts = 0;
      let maxHistoryOps = 0;
      const value = 'x'.repeat(300);
      const writers = Array.from({ length: 8 }, async (_, i) => {
        for (let n = 0; !stop; n++) {
          await client.blobPut(`/l/${i}`, `${n}:${value}`);
          puts += 1;
        }
      });
      try {
        await eventually('the stalled watch ended', async () => {
          for (const view of await replicaViews(node)) maxHistoryOps = Math.max(maxHistoryOps, view.historyOps ?? 0);
          return stalled.ended;
        }, 30_000, 50);
      } finally {
        stop = true;
        await Promise.all(writers);
      }
      const endedMs = Math.round(performance.now() - started);
      const { error, batches } = await endsWith(stalled, 5_000);
      expect(error.code).to.equal('lagging');
      expect(error.executed).to.equal(false);
      expect(batches[0]?.kind).to.equal('start');
      const last = batches.at(-1) as WatchBatch;
      expect(error.details?.lastOp).to.equal(last.op);
      // The replica's verdict carries its positions; the client's own does not, and comes with its buffer full.
      if (error.details?.oldestOp === null) {
        expect(batches).to.have.length(2_000);
      } else {
        expect(error.details?.oldestOp).to.be.a('number').above(last.op);
        expect(error.details?.currentOp).to.be.a('number').at.least(error.details?.oldestOp ?? 0);
      }
      for (let i = 1; i < batches.length; i++) expect((batches[i] as WatchBatch).op).to.be.at.least((batches[i - 1] as WatchBatch).op);
      expect(maxHistoryOps).to.be.at.most(10);
      await noWatchesLeft(node);
      // Watching again from where it stopped is answered, typed, whichever way: served or compacted.
      const again = await drain(client.watch('/l', { recursive: true, fromOp: last.op }), 2_000);
      expect(again.error === null || (again.error instanceof HaretError && again.error.code === 'compacted'), String(again.error)).to.equal(true);
      await noWatchesLeft(node);
      const heapAfter = await heapMb(node);
      console.log(
        `      [lagging, ${error.details?.oldestOp === null ? 'client' : 'replica'}] ended after ${endedMs} ms and ${puts} puts, ${batches.length} batches delivered through op ${last.op} (history after op ${error.details?.oldestOp}, commit ${error.details?.currentOp}); ` +
          `history at most ${maxHistoryOps} ops; heap MB main ${mb(heapBefore.main)} -> ${mb(heapAfter.main)}, workers ${mb(heapBefore.workers)} -> ${mb(heapAfter.workers)}; re-watch from ${last.op}: ${again.error === null ? 'served' : (again.error as HaretError).code}`,
      );
      expect(heapAfter.workers - heapBefore.workers).to.be.below(50);
    }),
  );

  it(
    `lagging on demand (the client's bound): a watcher that never calls next() ends lagging once watchBatchesMax (${clientBatchesMax}; default ${embeddedWatchBatchesMax}) batches wait; what it holds stays deliverable`,
    withNode({ watchBatchesMax: clientBatchesMax }, async (node) => {
      const client = node.client();
      await client.create('/b', 'directory');
      for (let i = 0; i < 4; i++) await client.create(`/b/${i}`, 'blob');
      const stalled = client.watch('/b', { recursive: true });
      await eventually('the watch started', () => stalled.buffered >= 1, 10_000);
      const started = performance.now();
      let stop = false;
      let puts = 0;
      const writers = Array.from({ length: 4 }, async (_, i) => {
        for (let n = 0; !stop; n++) {
          await client.blobPut(`/b/${i}`, `${n}`);
          puts += 1;
        }
      });
      try {
        await eventually('the stalled watch ended', () => stalled.ended, 90_000, 50);
      } finally {
        stop = true;
        await Promise.all(writers);
      }
      const endedMs = Math.round(performance.now() - started);
      expect(stalled.buffered).to.equal(clientBatchesMax);
      await noWatchesLeft(node);
      const { error, batches } = await endsWith(stalled, 5_000);
      expect(error.code).to.equal('lagging');
      expect(batches).to.have.length(clientBatchesMax);
      expect(error.details?.lastOp).to.equal((batches.at(-1) as WatchBatch).op);
      const eventOps = batches.filter((batch) => batch.kind === 'events').map((batch) => batch.op);
      for (let i = 1; i < eventOps.length; i++) expect(eventOps[i] as number).to.be.above(eventOps[i - 1] as number);
      console.log(`      [lagging, client] ended after ${endedMs} ms and ${puts} puts with ${batches.length} batches held, through op ${error.details?.lastOp}`);
    }),
  );

  it(
    'future: a fromOp far beyond the commit fails typed at once; the value cap leaves big values out',
    withNode({ watch: { valueBytesMax: 100 } }, async (node) => {
      const client = node.client();
      const created = await client.create('/f', 'blob');
      // Every replica has committed the create (a backup learns a commit with the next message).
      await eventually('every replica committed the create', async () => (await replicaViews(node)).every((view) => (view.commit ?? 0) >= created.op), 10_000, 20);
      for (const ahead of [1, 1_000_000, protocolNumberMax - created.op]) {
        const fromOp = created.op + ahead;
        const { error, ms, batches } = await endsWith(client.watch('/f', { fromOp }), 10_000);
        expect(error.code, `fromOp ${fromOp}`).to.equal('future');
        expect(batches).to.deep.equal([]);
        expect(error.details?.currentOp).to.be.a('number').at.least(created.op).and.below(fromOp);
        expect(ms, `fromOp ${fromOp} answered in ${ms} ms`).to.be.below(3_000);
        console.log(`      [future] fromOp commit+${ahead}: future in ${ms} ms (current op ${error.details?.currentOp})`);
      }

      const watch = client.watch('/f', { values: true });
      await first(watch);
      const small = await client.blobPut('/f', 's'.repeat(100));
      const large = await client.blobPut('/f', 'l'.repeat(101));
      const seen: WatchBatch[] = [];
      for await (const batch of watch) {
        if (batch.kind === 'events') seen.push(batch);
        if (batch.op >= large.op) break;
      }
      expect(seen.map((batch) => batch.op)).to.deep.equal([small.op, large.op]);
      const [smallEvent, largeEvent] = seen.map((batch) => batch.events[0]);
      expect(decoder.decode(smallEvent?.value ?? new Uint8Array())).to.equal('s'.repeat(100));
      expect(smallEvent?.valueOmitted).to.not.equal(true);
      expect(largeEvent?.value).to.equal(null);
      expect(largeEvent?.valueOmitted).to.equal(true);
      expect(largeEvent?.version).to.equal(large.version);
      await noWatchesLeft(node);
    }),
  );

  it(
    'bad input: malformed paths, fromOp and options throw a typed HaretError at once and open nothing',
    withNode({}, async (node) => {
      const client = node.client();
      const watchAny = client.watch.bind(client) as (path: unknown, options?: unknown) => WatchStream;
      const cases: [string, unknown, unknown][] = [
        ['relative path', 'k/1', {}],
        ['empty path', '', {}],
        ["'..'", '/k/../etc', {}],
        ["'.'", '/k/./x', {}],
        ['trailing slash', '/k/', {}],
        ['empty component', '/k//x', {}],
        ['NUL', '/k\u0000x', {}],
        ['lone surrogate', '/k\ud800', {}],
        ['path of 2,000 bytes', `/${'p'.repeat(1_999)}`, {}],
        ['component of 300 bytes', `/${'q'.repeat(300)}`, {}],
        ['path of 200 levels', '/d'.repeat(200), {}],
        ['path not a string', 42, {}],
        ['path null', null, {}],
        ['fromOp -1', '/k', { fromOp: -1 }],
        ['fromOp 2.5', '/k', { fromOp: 2.5 }],
        ['fromOp 2^60', '/k', { fromOp: 2 ** 60 }],
        ['fromOp 2^48 + 1', '/k', { fromOp: protocolNumberMax + 1 }],
        ['fromOp NaN', '/k', { fromOp: Number.NaN }],
        ['fromOp Infinity', '/k', { fromOp: Number.POSITIVE_INFINITY }],
        ['fromOp a string', '/k', { fromOp: '5' }],
        ['fromOp a bigint', '/k', { fromOp: 5n }],
        ['recursive a string', '/k', { recursive: 'true' }],
        ['recursive 1', '/k', { recursive: 1 }],
        ['values a string', '/k', { values: 'yes' }],
      ];
      const codes: string[] = [];
      for (const [what, path, options] of cases) {
        const started = performance.now();
        let thrown: unknown = null;
        let stream: WatchStream | null = null;
        try {
          stream = watchAny(path, options);
        } catch (error) {
          thrown = error;
        }
        stream?.cancel();
        expect(thrown, `${what}: throws`).to.be.instanceOf(HaretError);
        const error = thrown as HaretError;
        expect(['bad_path', 'too_large', 'invalid_request'], `${what}: code ${error.code}`).to.include(error.code);
        expect(error.executed).to.equal(false);
        expect(performance.now() - started).to.be.below(50);
        codes.push(`${what}: ${error.code}`);
      }
      expect(await endpointWatches(node)).to.equal(0);
      expect((await replicaViews(node)).map((view) => view.watches)).to.deep.equal([0, 0, 0]);
      console.log(`      [bad input] ${codes.join('; ')}`);
    }),
  );

  it(
    'a flood: 5,000 watches opened then cancelled, 5,000 opened and cancelled at once, 5,000 opened and `break`-ed: nothing left open, heap bounded',
    withNode({}, async (node) => {
      const client = node.client();
      await client.create('/f', 'directory');
      const warm = client.watch('/f');
      await first(warm);
      warm.cancel();
      await noWatchesLeft(node);
      const before = await heapMb(node);
      const timings: string[] = [];
      let started = performance.now();

      // 5,000 open at once, each started, then cancelled.
      const specs = Array.from({ length: 5_000 }, (_, i) => ({ path: i % 3 === 0 ? '/f' : `/f/${i}`, recursive: i % 2 === 0, values: i % 5 === 0 }));
      const open = specs.map(({ path, ...options }) => client.watch(path, options));
      await Promise.all(open.map((stream) => first(stream, 30_000)));
      expect(await endpointWatches(node)).to.equal(5_000);
      // Identical watches (same path, recursive, values) share one subscription (src/client/watch_registry.ts).
      const distinct = new Set(specs.map((spec) => JSON.stringify(spec))).size;
      const peak = (await replicaViews(node)).map((view) => view.watches);
      expect(peak.reduce<number>((sum, watches) => sum + (watches ?? 0), 0)).to.equal(distinct);
      for (const stream of open) stream.cancel();
      open.length = 0;
      await noWatchesLeft(node);
      timings.push(`open+start+cancel ${Math.round(performance.now() - started)} ms (replicas ${peak.join('/')})`);

      // 5,000 subscribe/cancel races.
      started = performance.now();
      for (let i = 0; i < 5_000; i++) client.watch(`/f/${i}`, { fromOp: i % 2 === 0 ? undefined : 0 } as { fromOp?: number }).cancel();
      await noWatchesLeft(node);
      timings.push(`open+cancel at once ${Math.round(performance.now() - started)} ms`);

      // 5,000 for-await loops that break at their first batch.
      started = performance.now();
      const starts = await Promise.all(
        Array.from({ length: 5_000 }, async (_, i) => {
          for await (const batch of client.watch(`/f/${i % 50}`, { recursive: true })) return batch.kind;
          return 'ended';
        }),
      );
      expect(new Set(starts)).to.deep.equal(new Set(['start']));
      await noWatchesLeft(node);
      timings.push(`open+break ${Math.round(performance.now() - started)} ms`);

      // Still serving watches afterwards.
      const after = client.watch('/f', { recursive: true });
      await first(after);
      const put = await client.create('/f/after', 'blob');
      for await (const batch of after) if (batch.op >= put.op) break;
      await noWatchesLeft(node);

      const heapAfter = await heapMb(node);
      console.log(`      [flood] ${timings.join('; ')}; heap MB main ${mb(before.main)} -> ${mb(heapAfter.main)}, workers ${mb(before.workers)} -> ${mb(heapAfter.workers)}`);
      expect(heapAfter.main - before.main, 'main thread heap growth (MB)').to.be.below(50);
      expect(heapAfter.workers - before.workers, 'workers heap growth (MB)').to.be.below(50);
    }),
  );

  it(
    `absurd counts: the client opens at most ${embeddedWatchesMax} watches (the next one throws too_many_watches); a replica serves at most watchesMax and the excess is served once room frees`,
    withNode({ watch: { watchesMax: 5 } }, async (node) => {
      const client = node.client();
      // 3 replicas x 5: 15 served at once, 5 more wait (each replica answers too_many), none lost.
      const streams = Array.from({ length: 20 }, (_, i) => client.watch(`/w/${i}`));
      const startedAt = new Map<number, number>();
      const watching = streams.map(async (stream, i) => {
        for await (const batch of stream) if (batch.kind === 'start') startedAt.set(i, performance.now());
      });
      await eventually('15 watches started', () => startedAt.size >= 15, 15_000);
      let peak = 0;
      for (let k = 0; k < 10; k++) {
        const views = await replicaViews(node);
        for (const view of views) expect(view.watches ?? 0).to.be.at.most(5);
        peak = Math.max(peak, views.reduce((sum, view) => sum + (view.watches ?? 0), 0));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(startedAt.size).to.equal(15);
      const cancelledAt = performance.now();
      const served = [...startedAt.keys()];
      for (const i of served.slice(0, 10)) (streams[i] as WatchStream).cancel();
      await eventually('the 5 waiting watches served', () => startedAt.size === 20, 15_000);
      const waitedMs = Math.round(Math.max(...[...startedAt.values()]) - cancelledAt);
      for (const stream of streams) stream.cancel();
      await Promise.all(watching);
      await noWatchesLeft(node);
      console.log(`      [watchesMax 5] 20 opened: ${peak} served at the peak, the rest served ${waitedMs} ms after 10 were cancelled`);
    }),
  );

  it(
    `absurd counts at the client: ${embeddedWatchesMax} watches open, the next throws too_many_watches at once; all freed`,
    withNode({ watch: { watchesMax: embeddedWatchesMax } }, async (node) => {
      const client = node.client();
      const started = performance.now();
      const streams = Array.from({ length: embeddedWatchesMax }, (_, i) => client.watch(`/m/${i % 1000}`));
      let thrown: unknown = null;
      try {
        client.watch('/m/one-too-many').cancel();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).to.be.instanceOf(HaretError);
      expect(thrown).to.include({ code: 'too_many_watches', executed: false });
      // The watches of one path share a subscription: 1,000 at the replicas.
      await eventually('every watch started', async () => (await replicaViews(node)).reduce((sum, view) => sum + (view.watches ?? 0), 0) === 1_000, 30_000, 50);
      for (const stream of streams) stream.cancel();
      await noWatchesLeft(node);
      // Room again.
      const one = client.watch('/m/1');
      await first(one);
      one.cancel();
      await noWatchesLeft(node);
      console.log(`      [client cap] ${embeddedWatchesMax} opened, served and freed in ${Math.round(performance.now() - started)} ms`);
    }),
  );
});
