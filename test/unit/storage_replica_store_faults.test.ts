/**
 * The durable replica store (actors/storage/replica_store.ts) under crashes and disk faults.
 *
 * Crash consistency (property): random persist records valid per the core's contract
 * (src/vr/io.ts, src/vr/persist.ts), a crash at a random file-system operation (optionally
 * tearing that write), then a reopen: it is intact (or empty before the first promise), holds
 * every answered entry, and equals SimStore (test/sim/storage.ts) fed with some prefix of the
 * records that includes every answered one.
 *
 * Disk faults: while writes fail nothing is answered, one `fault` per episode says so and
 * `recovered` when it passes, and nothing is lost or duplicated; a queue that overflows while
 * failing is given up (`lost`) and what is on disk is still a consistent prefix.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError, instrumentFileSystem, nodeFileSystem, StorageError, type FsOperation } from '../../actors/storage/fs.ts';
import { ReplicaStore } from '../../actors/storage/replica_store.ts';
import { SUPERBLOCK_COPY_BYTES } from '../../actors/storage/superblock.ts';
import type { PersistRecord } from '../../src/vr/io.ts';
import type { LogEntry } from '../../src/vr/messages.ts';
import { emptyMachine, type Machine } from '../../src/vr/state_machine.ts';
import {
  append,
  applyAll,
  entries,
  entryBytes,
  flipInRecord,
  Harness,
  identity,
  image,
  installCheckpoint,
  isLog,
  lazyCheckpoint,
  limits,
  matchingPrefix,
  promise,
  sleep,
  tenEntries,
  truncateAfter,
  useStores,
  waitFor,
} from './storage_replica_store_helpers.ts';

const { freshDir, open } = useStores('replica-store-faults');

/** Quick retries, so fault episodes pass in milliseconds. */
const fast = { retryFirstMs: 2, retryMaxMs: 10 };

type Fault = Error | { readonly partialBytes: number; readonly error: Error } | undefined;

/** A file system whose operations fail while `rule` says so. */
function faultyFs(): { fs: ReturnType<typeof instrumentFileSystem>; rule: ((op: FsOperation) => Fault) | null; logWrites: number } {
  const state: { fs: ReturnType<typeof instrumentFileSystem>; rule: ((op: FsOperation) => Fault) | null; logWrites: number } = {
    fs: instrumentFileSystem(nodeFileSystem, {
      before(op) {
        const fault = state.rule?.(op);
        if (fault instanceof Error) throw fault;
        return fault;
      },
      after(op) {
        if (op.type === 'write' && isLog(op.path)) state.logWrites++;
      },
    }),
    rule: null,
    logWrites: 0,
  };
  return state;
}

// ---- crash consistency ---------------------------------------------------------------------

