/**
 * The durable replica store (actors/storage/replica_store.ts) on real files: what it answers and
 * when (only after the records are durable, in order, with group commit), the order in which
 * promises, installed and lazy checkpoints reach the disk, bounded disk use, truncation, and
 * what a reopen reads back compared with SimStore (test/sim/storage.ts), the simulator's model
 * of the same persist records. Damage and refusals are here too; crash consistency (and a crash
 * while repairing damage) and disk faults are in storage_replica_store_faults.test.ts.
 */

import { expect } from 'chai';
import { mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeCheckpointFile } from '../../actors/storage/checkpoint_file.ts';
import { instrumentFileSystem, nodeFileSystem, type FsOperation } from '../../actors/storage/fs.ts';
import { encodeIdentity } from '../../actors/storage/identity.ts';
import { ReplicaStore, StorageRefusal } from '../../actors/storage/replica_store.ts';
import { encodeSuperblockCopy, SUPERBLOCK_COPY_BYTES } from '../../actors/storage/superblock.ts';
import type { PersistRecord } from '../../src/vr/io.ts';
import { emptyMachine, type Machine } from '../../src/vr/state_machine.ts';
import { SimStore } from '../sim/storage.ts';
import {
  append,
  applyAll,
  diskBytes,
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
  machineAt,
  promise,
  sameState,
  segments,
  sleep,
  superblockSays,
  tenEntries,
  truncateAfter,
  useStores,
  waitFor,
} from './storage_replica_store_helpers.ts';

const { freshDir, open } = useStores('replica-store');

function simOf(records: readonly PersistRecord[]): SimStore {
  const sim = new SimStore();
  for (const record of records) sim.apply(record);
  expect(sim.anomalies, 'the records themselves follow the contract').to.deep.equal([]);
  return sim;
}

/** Reopens `dir` and checks it reads back exactly what SimStore holds after `records`. */
async function expectReopenEquals(dir: string, records: readonly PersistRecord[], options: Parameters<typeof Harness.open>[1] = {}): Promise<Harness> {
  const again = await open(dir, options);
  expect(again.opened.found).to.equal('intact');
  expect(sameState(again.opened.stored, simOf(records).stored())).to.equal(null);
  return again;
}

/**
 * An fs that records every successful operation as "type name" (file name only); `hold()`
 * holds the log's fdatasyncs until the function it returns is called.
 */
function recordingFs(dir: string): { fs: ReturnType<typeof instrumentFileSystem>; ops: string[]; hold: () => () => void; holding: () => boolean } {
  const ops: string[] = [];
  let gate: Promise<void> | null = null;
  let waiting = false;
  const fs = instrumentFileSystem(nodeFileSystem, {
    async before(op: FsOperation) {
      if (op.type !== 'datasync' || !isLog(op.path) || gate === null) return;
      waiting = true;
      await gate;
      waiting = false;
    },
    after(op: FsOperation) {
      ops.push(`${op.type} ${op.path.startsWith(dir) ? op.path.slice(dir.length + 1) : op.path}${op.type === 'rename' ? ` -> ${op.to.slice(dir.length + 1)}` : ''}`);
    },
  });
  const hold = (): (() => void) => {
    let release!: () => void;
    gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      gate = null;
      release();
    };
  };
  return { fs, ops, hold, holding: () => waiting };
}

