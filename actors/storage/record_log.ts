/**
 * Append-only log of checksummed records for one replica (issue 13, "Storage").
 *
 * Layout of the replica's directory (other files in it belong to other parts of storage and
 * are ignored here):
 *   log-<first seq, 20 digits>.seg   segments; records in record_format.ts, back to back, no header
 *   log-truncate.intent               present only while a truncateAfter is in progress (see there)
 *
 * Guarantees:
 * - Group commit: appends queued while a write+fdatasync runs go into the next single write and
 *   single fdatasync. An append resolves only after the fdatasync covering it completed.
 * - A crash loses only records whose fdatasync had not completed; a torn tail is cut on open.
 * - Damage (a bad record with valid records after it, a bad record in a non-last segment, a gap
 *   between segments) is reported, never applied and never cut silently.
 */
import { dirname, join } from 'node:path';
import { assert } from '../../src/base/assert.ts';
import { type FileSystem, type StorageFileHandle, StorageError, nodeFileSystem, toStorageError, truncateDurably, writeFileAtomically } from './fs.ts';
import {
  RECORD_HEADER_BYTES,
  decodeIntent,
  decodeRecordAt,
  encodeIntent,
  encodeRecords,
  parseSegmentName,
  segmentName,
  validRecordFollows,
} from './record_format.ts';

export interface RecordLogOptions {
  readonly fs?: FileSystem;
  /** A new segment starts once the current one has reached this size. */
  readonly segmentBytesMax?: number;
  /** Largest payload accepted on append and believed on read. */
  readonly recordBytesMax?: number;
}

export interface LogRecord {
  readonly seq: number;
  readonly payload: Uint8Array;
}

export type OpenState =
  | 'clean'
  | 'torn_tail'
  | { readonly damaged: { readonly segment: string; readonly offset: number; readonly reason: string } };

export interface OpenResult {
  readonly log: RecordLog;
  /** The valid records in order (only those before any damage). */
  readonly records: readonly LogRecord[];
  readonly state: OpenState;
}

const INTENT_NAME = 'log-truncate.intent';
const INTENT_TMP_NAME = 'log-truncate.intent.tmp';

interface Segment {
  readonly firstSeq: number;
  readonly name: string;
  /** Records in it (lastSeq = firstSeq + count - 1). */
  count: number;
  /** Bytes of valid records (the durable good size). */
  size: number;
  /** False between creating the file and the directory fsync that makes its name durable. */
  nameDurable: boolean;
}

interface Pending {
  readonly payloads: readonly Uint8Array[];
  readonly resolve: (range: { firstSeq: number; lastSeq: number }) => void;
  readonly reject: (error: unknown) => void;
}

async function readWhole(fs: FileSystem, path: string): Promise<Uint8Array> {
  const h = await fs.open(path, 'r');
  try {
    const size = await h.size();
    const out = new Uint8Array(size);
    let pos = 0;
    while (pos < size) {
      const n = await h.read(out, pos, Math.min(size - pos, 8 << 20), pos);
      if (n === 0) break; // shrank under us: what we have is what exists
      pos += n;
    }
    return pos === size ? out : out.subarray(0, pos);
  } finally {
    await h.close();
  }
}

export class RecordLog {
  readonly dir: string;
  private readonly fs: FileSystem;
  private readonly segmentBytesMax: number;
  private readonly recordBytesMax: number;
  private readonly segments: Segment[];
  private nextSeq: number;
  private damaged: boolean;
  private handle: StorageFileHandle | null = null;
  private handleName: string | null = null;
  /** Set after a failed write: the tail segment must be cut back to its good size first. */
  private needsRepair = false;
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  /** The write+sync in progress, if any (truncateAfter/dropBefore wait for it). */
  private writing: Promise<void> | null = null;
  /** Serializes truncateAfter/dropBefore with flushes. */
  private exclusive: Promise<void> = Promise.resolve();

  private constructor(dir: string, fs: FileSystem, segmentBytesMax: number, recordBytesMax: number, segments: Segment[], nextSeq: number, damaged: boolean) {
    this.dir = dir;
    this.fs = fs;
    this.segmentBytesMax = segmentBytesMax;
    this.recordBytesMax = recordBytesMax;
    this.segments = segments;
    this.nextSeq = nextSeq;
    this.damaged = damaged;
  }

  /** Sequence number the next appended record gets. */
  get nextSequence(): number {
    return this.nextSeq;
  }

