import { strict as assert } from 'node:assert';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { type FsOperation, fsError, instrumentFileSystem, nodeFileSystem, StorageError } from '../../actors/storage/fs.ts';
import { RECORD_HEADER_BYTES, segmentName } from '../../actors/storage/record_format.ts';
import { type OpenResult, RecordLog } from '../../actors/storage/record_log.ts';
import { useTempDirs } from './temp_dirs.ts';

const { freshDir } = useTempDirs('record-log');

function payloadOf(i: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let j = 0; j < size; j++) p[j] = (i * 31 + j * 7) & 0xff;
  return p;
}

function plain(result: OpenResult): number[][] {
  return result.records.map((r) => Array.from(r.payload));
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

/** Writes one record per append (awaited), closes, returns the payloads. */
async function writeLog(dir: string, sizes: readonly number[], segmentBytesMax = 1 << 20): Promise<Uint8Array[]> {
  const { log } = await RecordLog.open(dir, { segmentBytesMax });
  const payloads = sizes.map((s, i) => payloadOf(i, s));
  for (const p of payloads) await log.append([p]);
  await log.close();
  return payloads;
}

describe('storage record log', () => {
  it('round trip: many appends across several segments reopen as exactly the records in order', async () => {
    const dir = freshDir();
    const sizes = Array.from({ length: 60 }, (_, i) => (i * 37) % 90);
    const payloads = await writeLog(dir, sizes, 200);
    assert.ok((await segmentFiles(dir)).length > 3, 'several segments');
    const reopened = await RecordLog.open(dir, { segmentBytesMax: 200 });
    assert.equal(reopened.state, 'clean');
    assert.deepEqual(plain(reopened), payloads.map((p) => Array.from(p)));
    assert.deepEqual(reopened.records.map((r) => r.seq), sizes.map((_, i) => i + 1));
    // Appending after a reopen continues the numbering.
    const range = await reopened.log.append([payloadOf(99, 3), payloadOf(100, 4)]);
    assert.deepEqual(range, { firstSeq: 61, lastSeq: 62 });
    await reopened.log.close();
    const again = await RecordLog.open(dir, { segmentBytesMax: 200 });
    assert.equal(again.records.length, 62);
    await again.log.close();
  });

  it('group commit: concurrent appends share writes and fdatasyncs, in call order', async () => {
    const dir = freshDir();
    let syncs = 0;
    let writes = 0;
    const fs = instrumentFileSystem(nodeFileSystem, {
      after(op) {
        if (op.type === 'datasync') syncs++;
        if (op.type === 'write') writes++;
      },
    });
    const { log } = await RecordLog.open(dir, { fs });
    const calls = 40;
    const ranges = await Promise.all(Array.from({ length: calls }, (_, i) => log.append([payloadOf(i, 10), payloadOf(i + 1000, 5)])));
    assert.ok(syncs < calls, `${syncs} datasyncs for ${calls} appends`);
    assert.equal(writes, syncs, 'one write per datasync');
    ranges.forEach((r, i) => assert.deepEqual(r, { firstSeq: 2 * i + 1, lastSeq: 2 * i + 2 }));
    await log.close();
    const reopened = await RecordLog.open(dir);
    assert.deepEqual(plain(reopened), Array.from({ length: calls }, (_, i) => [Array.from(payloadOf(i, 10)), Array.from(payloadOf(i + 1000, 5))]).flat());
    await reopened.log.close();
  });

  it('an append resolves only after its fdatasync completed', async () => {
    const dir = freshDir();
    const events: string[] = [];
    const fs = instrumentFileSystem(nodeFileSystem, { after: (op) => op.type === 'datasync' && events.push('datasync') });
    const { log } = await RecordLog.open(dir, { fs });
    await log.append([payloadOf(1, 4)]).then(() => events.push('resolved'));
    assert.deepEqual(events, ['datasync', 'resolved']);
    await log.close();
  });

  it('property: a file cut at any byte reopens as the records fully written, torn_tail or clean, never damaged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 1, maxLength: 12 }), fc.double({ min: 0, max: 1, noNaN: true }), async (sizes, cutAt) => {
        const dir = freshDir();
        const payloads = await writeLog(dir, sizes);
        const file = join(dir, segmentName(1));
        const size = (await fsp.stat(file)).size;
        const cut = Math.min(size, Math.floor(cutAt * (size + 1)));
        await fsp.truncate(file, cut);
        const ends: number[] = [];
        let end = 0;
        for (const s of sizes) ends.push((end += RECORD_HEADER_BYTES + s));
        const whole = ends.filter((e) => e <= cut).length;
        const reopened = await RecordLog.open(dir);
        await reopened.log.close();
        assert.deepEqual(plain(reopened), payloads.slice(0, whole).map((p) => Array.from(p)));
        const boundary = whole === 0 ? 0 : (ends[whole - 1] ?? 0);
        assert.equal(reopened.state, boundary === cut ? 'clean' : 'torn_tail');
        assert.equal((await fsp.stat(file)).size, boundary, 'torn bytes cut away');
        await fsp.rm(dir, { recursive: true });
      }),
      { numRuns: 60 },
    );
  });

  it('property: a flipped byte inside a non-last record is damage at that record, nothing after it returned', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 2, maxLength: 10 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (sizes, pickRecord, pickByte, mask) => {
          const dir = freshDir();
          const payloads = await writeLog(dir, sizes);
          const victim = pickRecord % (sizes.length - 1);
          let start = 0;
          for (let i = 0; i < victim; i++) start += RECORD_HEADER_BYTES + (sizes[i] ?? 0);
          const offset = start + (pickByte % (RECORD_HEADER_BYTES + (sizes[victim] ?? 0)));
          const file = join(dir, segmentName(1));
          const bytes = await fsp.readFile(file);
          bytes[offset] = (bytes[offset] ?? 0) ^ mask;
          await fsp.writeFile(file, bytes);
          const reopened = await RecordLog.open(dir);
          await reopened.log.close();
          assert.deepEqual(reopened.state, { damaged: { segment: segmentName(1), offset: start, reason: (reopened.state as { damaged: { reason: string } }).damaged?.reason } });
          assert.deepEqual(plain(reopened), payloads.slice(0, victim).map((p) => Array.from(p)));
          assert.equal((await fsp.stat(file)).size, bytes.length, 'damage is never cut silently');
          await fsp.rm(dir, { recursive: true });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('damage in a non-last segment, even in its last record, is damage', async () => {
    const dir = freshDir();
    await writeLog(dir, Array.from({ length: 12 }, () => 30), 100);
    const segs = await segmentFiles(dir);
    assert.ok(segs.length >= 3);
    const first = join(dir, segs[0] ?? '');
    const bytes = await fsp.readFile(first);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    await fsp.writeFile(first, bytes);
    const reopened = await RecordLog.open(dir, { segmentBytesMax: 100 });
    await reopened.log.close();
    assert.equal(typeof reopened.state, 'object');
    assert.throws(() => reopened.log.append([payloadOf(1, 1)]), /damaged/);
  });

  it('a missing middle segment is a gap: damage, not a shorter log', async () => {
    const dir = freshDir();
    await writeLog(dir, Array.from({ length: 12 }, () => 30), 100);
    const segs = await segmentFiles(dir);
    await fsp.unlink(join(dir, segs[1] ?? ''));
    const reopened = await RecordLog.open(dir, { segmentBytesMax: 100 });
    await reopened.log.close();
    assert.deepEqual(reopened.state, { damaged: { segment: segs[2], offset: 0, reason: (reopened.state as { damaged: { reason: string } }).damaged.reason } });
  });

  it('a garbage length (0xFFFFFFFF) is a torn tail at the end and damage in the middle, without a huge allocation', async () => {
    for (const where of ['last', 'middle'] as const) {
      const dir = freshDir();
      const sizes = [10, 20, 30, 40];
      const payloads = await writeLog(dir, sizes);
      const victim = where === 'last' ? 3 : 1;
      let start = 0;
      for (let i = 0; i < victim; i++) start += RECORD_HEADER_BYTES + (sizes[i] ?? 0);
      const file = join(dir, segmentName(1));
      const bytes = await fsp.readFile(file);
      bytes.writeUInt32BE(0xffffffff, start);
      await fsp.writeFile(file, bytes);
      const heapBefore = process.memoryUsage().arrayBuffers;
      const reopened = await RecordLog.open(dir);
      await reopened.log.close();
      assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 64 << 20, 'no allocation driven by the length field');
      assert.deepEqual(plain(reopened), payloads.slice(0, victim).map((p) => Array.from(p)));
      if (where === 'last') assert.equal(reopened.state, 'torn_tail');
      else assert.equal((reopened.state as { damaged: { offset: number } }).damaged.offset, start);
    }
  });

  it('a stale record with a valid checksum but the wrong sequence number is never applied', async () => {
    const dir = freshDir();
    await writeLog(dir, [8, 8, 8]);
    const file = join(dir, segmentName(1));
    const bytes = await fsp.readFile(file);
    const rec = RECORD_HEADER_BYTES + 8;
    // Replace record 2 by a copy of record 1: a valid record, at the wrong place.
    bytes.copy(bytes, rec, 0, rec);
    await fsp.writeFile(file, bytes);
    const reopened = await RecordLog.open(dir);
    await reopened.log.close();
    assert.equal(reopened.records.length, 1);
    assert.match((reopened.state as { damaged: { reason: string } }).damaged.reason, /sequence/);
  });

  it('dropBefore deletes only segments wholly below the given number', async () => {
    const dir = freshDir();
    await writeLog(dir, Array.from({ length: 30 }, () => 20), 100);
    const before = await segmentFiles(dir);
    const { log } = await RecordLog.open(dir, { segmentBytesMax: 100 });
    await log.dropBefore(14);
    const after = await segmentFiles(dir);
    const firstSeqs = before.map((n) => Number(n.slice(4, 24)));
    // Kept: every segment from the one holding record 14 onwards.
    const holder = firstSeqs.filter((s) => s <= 14).pop();
    assert.deepEqual(after, before.filter((n) => Number(n.slice(4, 24)) >= (holder ?? 0)));
    assert.ok(after.length < before.length);
    await log.dropBefore(1_000_000);
    assert.equal((await segmentFiles(dir)).length, 1, 'the tail segment is always kept');
    await log.append([payloadOf(7, 3)]);
    await log.close();
    const reopened = await RecordLog.open(dir, { segmentBytesMax: 100 });
    await reopened.log.close();
    assert.equal(reopened.state, 'clean');
    assert.equal(reopened.records.at(-1)?.seq, 31);
    assert.ok((reopened.records[0]?.seq ?? 0) > 14);
  });

  it('truncateAfter, then append, then reopen gives the new suffix', async () => {
    const dir = freshDir();
    const payloads = await writeLog(dir, Array.from({ length: 30 }, (_, i) => 10 + (i % 7)), 100);
    const { log } = await RecordLog.open(dir, { segmentBytesMax: 100 });
    await log.truncateAfter(12);
    assert.equal(log.nextSequence, 13);
    const fresh = [payloadOf(500, 9), payloadOf(501, 2), payloadOf(502, 0)];
    assert.deepEqual(await log.append(fresh), { firstSeq: 13, lastSeq: 15 });
    await log.close();
    const reopened = await RecordLog.open(dir, { segmentBytesMax: 100 });
    await reopened.log.close();
    assert.equal(reopened.state, 'clean');
    assert.deepEqual(plain(reopened), [...payloads.slice(0, 12), ...fresh].map((p) => Array.from(p)));
    assert.deepEqual(reopened.records.map((r) => r.seq), Array.from({ length: 15 }, (_, i) => i + 1));
    // Truncating everything keeps the numbering from where it was cut.
    await log.truncateAfter(0);
    assert.equal(log.nextSequence, 1);
    const empty = await RecordLog.open(dir, { segmentBytesMax: 100 });
    assert.equal(empty.records.length, 0);
    assert.equal(empty.state, 'clean');
    await empty.log.close();
  });

  it('truncateAfter is crash-safe: failing at any step leaves the old log or the new one, never a mix', async () => {
    const oldCount = 30;
    const cutTo = 12;
    let sawOld = false;
    let sawNew = false;
    for (let failAt = 0; ; failAt++) {
      const dir = freshDir();
      await writeLog(dir, Array.from({ length: oldCount }, () => 20), 100);
      let armed = false;
      let ops = 0;
      const fs = instrumentFileSystem(nodeFileSystem, {
        before(op: FsOperation) {
          if (!armed || op.type === 'close') return;
          if (ops++ === failAt) throw fsError('EIO', 'injected crash');
        },
      });
      const { log } = await RecordLog.open(dir, { fs, segmentBytesMax: 100 });
      armed = true;
      let failed = false;
      await log.truncateAfter(cutTo).catch((e: unknown) => {
        assert.ok(e instanceof StorageError);
        failed = true;
      });
      armed = false;
      await log.close();
      // "Restart": a fresh open on the real file system.
      const reopened = await RecordLog.open(dir, { segmentBytesMax: 100 });
      await reopened.log.close();
      assert.equal(reopened.state, 'clean', `failAt ${failAt}`);
      const seqs = reopened.records.map((r) => r.seq);
      const isOld = seqs.length === oldCount;
      const isNew = seqs.length === cutTo;
      assert.ok(isOld || isNew, `failAt ${failAt}: ${seqs.length} records`);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
      sawOld ||= isOld;
      sawNew ||= isNew;
      if (!failed) break;
      assert.ok(failAt < 200, 'bounded');
    }
    assert.ok(sawOld && sawNew, 'both outcomes exercised');
  });

  it('ENOSPC on write: append rejects typed, the log reopens clean, a later append succeeds', async () => {
    const dir = freshDir();
    let fail: 'none' | 'write' | 'write_and_truncate' = 'none';
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (fail === 'none') return;
        if (op.type === 'write') return { partialBytes: 10, error: fsError('ENOSPC', 'no space left on device') };
        if (op.type === 'truncate' && fail === 'write_and_truncate') throw fsError('EIO');
        return undefined;
      },
    });
    const { log } = await RecordLog.open(dir, { fs });
    for (let i = 0; i < 5; i++) await log.append([payloadOf(i, 12)]);
    fail = 'write';
    await assert.rejects(log.append([payloadOf(5, 12)]), (e: unknown) => e instanceof StorageError && e.code === 'ENOSPC' && e.path.endsWith('.seg'));
    const meanwhile = await RecordLog.open(dir);
    await meanwhile.log.close();
    assert.equal(meanwhile.state, 'clean', 'the partial write was cut back at once');
    assert.equal(meanwhile.records.length, 5);
    fail = 'none';
    assert.deepEqual(await log.append([payloadOf(6, 12)]), { firstSeq: 6, lastSeq: 6 });

    // When the cut-back fails too, the partial bytes are a torn tail on open, and the next
    // append cuts them before writing.
    fail = 'write_and_truncate';
    await assert.rejects(log.append([payloadOf(7, 12)]), (e: unknown) => e instanceof StorageError && e.code === 'ENOSPC');
    const torn = await RecordLog.open(join(dir));
    await torn.log.close();
    assert.equal(torn.state, 'torn_tail');
    assert.equal(torn.records.length, 6);
    fail = 'none';
    assert.deepEqual(await log.append([payloadOf(8, 12)]), { firstSeq: 7, lastSeq: 7 });
    await log.close();
    const final = await RecordLog.open(dir);
    await final.log.close();
    assert.equal(final.state, 'clean');
    assert.equal(final.records.length, 7);
    assert.deepEqual(Array.from(final.records[6]?.payload ?? []), Array.from(payloadOf(8, 12)));
  });

  it('EIO on fdatasync: append rejects typed and nothing of it is kept', async () => {
    const dir = freshDir();
    let failSync = false;
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (failSync && op.type === 'datasync') {
          failSync = false;
          throw fsError('EIO', 'i/o error');
        }
      },
    });
    const { log } = await RecordLog.open(dir, { fs });
    await log.append([payloadOf(1, 5)]);
    failSync = true;
    await assert.rejects(log.append([payloadOf(2, 5)]), (e: unknown) => e instanceof StorageError && e.code === 'EIO');
    assert.deepEqual(await log.append([payloadOf(3, 5)]), { firstSeq: 2, lastSeq: 2 });
    await log.close();
    const reopened = await RecordLog.open(dir);
    await reopened.log.close();
    assert.deepEqual(plain(reopened), [payloadOf(1, 5), payloadOf(3, 5)].map((p) => Array.from(p)));
  });

  it('a failed directory fsync after a new segment is retried on that segment, not recreated', async () => {
    const dir = freshDir();
    let failDirSync = false;
    let dirSyncs = 0;
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (op.type !== 'fsync_dir') return;
        if (failDirSync) {
          failDirSync = false;
          throw fsError('EIO');
        }
        dirSyncs++;
      },
    });
    const { log } = await RecordLog.open(dir, { fs, segmentBytesMax: 50 });
    await log.append([payloadOf(1, 40)]);
    const syncsBefore = dirSyncs;
    failDirSync = true;
    await assert.rejects(log.append([payloadOf(2, 40)]), (e: unknown) => e instanceof StorageError && e.code === 'EIO');
    assert.deepEqual(await log.append([payloadOf(3, 40)]), { firstSeq: 2, lastSeq: 2 });
    assert.equal(dirSyncs, syncsBefore + 1, 'the retry fsyncs the directory before acknowledging');
    await log.close();
    const reopened = await RecordLog.open(dir, { segmentBytesMax: 50 });
    await reopened.log.close();
    assert.equal(reopened.state, 'clean');
    assert.deepEqual(plain(reopened), [payloadOf(1, 40), payloadOf(3, 40)].map((p) => Array.from(p)));
  });
});