describe('replica store: answers and reopen', () => {
  it('an empty directory opens empty; answers come in order, only after the records are durable; a reopen is intact and equals SimStore', async () => {
    const dir = freshDir();
    const { fs, ops, hold, holding } = recordingFs(dir);
    const h = await open(dir, { fs });
    expect(h.opened.found).to.equal('empty');
    expect(h.opened.stored).to.deep.equal({ checkpoint: null, entries: [] });
    expect(h.opened.notes).to.deep.equal([]);
    // When an answer leaves, every file written must have been fdatasynced since.
    const unsyncedAtAnswer: string[] = [];
    h.onPersisted = () => {
      const lastWrite = new Map<string, number>();
      ops.forEach((o, i) => {
        const [type, name] = o.split(' ');
        if (type === 'write') lastWrite.set(name ?? '', i);
        if (type === 'datasync') lastWrite.delete(name ?? '');
      });
      unsyncedAtAnswer.push(...lastWrite.keys());
    };

    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 3, 1)), append(entries(4, 4, 1))];
    for (const r of records) h.persist(r);
    await h.settle();
    expect(h.answered).to.deep.equal([1, 2, 3]);

    // Hold the log's fdatasync: the appended entries are written but not durable, so no answer.
    const release = hold();
    const more = [append(entries(5, 6, 1)), append(entries(7, 9, 1))];
    for (const r of more) h.persist(r);
    records.push(...more);
    await waitFor(holding, 5_000, 'the held fdatasync');
    await sleep(50);
    expect(h.answered, 'nothing answered while the fdatasync is held').to.deep.equal([1, 2, 3]);
    release();
    await h.settle();
    expect(h.answered).to.deep.equal([1, 2, 3, 4, 5]);
    expect(unsyncedAtAnswer, 'no file had unsynced writes when an answer left').to.deep.equal([]);
    const counters = h.store.counters();
    expect(counters).to.include({ entries: 9, records: 9, state: 'ok', faults: 0, checkpoints: 0 });
    expect(counters.fsyncs).to.be.at.least(3);
    await h.store.close();

    const again = await expectReopenEquals(dir, records);
    expect(again.opened.stored.promise).to.deep.equal({ view: 1, lastNormalView: 1 });
    expect(entryBytes(again.opened.stored.entries)).to.equal(entryBytes(entries(1, 9, 1)));
    expect(again.opened.stored.checkpoint).to.equal(null);
    // The store keeps working after a reopen: the next entries follow the stored ones.
    again.persist(append(entries(10, 10, 1)));
    await again.settle();
    await again.store.close();
    await expectReopenEquals(dir, [...records, append(entries(10, 10, 1))]);
  });

  it('group commit: 500 persist calls issued in one burst share a few fdatasyncs, and every one is answered in order', async () => {
    const dir = freshDir();
    let logSyncs = 0;
    const fs = instrumentFileSystem(nodeFileSystem, {
      after(op) {
        if (op.type === 'datasync' && isLog(op.path)) logSyncs++;
      },
    });
    const h = await open(dir, { fs });
    h.persist(promise(1, 1));
    await h.settle();
    const records: PersistRecord[] = [promise(1, 1)];
    for (let op = 1; op <= 500; op++) {
      const r = append(entries(op, op, 1));
      records.push(r);
      h.persist(r, op);
    }
    await h.settle();
    expect(h.answered).to.deep.equal(Array.from({ length: 501 }, (_, i) => i + 1));
    expect(h.hooks.answers.at(-1)).to.deep.equal({ type: 'persisted', generation: 501, op: 500 });
    expect(logSyncs, `${logSyncs} log fdatasyncs for 500 records`).to.be.at.least(1).and.at.most(5);
    expect(h.store.counters()).to.include({ records: 500, entries: 500 });
    await h.store.close();
    await expectReopenEquals(dir, records);
  });

  it('the records of one step (same generation) get one answer, after the last of them is durable', async () => {
    const dir = freshDir();
    const h = await open(dir);
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 9, 1))];
    for (const r of records) h.persist(r);
    await h.settle();
    // One step, every record answered as (generation 7, op 12): a checkpoint reached at op 2,
    // the suffix after op 5 replaced, the new entries. Answering an early record of the step
    // would tell the replica op 12 is stored while its entries are still queued.
    const step: PersistRecord[] = [lazyCheckpoint(machineAt(2, 1)), truncateAfter(5), append(entries(6, 12, 2))];
    for (const r of step) h.store.persist(r, 7, 12);
    // The next step's answer stays separate.
    h.store.persist(append(entries(13, 13, 2)), 8, 13);
    records.push(...step, append(entries(13, 13, 2)));
    await waitFor(() => h.hooks.answers.length >= 4, 5_000, 'answers');
    await sleep(20);
    expect(h.hooks.answers).to.deep.equal([
      { type: 'persisted', generation: 1, op: 0 },
      { type: 'persisted', generation: 2, op: 0 },
      { type: 'persisted', generation: 7, op: 12 },
      { type: 'persisted', generation: 8, op: 13 },
    ]);
    await h.store.close();
    await expectReopenEquals(dir, records);
  });

  it('truncate_after then new entries: a reopen gives the new suffix', async () => {
    const dir = freshDir();
    const h = await open(dir);
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 10, 1)), promise(2, 1), truncateAfter(6), append(entries(7, 9, 2)), promise(2, 2)];
    for (const r of records) h.persist(r);
    await h.settle();
    await h.store.close();
    const again = await expectReopenEquals(dir, records);
    expect(entryBytes(again.opened.stored.entries)).to.equal(entryBytes([...entries(1, 6, 1), ...entries(7, 9, 2)]));
    expect(again.opened.stored.promise).to.deep.equal({ view: 2, lastNormalView: 2 });
    // Further truncations (one of them cutting nothing) and appends keep composing.
    const next = [truncateAfter(7), append(entries(8, 8, 3)), truncateAfter(8), append(entries(9, 12, 3))];
    for (const r of next) again.persist(r);
    await again.settle();
    await again.store.close();
    const third = await expectReopenEquals(dir, [...records, ...next]);
    expect(third.opened.stored.entries.map((e) => `${e.op}v${e.view}`)).to.deep.equal(['1v1', '2v1', '3v1', '4v1', '5v1', '6v1', '7v2', '8v3', '9v3', '10v3', '11v3', '12v3']);
  });

  it('a checkpoint whose segment cut lands inside a replaced suffix still reopens intact (stale entries before a truncation are not a gap)', async () => {
    const dir = freshDir();
    // An entry record is ~200 bytes. With 700-byte segments the batch of ops 1..4 fills the
    // first segment and everything after it shares the second: the stale ops 5 and 6 of view 1,
    // the truncation, and ops 3..5 of view 2.
    const options = { segmentBytesMax: 700, checkpointAfterBytes: 1 };
    const h = await open(dir, options);
    const records: PersistRecord[] = [
      promise(1, 1),
      append(entries(1, 4, 1)),
      append(entries(5, 6, 1)),
      promise(2, 1),
      truncateAfter(2),
      append(entries(3, 5, 2)),
      promise(2, 2),
    ];
    for (const r of records) {
      h.persist(r);
      await h.settle();
    }
    expect(await segments(dir)).to.have.length(2);
    // A checkpoint at op 3 of the new history: the first entry still needed is op 4 of view 2,
    // in the second segment, so the first goes and the log now starts with the stale op 5.
    const machine = applyAll(emptyMachine(), [...entries(1, 2, 1), ...entries(3, 3, 2)]);
    records.push(lazyCheckpoint(machine));
    h.persist(lazyCheckpoint(machine));
    h.store.offerImage(image(machine));
    await h.settle();
    await waitFor(() => h.store.counters().checkpoints === 1, 5_000, 'the checkpoint file');
    await h.store.close();
    expect(await segments(dir)).to.have.length(1);
    await expectReopenEquals(dir, records, options);
  });
});