  /**
   * Opens (creating the directory if needed), finishes an interrupted truncateAfter, then reads
   * and verifies every record. Rejects only on file-system errors (StorageError), never on bad bytes.
   */
  static async open(dir: string, options: RecordLogOptions = {}): Promise<OpenResult> {
    const fs = options.fs ?? nodeFileSystem;
    const segmentBytesMax = options.segmentBytesMax ?? 64 * 1024 * 1024;
    const recordBytesMax = options.recordBytesMax ?? 256 * 1024 * 1024;
    assert(Number.isSafeInteger(segmentBytesMax) && segmentBytesMax > 0, 'segmentBytesMax must be a positive integer');
    assert(Number.isSafeInteger(recordBytesMax) && recordBytesMax > 0 && recordBytesMax <= 0xffffffff, 'recordBytesMax must fit a u32');
    try {
      await fs.mkdir(dir);
      // The replica directory's own name lives in its parent: make it durable too.
      await fs.fsyncDir(dirname(dir));
      await redoTruncation(fs, dir, recordBytesMax);
      return await scan(fs, dir, segmentBytesMax, recordBytesMax);
    } catch (error) {
      throw toStorageError(error, dir, 'opening log in');
    }
  }

  /** @internal used by open */
  static create(dir: string, fs: FileSystem, segmentBytesMax: number, recordBytesMax: number, segments: Segment[], nextSeq: number, damaged: boolean): RecordLog {
    return new RecordLog(dir, fs, segmentBytesMax, recordBytesMax, segments, nextSeq, damaged);
  }

  /**
   * Appends the payloads as consecutive records. Whatever is queued when a write starts goes
   * into that one write and one fdatasync (group commit). Resolves with the sequence numbers
   * given, after they are durable; rejects with StorageError if the disk failed (nothing of this
   * call is then considered written; the caller retries).
   */
  append(payloads: readonly Uint8Array[]): Promise<{ firstSeq: number; lastSeq: number }> {
    assert(!this.damaged, 'append to a damaged log (truncateAfter below the damage first)');
    for (const p of payloads) assert(p.length <= this.recordBytesMax, `payload of ${p.length} bytes above recordBytesMax`);
    return new Promise((resolve, reject) => {
      this.queue.push({ payloads, resolve, reject });
      if (this.flushing === null) this.flushing = this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Let a truncateAfter/dropBefore that is waiting run first; re-check: another may queue.
        let gate: Promise<void>;
        do {
          gate = this.exclusive;
          await gate;
        } while (gate !== this.exclusive);
        const batch = this.queue;
        this.queue = [];
        this.writing = this.flushBatch(batch);
        await this.writing;
        this.writing = null;
      }
    } finally {
      this.flushing = null;
    }
  }

  private async flushBatch(batch: Pending[]): Promise<void> {
    const firstSeq = this.nextSeq;
    const records: { seq: number; payload: Uint8Array }[] = [];
    const ranges: { firstSeq: number; lastSeq: number }[] = [];
    let seq = firstSeq;
    for (const p of batch) {
      const start = seq;
      for (const payload of p.payloads) records.push({ seq: seq++, payload });
      ranges.push({ firstSeq: start, lastSeq: seq - 1 });
    }
    let path = this.dir;
    try {
      if (this.needsRepair) await this.repairTail();
      const tail = await this.tailForWrite(firstSeq);
      path = join(this.dir, tail.name);
      const h = await this.handleFor(tail);
      const bytes = encodeRecords(records);
      // Mark before writing: if the write or the sync fails, bytes past tail.size may be on disk.
      this.needsRepair = true;
      await h.write(bytes, tail.size);
      await h.datasync();
      this.needsRepair = false;
      tail.size += bytes.length;
      tail.count += records.length;
      this.nextSeq = seq;
    } catch (error) {
      const e = toStorageError(error, path, 'appending to');
      // Best effort now; if it fails too, the next flush retries it before writing.
      await this.repairTail().catch(() => undefined);
      for (const p of batch) p.reject(e);
      return;
    }
    batch.forEach((p, i) => p.resolve(ranges[i] ?? { firstSeq, lastSeq: firstSeq - 1 }));
  }

  /** Cuts the tail segment back to the last size known good and durable. */
  private async repairTail(): Promise<void> {
    const tail = this.segments[this.segments.length - 1];
    if (tail === undefined) {
      this.needsRepair = false;
      return;
    }
    const h = await this.handleFor(tail);
    await h.truncate(tail.size);
    await h.datasync();
    this.needsRepair = false;
  }