type Command =
  | { readonly t: 'append'; readonly n: number }
  | { readonly t: 'commit'; readonly frac: number }
  | { readonly t: 'lazy'; readonly offerNow: boolean }
  | { readonly t: 'offer' }
  | { readonly t: 'view_change'; readonly frac: number }
  | { readonly t: 'install'; readonly ahead: number }
  | { readonly t: 'pause'; readonly settle: boolean };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 4 }) }), weight: 6 },
  { arbitrary: fc.record({ t: fc.constant('commit' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('lazy' as const), offerNow: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('offer' as const) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('view_change' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('install' as const), ahead: fc.integer({ min: 0, max: 5 }) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('pause' as const), settle: fc.boolean() }), weight: 3 },
);

type Action = { readonly t: 'persist'; readonly record: PersistRecord } | { readonly t: 'offer'; readonly machine: Machine } | { readonly t: 'pause'; readonly settle: boolean };

/**
 * A replica's persist records for `commands`, valid per the core's contract: the first is the
 * start step's promise; entries are contiguous after what is stored; a truncation never goes
 * below the committed point; a lazy checkpoint is the machine of the committed entries, an
 * installed one a peer's machine at or beyond the committed point (followed by a truncation of
 * this replica's own entries above it); promises never lower the view.
 */
function recordsFor(commands: readonly Command[]): Action[] {
  let view = 0;
  let checkpoint: Machine = emptyMachine();
  let log: LogEntry[] = []; // entries above the checkpoint
  let commit = 0;
  let pendingOffer: Machine | null = null;
  const lastOp = (): number => log.at(-1)?.op ?? checkpoint.appliedOp;
  const actions: Action[] = [{ t: 'persist', record: promise(0, 0) }];
  const persist = (record: PersistRecord): void => {
    actions.push({ t: 'persist', record });
  };
  for (const c of commands) {
    switch (c.t) {
      case 'append': {
        const list = entries(lastOp() + 1, lastOp() + c.n, view);
        log = [...log, ...list];
        persist(append(list));
        break;
      }
      case 'commit':
        commit += Math.ceil(c.frac * (lastOp() - commit));
        break;
      case 'lazy': {
        if (commit <= checkpoint.appliedOp) break;
        checkpoint = applyAll(checkpoint, log.filter((e) => e.op <= commit));
        log = log.filter((e) => e.op > commit);
        persist(lazyCheckpoint(checkpoint));
        if (c.offerNow) actions.push({ t: 'offer', machine: checkpoint });
        else pendingOffer = checkpoint;
        break;
      }
      case 'offer':
        if (pendingOffer !== null) actions.push({ t: 'offer', machine: pendingOffer });
        pendingOffer = null;
        break;
      case 'view_change': {
        // A view change: the promise of the new view, the replaced suffix cut (never below the
        // committed point), then normal in the new view.
        persist(promise(view + 1, view));
        view += 1;
        const keep = commit + Math.floor(c.frac * (lastOp() - commit));
        if (keep < lastOp()) {
          persist(truncateAfter(keep));
          log = log.filter((e) => e.op <= keep);
        }
        persist(promise(view, view));
        break;
      }
      case 'install': {
        const at = commit + c.ahead;
        if (at <= checkpoint.appliedOp) break;
        const committed = applyAll(checkpoint, log.filter((e) => e.op <= commit));
        // The peer's history beyond our committed point differs from our log (another salt).
        const peer = applyAll(committed, entries(commit + 1, at, view + 1000));
        persist(installCheckpoint(peer));
        if (lastOp() > at) persist(truncateAfter(at));
        checkpoint = peer;
        log = [];
        commit = at;
        break;
      }
      case 'pause':
        actions.push({ t: 'pause', settle: c.settle });
        break;
      default: {
        const never: never = c;
        throw new Error(`unknown command ${JSON.stringify(never)}`);
      }
    }
  }
  return actions;
}

describe('replica store: crash consistency', () => {
  it('property: after a crash anywhere (torn write or not), a reopen is intact (or empty before the first promise), holds every answered entry, and equals SimStore after some prefix holding every answered record', async function () {
    this.timeout(60_000);
    let crashes = 0;
    let torn = 0;
    let fullRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(commandArb, { minLength: 1, maxLength: 40, size: 'medium' }),
        // A run makes a few dozen operations (group commit batches most records together).
        fc.option(fc.integer({ min: 1, max: 60 }), { nil: null, freq: 6 }),
        fc.boolean(),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        async (commands, crashAt, tear, tearFraction) => {
          const dir = freshDir();
          const options = { segmentBytesMax: 900, checkpointAfterBytes: 500, retryFirstMs: 1, retryMaxMs: 2 };
          const actions = recordsFor(commands);
          const records = actions.flatMap((a) => (a.t === 'persist' ? [a.record] : []));
          // Counts every operation after the open; from `crashAt` on, everything fails (the
          // process is gone), the write at the crash optionally torn part-way.
          let armed = false;
          let ops = 0;
          let crashed = false;
          const fs = instrumentFileSystem(nodeFileSystem, {
            before(op) {
              if (!armed) return undefined;
              if (crashed) throw fsError('EIO', 'crashed');
              ops += 1;
              if (crashAt === null || ops < crashAt) return undefined;
              crashed = true;
              crashes += 1;
              if (tear && op.type === 'write' && op.length > 1) {
                torn += 1;
                return { partialBytes: Math.floor(tearFraction * op.length), error: fsError('EIO', 'crashed mid-write') };
              }
              throw fsError('EIO', 'crashed');
            },
          });
          const h = await Harness.open(dir, { ...options, fs });
          try {
            expect(h.opened.found).to.equal('empty');
            armed = true;
            for (const action of actions) {
              if (crashed) break; // the process is gone: nothing more is issued
              switch (action.t) {
                case 'persist':
                  h.persist(action.record);
                  break;
                case 'offer':
                  h.store.offerImage(image(action.machine));
                  break;
                case 'pause':
                  if (action.settle) {
                    const target = h.issued;
                    await waitFor(() => crashed || h.answered.includes(target), 4_000, `answer to #${target}`);
                  } else {
                    await new Promise((resolve) => setImmediate(resolve));
                  }
                  break;
                default: {
                  const never: never = action;
                  throw new Error(`unknown action ${JSON.stringify(never)}`);
                }
              }
            }
            if (!crashed) {
              const target = h.issued;
              await waitFor(() => crashed || h.answered.includes(target), 4_000, `answer to #${target}`);
              // Let a lazy checkpoint that is due start (and maybe be crashed into).
              await sleep(1);
            }
          } finally {
            await h.store.close();
          }
          const answered = h.answered;
          expect(answered, 'answers come once each, in order').to.deep.equal(Array.from({ length: answered.length }, (_, i) => i + 1));
          if (!crashed) {
            fullRuns += 1;
            expect(answered.length).to.equal(records.length);
          }
          const reopened = await Harness.open(dir, options);
          const found = reopened.opened.found;
          try {
            expect(found, reopened.opened.notes.join('\n')).to.be.oneOf(answered.length === 0 ? ['empty', 'intact'] : ['intact']);
            const p = matchingPrefix(records, answered.length, reopened.opened);
            expect(p, `no prefix of ${records.length} records from ${answered.length} matches the ${found} store: checkpoint ${reopened.opened.stored.checkpoint?.appliedOp ?? 0}, entries ${reopened.opened.stored.entries.map((e) => `${e.op}v${e.view}`).join(' ')}`).to.not.equal(null);
            if (!crashed) expect(p).to.equal(records.length);
          } finally {
            await reopened.store.close();
          }
          // Opening again changes nothing.
          const third = await Harness.open(dir, options);
          try {
            expect(third.opened.found).to.equal(found);
            expect(matchingPrefix(records, answered.length, third.opened)).to.not.equal(null);
          } finally {
            await third.store.close();
          }
          await rm(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 300, timeout: 5_000 },
    );
    // The runs must have exercised crashes, torn writes and crash-free runs.
    expect(crashes).to.be.greaterThan(10);
    expect(torn).to.be.greaterThan(0);
    expect(fullRuns).to.be.greaterThan(3);
  });

  it('a crash tearing the very first promise write: empty (nothing was ever promised); an unreadable only copy with a log after it: damaged', async () => {
    const dir = freshDir();
    let crashed = false;
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (crashed) throw fsError('EIO', 'crashed');
        if (op.type === 'write' && op.path.endsWith('superblock')) {
          crashed = true;
          // Ten bytes: part of the header only (a longer prefix would hold the whole small copy).
          return { partialBytes: 10, error: fsError('EIO', 'crashed mid-write') };
        }
        return undefined;
      },
    });
    const h = await open(dir, { ...fast, fs });
    h.persist(promise(0, 0));
    h.persist(append(entries(1, 2, 0)));
    await waitFor(() => h.hooks.faults.length > 0, 5_000, 'the crash');
    await h.store.close();
    expect(h.answered).to.deep.equal([]);
    const again = await open(dir);
    expect(again.opened.found).to.equal('empty');
    expect(again.opened.stored).to.deep.equal({ checkpoint: null, entries: [] });
    expect(again.opened.notes.join('\n')).to.include('first promise');
    again.persist(promise(0, 0));
    again.persist(append(entries(1, 2, 0)));
    await again.settle();
    await again.store.close();
    const third = await open(dir);
    expect(third.opened.found).to.equal('intact');
    expect(entryBytes(third.opened.stored.entries)).to.equal(entryBytes(entries(1, 2, 0)));

    // The only copy written, unreadable, with entries stored after it: that promise was durable.
    const other = freshDir();
    await tenEntries(other);
    const path = join(other, 'superblock');
    const bytes = new Uint8Array(await readFile(path));
    const slot1 = SUPERBLOCK_COPY_BYTES + 30;
    bytes[slot1] = (bytes[slot1] ?? 0) ^ 1;
    await writeFile(path, bytes);
    const damaged = await open(other);
    expect(damaged.opened.found).to.equal('damaged');
    expect(damaged.opened.stored.entries).to.have.length(10);
  });

  it('a crash while opening damaged storage never leaves a cut log under the old promise', async () => {
    const dir = freshDir();
    await tenEntries(dir);
    await flipInRecord(dir, 4);
    // The open's first superblock write fails (a crash at that point): whatever it did to the
    // log before, the promise must not be trusted by the next open.
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (op.type === 'write' && op.path.endsWith('superblock')) throw fsError('EIO');
      },
    });
    let failed: unknown = null;
    await ReplicaStore.open(dir, identity, { limits, fs }).then(
      (opened) => opened.store.close(),
      (error: unknown) => (failed = error),
    );
    expect(failed).to.be.instanceOf(StorageError);
    const h = await open(dir);
    expect(h.opened.found).to.equal('damaged');
    expect(h.opened.stored.promise).to.equal(undefined);
    expect(h.opened.stored.entries.map((e) => e.op)).to.deep.equal([1, 2, 3, 4]);
  });
});