describe('replica store: write order', () => {
  it('a promise reaches the superblock only after the entries queued before it are durable', async () => {
    const dir = freshDir();
    const recording = recordingFs(dir);
    const writes = (): string[] =>
      recording.ops.filter((o) => /^(write|datasync) /.test(o)).map((o) => o.replace(/log-\d{20}\.seg$/, 'log'));
    const h = await open(dir, { fs: recording.fs });
    h.persist(promise(1, 1));
    await h.settle();
    recording.ops.length = 0;
    const release = recording.hold();
    h.persist(append(entries(1, 5, 1)));
    h.persist(promise(2, 2));
    h.persist(append(entries(6, 6, 2)));
    await waitFor(recording.holding, 5_000, 'the held fdatasync');
    await sleep(50);
    expect(writes(), 'the entries are written, their fdatasync held, the superblock untouched').to.deep.equal(['write log']);
    expect(h.answered).to.deep.equal([1]);
    release();
    await h.settle();
    expect(writes()).to.deep.equal(['write log', 'datasync log', 'write superblock', 'datasync superblock', 'write log', 'datasync log']);
    expect(h.answered).to.deep.equal([1, 2, 3, 4]);
  });

  it('an installed checkpoint is written before the entries after it, after the entries before it', async () => {
    const dir = freshDir();
    const { fs, ops } = recordingFs(dir);
    const h = await open(dir, { fs });
    const peer = machineAt(10, 7); // a peer's history, ahead of this replica's log
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 4, 1)), installCheckpoint(peer), append(entries(11, 12, 1))];
    h.persist(records[0] as PersistRecord);
    await h.settle();
    ops.length = 0;
    for (const r of records.slice(1)) h.persist(r);
    await h.settle();
    const logWrites = ops.flatMap((o, i) => (/^write log-/.test(o) ? [i] : []));
    const renamed = ops.indexOf('rename checkpoint-10.tmp -> checkpoint-10.ckpt');
    expect(renamed, ops.join('\n')).to.be.greaterThan(-1);
    expect(logWrites.length).to.be.at.least(2);
    expect(logWrites[0]).to.be.lessThan(renamed);
    expect(logWrites.at(-1)).to.be.greaterThan(renamed);
    expect(h.store.counters().checkpoints).to.equal(1);
    await h.store.close();
    const again = await expectReopenEquals(dir, records);
    expect(again.opened.stored.checkpoint?.appliedOp).to.equal(10);
    expect(again.opened.stored.entries.map((e) => e.op)).to.deep.equal([11, 12]);
  });

  it('a lazy checkpoint is written only once its image is offered and the log has grown past checkpointAfterBytes', async () => {
    const dir = freshDir();
    const h = await open(dir, { checkpointAfterBytes: 3_000 });
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 10, 1)), lazyCheckpoint(machineAt(5, 1))];
    for (const r of records) h.persist(r);
    await h.settle();
    // Offered, but the log holds far less than 3,000 bytes since the last checkpoint.
    h.store.offerImage(image(machineAt(5, 1)));
    await sleep(50);
    expect(h.store.counters().checkpoints).to.equal(0);
    expect((await readdir(dir)).filter((n) => n.startsWith('checkpoint-'))).to.deep.equal([]);
    // More entries push it past the threshold: the offered image is written with no new offer.
    const more = append(entries(11, 60, 1));
    h.persist(more);
    records.push(more);
    await h.settle();
    await waitFor(() => h.store.counters().checkpoints === 1, 5_000, 'the lazy checkpoint');
    expect((await readdir(dir)).filter((n) => n.startsWith('checkpoint-'))).to.deep.equal(['checkpoint-5.ckpt']);
    await h.store.close();
    const again = await expectReopenEquals(dir, records);
    expect(again.opened.stored.checkpoint?.appliedOp).to.equal(5);

    // Past the threshold but never offered: nothing is written.
    const other = freshDir();
    const g = await open(other, { checkpointAfterBytes: 100 });
    for (const r of records) g.persist(r);
    await g.settle();
    await sleep(50);
    expect(g.store.counters().checkpoints).to.equal(0);
  });

  it('a lazy checkpoint is not written before the records queued ahead of it (a replaced suffix) are durable', async () => {
    const dir = freshDir();
    const { fs, ops, hold, holding } = recordingFs(dir);
    const h = await open(dir, { fs, checkpointAfterBytes: 1 });
    const records: PersistRecord[] = [promise(1, 1), append(entries(1, 9, 1))];
    for (const r of records) h.persist(r);
    await h.settle();
    // A write in progress (its fdatasync held) while the next records queue up behind it.
    const release = hold();
    records.push(append(entries(10, 10, 1)));
    h.persist(append(entries(10, 10, 1)));
    await waitFor(holding, 5_000, 'the held fdatasync');
    ops.length = 0;
    // A view change replaces ops 6..10, the new ops commit up to 8 and the replica reaches a
    // checkpoint at 8 of the new history while the truncation and new entries are queued. The
    // log on disk holds ops 1..10 of view 1, so "the log covers op 8" is not enough.
    const machine = applyAll(emptyMachine(), [...entries(1, 5, 1), ...entries(6, 8, 2)]);
    const change: PersistRecord[] = [promise(2, 1), truncateAfter(5), append(entries(6, 10, 2)), promise(2, 2), lazyCheckpoint(machine)];
    for (const r of change) h.persist(r);
    h.store.offerImage(image(machine));
    records.push(...change);
    release();
    await h.settle();
    await waitFor(() => h.store.counters().checkpoints === 1, 5_000, 'the lazy checkpoint');
    const renamed = ops.indexOf('rename checkpoint-8.tmp -> checkpoint-8.ckpt');
    const truncationWritten = ops.reduce((last, o, i) => (/^datasync log-/.test(o) ? i : last), -1);
    expect(ops.filter((o) => /^datasync log-/.test(o)), 'the held write, then the truncation and new entries').to.have.length(2);
    expect(renamed, ops.join('\n')).to.be.greaterThan(truncationWritten);
    await h.store.close();
    await expectReopenEquals(dir, records);
  });

  it('lazy checkpoints delete old segments: disk use stays bounded over 5,000 entries, and the reopen is intact', async function () {
    this.timeout(60_000);
    const dir = freshDir();
    const options = { segmentBytesMax: 4_096, checkpointAfterBytes: 8_192 };
    const h = await open(dir, options);
    const records: PersistRecord[] = [promise(1, 1)];
    h.persist(promise(1, 1));
    let committed: Machine = emptyMachine();
    let logMax = 0;
    let totalMax = 0;
    const chunk = 50;
    for (let from = 1; from <= 5_000; from += chunk) {
      const list = entries(from, from + chunk - 1, 1);
      records.push(append(list));
      h.persist(append(list));
      // Everything but the last 10 entries is committed; a checkpoint every chunk.
      const commitTo = from + chunk - 11;
      committed = applyAll(committed, entries(committed.appliedOp + 1, commitTo, 1));
      records.push(lazyCheckpoint(committed));
      h.persist(lazyCheckpoint(committed));
      h.store.offerImage(image(committed));
      await h.settle();
      logMax = Math.max(logMax, await diskBytes(dir, /^log-/));
      totalMax = Math.max(totalMax, await diskBytes(dir, /./));
    }
    const counters = h.store.counters();
    expect(counters.entries).to.equal(5_000);
    expect(counters.bytes, 'the log wrote far more than it keeps').to.be.greaterThan(300_000);
    expect(counters.checkpoints).to.be.at.least(20);
    expect(logMax, `log bytes on disk at most ${logMax}`).to.be.lessThan(40_000);
    expect(totalMax, `directory bytes at most ${totalMax}`).to.be.lessThan(64_000);
    // Once the checkpoint write in progress (if any) is done, one checkpoint file is left.
    await h.store.close();
    expect((await readdir(dir)).filter((n) => n.startsWith('checkpoint-'))).to.have.length(1);
    const again = await expectReopenEquals(dir, records, options);
    expect(again.opened.stored.checkpoint?.appliedOp).to.be.greaterThan(4_800);
    expect(again.opened.stored.entries.at(-1)?.op).to.equal(5_000);
  });
});