  /** The segment the next write goes to, rolling to a new one when the current is full. */
  private async tailForWrite(firstSeq: number): Promise<Segment> {
    let tail = this.segments[this.segments.length - 1];
    if (tail === undefined || (tail.size >= this.segmentBytesMax && tail.count > 0)) {
      const name = segmentName(firstSeq);
      await this.closeHandle();
      const h = await this.fs.open(join(this.dir, name), 'wx');
      this.handle = h;
      this.handleName = name;
      // Known before the directory fsync, so a failed fsync is retried on this file, not
      // answered by a second create of the same name (EEXIST forever).
      tail = { firstSeq, name, count: 0, size: 0, nameDurable: false };
      this.segments.push(tail);
    }
    // The new name must be durable before anything in it is acknowledged.
    if (!tail.nameDurable) {
      await this.fs.fsyncDir(this.dir);
      tail.nameDurable = true;
    }
    return tail;
  }

  private async handleFor(seg: Segment): Promise<StorageFileHandle> {
    if (this.handle !== null && this.handleName === seg.name) return this.handle;
    await this.closeHandle();
    this.handle = await this.fs.open(join(this.dir, seg.name), 'r+');
    this.handleName = seg.name;
    return this.handle;
  }

  private async closeHandle(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    this.handleName = null;
    if (h !== null) await h.close().catch(() => undefined);
  }

  /** Runs `work` with no flush in progress and none starting. */
  private async runExclusive<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.exclusive;
    let release!: () => void;
    this.exclusive = new Promise((r) => (release = r));
    await previous;
    if (this.writing !== null) await this.writing;
    try {
      return await work();
    } finally {
      release();
    }
  }

  /**
   * Deletes every segment whose records are all below `seq` (a checkpoint covers them). The tail
   * segment is always kept: its name carries the next sequence number across a restart.
   * Deleting oldest first keeps the directory a contiguous log at every instant.
   */
  dropBefore(seq: number): Promise<void> {
    return this.runExclusive(async () => {
      let path = this.dir;
      try {
        let dropped = 0;
        while (this.segments.length > 1) {
          const first = this.segments[0];
          const second = this.segments[1];
          if (first === undefined || second === undefined || second.firstSeq > seq) break;
          path = join(this.dir, first.name);
          await this.fs.unlink(path);
          this.segments.shift();
          dropped++;
        }
        if (dropped > 0) await this.fs.fsyncDir(this.dir);
      } catch (error) {
        throw toStorageError(error, path, 'dropping segment');
      }
    });
  }

  /**
   * Removes every record above `seq` (a new view replaced that suffix, or damage is being cut
   * away before repair). Crash-safe by a redo intent:
   *   1. write log-truncate.intent.tmp = encodeIntent(seq), fdatasync, rename to
   *      log-truncate.intent, fsync the directory: from here the truncation has happened;
   *   2. delete segments starting above seq + 1, truncate the one holding seq + 1 at that record
   *      (to 0 bytes if it starts there: the empty file keeps the next number), fdatasync;
   *   3. unlink the intent, fsync the directory.
   * A crash before 1 completes leaves the old log (the rename is atomic); after, open() redoes 2
   * (idempotent) before reading, so the reader sees the new log. Never a mix.
   */
  truncateAfter(seq: number): Promise<void> {
    return this.runExclusive(async () => {
      if (seq >= this.nextSeq - 1 && !this.damaged) return;
      const first = this.segments[0];
      assert(first === undefined || seq + 1 >= first.firstSeq, `truncateAfter(${seq}) below the first kept record ${first?.firstSeq}`);
      try {
        await this.closeHandle();
        await writeFileAtomically(this.fs, this.dir, join(this.dir, INTENT_TMP_NAME), join(this.dir, INTENT_NAME), encodeIntent(seq));
        await applyTruncation(this.fs, this.dir, seq, this.recordBytesMax);
        await this.fs.unlink(join(this.dir, INTENT_NAME));
        await this.fs.fsyncDir(this.dir);
      } catch (error) {
        // The in-memory view may now be behind the disk: appends are refused until a retried
        // truncateAfter(seq) (idempotent: it rewrites the intent and redoes the cut) or a reopen.
        this.damaged = true;
        throw toStorageError(error, this.dir, 'truncating log in');
      }
      // Reload the segment table from disk: simpler and surely right for a rare operation.
      const reopened = await scan(this.fs, this.dir, this.segmentBytesMax, this.recordBytesMax).catch((error: unknown) => {
        this.damaged = true;
        throw toStorageError(error, this.dir, 'rereading log in');
      });
      this.adopt(reopened.log);
    });
  }

  private adopt(other: RecordLog): void {
    this.segments.splice(0, this.segments.length, ...other.segments);
    this.nextSeq = other.nextSeq;
    this.damaged = other.damaged;
    this.needsRepair = false;
  }

  async close(): Promise<void> {
    if (this.flushing !== null) await this.flushing.catch(() => undefined);
    await this.closeHandle();
  }
}