// ---- disk faults ---------------------------------------------------------------------------

describe('replica store: disk faults', () => {

  it('ENOSPC on log writes (the first torn), then EIO on the log fdatasync: nothing answered meanwhile, one fault per episode, recovered, nothing lost or duplicated', async () => {
    const dir = freshDir();
    const faulty = faultyFs();
    const h = await open(dir, { ...fast, fs: faulty.fs });
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 3, 1))];
    for (const r of records) h.persist(r);
    await h.settle();

    // Episode 1: the disk is full; the first write gets half its bytes down before failing.
    let tornOnce = false;
    faulty.rule = (op) => {
      if (op.type !== 'write' || !isLog(op.path)) return undefined;
      if (tornOnce) return fsError('ENOSPC');
      tornOnce = true;
      return { partialBytes: Math.floor(op.length / 2), error: fsError('ENOSPC') };
    };
    const episode1 = [append(entries(4, 4, 1)), append(entries(5, 6, 1)), append(entries(7, 7, 1))];
    for (const r of episode1) h.persist(r);
    records.push(...episode1);
    await waitFor(() => h.hooks.faults.length >= 4, 5_000, 'retries');
    expect(h.answered).to.deep.equal([1, 2]);
    expect(h.store.counters().state).to.equal('failing');
    expect(h.hooks.faults.map((f) => f.first)).to.deep.equal([true, ...h.hooks.faults.slice(1).map(() => false)]);
    expect(h.hooks.faults.every((f) => f.error.code === 'ENOSPC')).to.equal(true);
    expect(h.hooks.recovered).to.equal(0);
    faulty.rule = null;
    await h.settle();
    expect(h.answered).to.deep.equal([1, 2, 3, 4, 5]);
    expect(h.hooks.recovered).to.equal(1);
    expect(h.store.counters().state).to.equal('ok');
    expect(h.store.counters().faults).to.equal(h.hooks.faults.length);

    // Episode 2: the write goes through but its fdatasync fails (the data may be gone).
    faulty.rule = (op) => (op.type === 'datasync' && isLog(op.path) ? fsError('EIO') : undefined);
    const faultsBefore = h.hooks.faults.length;
    const episode2 = [append(entries(8, 9, 1)), append(entries(10, 10, 1))];
    for (const r of episode2) h.persist(r);
    records.push(...episode2);
    await waitFor(() => h.hooks.faults.length >= faultsBefore + 3, 5_000, 'retries');
    expect(h.answered).to.have.length(5);
    expect(h.store.counters().state).to.equal('failing');
    faulty.rule = null;
    await h.settle();
    expect(h.answered).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
    expect(h.hooks.faults.filter((f) => f.first)).to.have.length(2);
    expect(h.hooks.faults.slice(faultsBefore).map((f) => f.error.code)).to.include('EIO');
    expect(h.hooks.recovered).to.equal(2);
    // Per episode: the first fault says first=true, its retries false, then one recovered.
    expect(h.hooks.events.filter((e) => !e.startsWith('persisted')).map((e) => e.replace(/ (ENOSPC|EIO)/, ''))).to.deep.equal([
      'fault true',
      ...Array.from({ length: faultsBefore - 1 }, () => 'fault false'),
      'recovered',
      'fault true',
      ...Array.from({ length: h.hooks.faults.length - faultsBefore - 1 }, () => 'fault false'),
      'recovered',
    ]);
    await h.store.close();

    const again = await open(dir);
    expect(again.opened.found).to.equal('intact');
    expect(entryBytes(again.opened.stored.entries), 'ops 1..10 once each').to.equal(entryBytes(entries(1, 10, 1)));
    expect(matchingPrefix(records, records.length, again.opened)).to.equal(records.length);
  });

  it('EIO on the superblock write: the promise and everything after it wait; then answered, recovered, and stored', async () => {
    const dir = freshDir();
    const faulty = faultyFs();
    const h = await open(dir, { ...fast, fs: faulty.fs });
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 3, 1))];
    for (const r of records) h.persist(r);
    await h.settle();
    faulty.rule = (op) => (op.type === 'write' && op.path.endsWith('superblock') ? fsError('EIO') : undefined);
    const more = [append(entries(4, 5, 1)), promise(2, 1), promise(2, 2), append(entries(6, 7, 2))];
    const promiseGeneration = h.issued + 2;
    for (const r of more) h.persist(r);
    records.push(...more);
    await waitFor(() => h.hooks.faults.length >= 3, 5_000, 'retries');
    expect(h.answered.filter((g) => g >= promiseGeneration)).to.deep.equal([]);
    expect(h.store.counters().state).to.equal('failing');
    expect(h.hooks.faults.filter((f) => f.first)).to.have.length(1);
    expect(h.hooks.faults[0]?.error.code).to.equal('EIO');
    expect(h.hooks.faults[0]?.error.path).to.equal(join(dir, 'superblock'));
    faulty.rule = null;
    await h.settle();
    expect(h.answered).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(h.hooks.recovered).to.equal(1);
    expect(h.store.counters().state).to.equal('ok');
    await h.store.close();
    const again = await open(dir);
    expect(again.opened.found).to.equal('intact');
    expect(again.opened.stored.promise).to.deep.equal({ view: 2, lastNormalView: 2 });
    expect(matchingPrefix(records, records.length, again.opened)).to.equal(records.length);
  });

  it('a queue that overflows while the disk fails is given up once (lost): later records are ignored, and the disk holds a consistent prefix with every answered entry', async () => {
    const dir = freshDir();
    const faulty = faultyFs();
    const h = await open(dir, { ...fast, fs: faulty.fs, queueBytesMax: 2_000 });
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 3, 1))];
    for (const r of records) h.persist(r);
    await h.settle();
    faulty.rule = (op) => (op.type === 'write' && isLog(op.path) ? fsError('ENOSPC') : undefined);
    // One entry at a time, each ~190 bytes: the queue passes 2,000 bytes after a dozen.
    let op = 4;
    while (h.hooks.lost === 0 && op < 100) {
      const r = append(entries(op, op, 1));
      records.push(r);
      h.persist(r);
      op += 1;
      await sleep(1);
    }
    expect(h.hooks.lost).to.equal(1);
    expect(op).to.be.greaterThan(10);
    expect(h.store.counters().state).to.equal('lost');
    expect(h.hooks.faults.filter((f) => f.first)).to.have.length(1);
    const answeredAtLoss = h.answered.length;
    expect(answeredAtLoss).to.equal(2);
    // Ignored from now on, even once the disk works again: nothing written, nothing answered.
    faulty.rule = null;
    const writesAtLoss = faulty.logWrites;
    for (let extra = 0; extra < 5; extra++) h.persist(append(entries(op + extra, op + extra, 1)));
    await sleep(100);
    expect(faulty.logWrites).to.equal(writesAtLoss);
    expect(h.answered).to.have.length(answeredAtLoss);
    expect(h.hooks.lost).to.equal(1);
    expect(h.store.counters().state).to.equal('lost');
    await h.store.close();

    const again = await open(dir);
    expect(again.opened.found).to.equal('intact');
    expect(again.opened.stored.entries.map((e) => e.op).slice(0, 3)).to.deep.equal([1, 2, 3]);
    expect(matchingPrefix(records, answeredAtLoss, again.opened)).to.not.equal(null);
    // The replica restarts from it: appending after what is stored works.
    const next = (again.opened.stored.entries.at(-1)?.op ?? 0) + 1;
    again.persist(append(entries(next, next, 1)));
    await again.settle();
  });
});