describe('replica store: damage and refusals', () => {
  it('a flipped byte in a middle record: damaged, no promise, only the entries before it, and the superblock now says none', async () => {
    const dir = freshDir();
    await tenEntries(dir);
    expect(await superblockSays(dir)).to.equal('1/1');
    await flipInRecord(dir, 4); // the record of op 5
    const h = await open(dir);
    expect(h.opened.found).to.equal('damaged');
    expect(h.opened.stored.promise).to.equal(undefined);
    expect(h.opened.stored.entries.map((e) => e.op)).to.deep.equal([1, 2, 3, 4]);
    expect(h.opened.notes.join('\n')).to.match(/damaged/);
    expect(await superblockSays(dir)).to.equal('none');
    await h.store.close();
    const again = await open(dir);
    expect(again.opened.found, 'still damaged: the promise is not trusted again').to.equal('damaged');
    expect(again.opened.stored.entries.map((e) => e.op)).to.deep.equal([1, 2, 3, 4]);
    // The replica recovers, stores the rest and promises again: from then on it is intact.
    again.persist(append(entries(5, 7, 1)));
    again.persist(promise(3, 3));
    await again.settle();
    await again.store.close();
    const third = await open(dir);
    expect(third.opened.found).to.equal('intact');
    expect(third.opened.stored.promise).to.deep.equal({ view: 3, lastNormalView: 3 });
    expect(entryBytes(third.opened.stored.entries)).to.equal(entryBytes(entries(1, 7, 1)));
  });

  it('lost segments at the start of the log (no checkpoint covers them): damaged, nothing above the gap trusted', async () => {
    const dir = freshDir();
    const options = { segmentBytesMax: 1 }; // one append batch per segment
    const h = await open(dir, options);
    for (const r of [promise(1, 1), append(entries(1, 3, 1)), append(entries(4, 6, 1)), append(entries(7, 8, 1))]) {
      h.persist(r);
      await h.settle();
    }
    await h.store.close();
    const [first] = await segments(dir);
    await unlink(join(dir, first ?? ''));
    const again = await open(dir, options);
    expect(again.opened.found).to.equal('damaged');
    expect(again.opened.stored).to.deep.equal({ checkpoint: null, entries: [] });
    expect(again.opened.notes.join('\n')).to.include('does not follow checkpoint 0');
    await again.store.close();
    const third = await open(dir, options);
    expect(third.opened.found).to.equal('damaged');
    expect(third.opened.stored.entries).to.deep.equal([]);
    // Recovery stores the whole log again from op 1.
    third.persist(append(entries(1, 8, 2)));
    third.persist(promise(2, 2));
    await third.settle();
    await third.store.close();
    const fourth = await open(dir, options);
    expect(fourth.opened.found).to.equal('intact');
    expect(entryBytes(fourth.opened.stored.entries)).to.equal(entryBytes(entries(1, 8, 2)));
  });

  it('a deleted superblock with the log kept: damaged', async () => {
    const dir = freshDir();
    await tenEntries(dir);
    await unlink(join(dir, 'superblock'));
    const h = await open(dir);
    expect(h.opened.found).to.equal('damaged');
    expect(h.opened.stored.promise).to.equal(undefined);
    expect(h.opened.stored.entries.map((e) => e.op)).to.deep.equal(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(await superblockSays(dir)).to.equal('none');
  });

  it('a damaged checkpoint file: damaged, even when what remains would replay cleanly', async () => {
    // One append batch per segment, so the installed checkpoint's cut leaves only the tail
    // segment, which holds nothing but a truncation record: without the checkpoint, the log
    // alone reads as an empty, clean log.
    const dir = freshDir();
    const options = { segmentBytesMax: 1 };
    const h = await open(dir, options);
    for (const r of [promise(1, 1), append(entries(1, 5, 1)), truncateAfter(5), installCheckpoint(machineAt(8, 4))]) {
      h.persist(r);
      await h.settle();
    }
    await h.store.close();
    expect(await segments(dir)).to.have.length(1);
    const path = join(dir, 'checkpoint-8.ckpt');
    const bytes = new Uint8Array(await readFile(path));
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 1;
    await writeFile(path, bytes);
    const again = await open(dir, options);
    expect(again.opened.found).to.equal('damaged');
    expect(again.opened.stored.promise).to.equal(undefined);
    expect(again.opened.notes.join('\n')).to.include('checkpoint-8.ckpt');
  });

  it('a superblock or checkpoint of a newer format, or another node\'s identity: StorageRefusal naming the file', async () => {
    const refusal = async (dir: string): Promise<StorageRefusal> => {
      let thrown: unknown = null;
      await ReplicaStore.open(dir, identity, { limits }).then(
        (opened) => opened.store.close(),
        (error: unknown) => (thrown = error),
      );
      expect(thrown).to.be.instanceOf(StorageRefusal);
      return thrown as StorageRefusal;
    };

    const newerSuperblock = freshDir();
    await tenEntries(newerSuperblock);
    const sbPath = join(newerSuperblock, 'superblock');
    const sb = new Uint8Array(await readFile(sbPath));
    // The next copy (sequence 2, slot 0) written by a newer format.
    sb.set(encodeSuperblockCopy(2, new Uint8Array(8), 2), 0);
    await writeFile(sbPath, sb);
    const r1 = await refusal(newerSuperblock);
    expect(r1.path).to.equal(sbPath);
    expect(r1.message).to.include(sbPath).and.include('newer');

    const newerCheckpoint = freshDir();
    await tenEntries(newerCheckpoint);
    const ckptPath = join(newerCheckpoint, 'checkpoint-12.ckpt');
    await writeFile(ckptPath, encodeCheckpointFile(12, new Uint8Array(16), 2));
    const r2 = await refusal(newerCheckpoint);
    expect(r2.path).to.equal(ckptPath);
    expect(r2.message).to.include(ckptPath);

    const otherNode = freshDir();
    await mkdir(otherNode, { recursive: true });
    await writeFile(join(otherNode, 'identity.json'), encodeIdentity({ ...identity, node: 'n2' }));
    const r3 = await refusal(otherNode);
    expect(r3.path).to.equal(join(otherNode, 'identity.json'));
    expect(r3.message).to.include(join(otherNode, 'identity.json')).and.include('n2');
    // Nothing was written into the refused directories.
    expect(await readdir(otherNode)).to.deep.equal(['identity.json']);
    expect(await readFile(sbPath)).to.have.length(2 * SUPERBLOCK_COPY_BYTES);
  });
});