/** Lists segments sorted by first sequence number. */
async function listSegments(fs: FileSystem, dir: string): Promise<{ firstSeq: number; name: string }[]> {
  const out: { firstSeq: number; name: string }[] = [];
  for (const name of await fs.readdir(dir)) {
    const firstSeq = parseSegmentName(name);
    if (firstSeq !== null) out.push({ firstSeq, name });
  }
  return out.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Finishes a truncation whose intent is on disk (see truncateAfter). */
async function redoTruncation(fs: FileSystem, dir: string, recordBytesMax: number): Promise<void> {
  const names = await fs.readdir(dir);
  if (names.includes(INTENT_TMP_NAME)) await fs.unlink(join(dir, INTENT_TMP_NAME)); // never committed
  if (!names.includes(INTENT_NAME)) return;
  const seq = decodeIntent(await readWhole(fs, join(dir, INTENT_NAME)));
  // Written whole then renamed: an unreadable intent is disk damage; leave it and let the scan
  // report what it finds (the segments are untouched by a truncation that cannot be read).
  if (seq === null) return;
  await applyTruncation(fs, dir, seq, recordBytesMax);
  await fs.unlink(join(dir, INTENT_NAME));
  await fs.fsyncDir(dir);
}

async function applyTruncation(fs: FileSystem, dir: string, seq: number, recordBytesMax: number): Promise<void> {
  const segments = await listSegments(fs, dir);
  let holder = -1;
  for (let i = 0; i < segments.length; i++) if ((segments[i]?.firstSeq ?? Infinity) <= seq + 1) holder = i;
  // Delete from the newest so an interruption leaves a contiguous prefix (and the intent redoes it).
  for (let i = segments.length - 1; i > holder; i--) {
    const s = segments[i];
    if (s !== undefined) await fs.unlink(join(dir, s.name));
  }
  await fs.fsyncDir(dir);
  const seg = segments[holder];
  if (seg === undefined) return;
  // Find the byte offset of record seq + 1, verifying every record before it: if one is bad we
  // cut nothing there, so the scan still reports the damage instead of a silently shorter log.
  const path = join(dir, seg.name);
  const bytes = await readWhole(fs, path);
  let pos = 0;
  for (let expect = seg.firstSeq; expect <= seq; expect++) {
    const r = decodeRecordAt(bytes, pos, expect, recordBytesMax);
    if (r.type !== 'record') return;
    pos = r.end;
  }
  if (pos >= bytes.length) return;
  await truncateDurably(fs, path, pos);
}

async function scan(fs: FileSystem, dir: string, segmentBytesMax: number, recordBytesMax: number): Promise<OpenResult> {
  const listed = await listSegments(fs, dir);
  const records: LogRecord[] = [];
  const segments: Segment[] = [];
  let state: OpenState = 'clean';
  let nextSeq = listed[0]?.firstSeq ?? 1;
  for (let i = 0; i < listed.length && state === 'clean'; i++) {
    const entry = listed[i];
    if (entry === undefined) break;
    const isLast = i === listed.length - 1;
    if (entry.firstSeq !== nextSeq) {
      state = { damaged: { segment: entry.name, offset: 0, reason: `segment starts at ${entry.firstSeq}, expected ${nextSeq}` } };
      break;
    }
    const path = join(dir, entry.name);
    const bytes = await readWhole(fs, path);
    const seg: Segment = { firstSeq: entry.firstSeq, name: entry.name, count: 0, size: 0, nameDurable: true };
    let pos = 0;
    for (;;) {
      const r = decodeRecordAt(bytes, pos, nextSeq, recordBytesMax);
      if (r.type === 'end') break;
      if (r.type === 'record') {
        records.push({ seq: r.seq, payload: r.payload });
        seg.count++;
        nextSeq++;
        pos = r.end;
        continue;
      }
      // A bad or incomplete record: a torn tail only if it is in the last segment and no valid
      // record follows it anywhere; otherwise synced data was lost or altered: damage.
      const torn = isLast && !validRecordFollows(bytes, pos + 1, nextSeq, recordBytesMax);
      if (torn) {
        await truncateDurably(fs, path, pos);
        state = 'torn_tail';
      } else {
        state = { damaged: { segment: entry.name, offset: pos, reason: r.reason } };
      }
      break;
    }
    seg.size = pos;
    segments.push(seg);
  }
  const damaged = typeof state === 'object';
  const log = RecordLog.create(dir, fs, segmentBytesMax, recordBytesMax, segments, nextSeq, damaged);
  return { log, records, state };
}

export { StorageError };
