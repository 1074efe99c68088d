/**
 * One durable replica's storage (issue 13; src/vr/README.md rule 18; PROTOCOL.md "Durability"):
 * the shell that executes the core's `persist` effects and, at start, reads back what the
 * replica may trust.
 *
 * The replica directory holds (each file's format is in its own module):
 *   identity.json          whose directory this is (identity.ts): another node's, namespace's or
 *                          replica's directory, or a newer format, is refused at open
 *   superblock             the promise (view, lastNormalView), or "none" (superblock.ts)
 *   checkpoint-<op>.ckpt   the newest checkpoint image (checkpoint_file.ts)
 *   log-<seq>.seg          the record log (record_log.ts): one record per log entry, and one per
 *                          truncation, in the order the core emitted them
 *
 * What the replica trusts is the checkpoint plus the log replayed on top of it: entries at or
 * below the checkpoint's op are skipped, each later entry must follow the one before, and a
 * truncation record cuts the entries above its op. The promise is trusted only when everything
 * read back is intact; otherwise it is rewritten as "none" before anything else, so a second
 * crash cannot resume on a log that lost entries this replica acknowledged.
 *
 * Writes (group commit): every record queued while a disk operation runs, and every record of
 * one synchronous run of persist calls (one step's effects), goes into the next single append
 * (one write, one fdatasync); a promise goes to the superblock after the records queued before
 * it; an installed checkpoint (from a peer) is written before the records after it. Only then
 * are the steps answered with `persisted`. A checkpoint the replica reached itself is written
 * lazily: when the log has grown by `checkpointAfterBytes` since the last one and an encoded
 * image of it is on offer, once its record (so every record before it) is durable; segments
 * wholly below it go.
 *
 * Disk errors never throw at the replica: the operation is retried with backoff (one `fault`
 * hook per episode, `recovered` when it passes); nothing is answered meanwhile, so nothing is
 * acknowledged. If the queue outgrows `queueBytesMax` while failing, the store gives up on it
 * (`lost`): what is on disk is still consistent, and the replica restarts from it.
 */

import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { assert, assertNever } from '../../src/base/assert.ts';
import type { TreeLimits } from '../../src/base/limits.ts';
import { decodeCheckpoint } from '../../src/vr/checkpoint.ts';
import type { PersistRecord, StoredState } from '../../src/vr/io.ts';
import type { CheckpointImage, LogEntry } from '../../src/vr/messages.ts';
import type { Machine } from '../../src/vr/state_machine.ts';
import { validateStoredEntry } from '../../src/vr/validate.ts';
import { readLatestCheckpoint, writeCheckpoint } from './checkpoint_file.ts';
import { nodeFileSystem, StorageError, toStorageError, type FileSystem } from './fs.ts';
import { claimDirectory, type DirectoryIdentity } from './identity.ts';
import { RecordLog, type LogRecord } from './record_log.ts';
import { Superblock } from './superblock.ts';

/** A directory this replica must not use (another owner, a newer format): start is refused, naming the file. */
export class StorageRefusal extends Error {
  override readonly name = 'StorageRefusal';
  readonly path: string;
  constructor(message: string, path: string) {
    super(message);
    this.path = path;
  }
}

/** What open found: nothing yet, everything intact (the promise too), or damage (a trusted prefix only). */
export type StoreFound = 'empty' | 'intact' | 'damaged';

export type StorageCounters = {
  /** fdatasyncs issued (log appends, superblock writes, checkpoint files). */
  readonly fsyncs: number;
  /** Log appends (one write and one fdatasync each) and the milliseconds they took in all: their mean latency. */
  readonly appends: number;
  readonly appendMs: number;
  readonly records: number;
  readonly entries: number;
  readonly bytes: number;
  readonly checkpoints: number;
  /** Failed disk operations (each retried). */
  readonly faults: number;
  readonly state: 'ok' | 'failing' | 'lost';
};

export type PersistedAnswer = { readonly type: 'persisted'; readonly generation: number; readonly op: number };

export type ReplicaStoreHooks = {
  /** Steps whose records are all durable, oldest first. */
  persisted(answers: readonly PersistedAnswer[]): void;
  /** A disk operation failed (it is retried); `first` once per episode. */
  fault(error: StorageError, first: boolean): void;
  /** The disk works again after a fault. */
  recovered(): void;
  /** The queue overflowed while the disk failed: reopen the store and restart the replica from it. */
  lost(): void;
};

export type ReplicaStoreOptions = {
  readonly fs?: FileSystem;
  readonly limits: TreeLimits;
  readonly segmentBytesMax?: number;
  /** Log bytes since the last checkpoint file before a new one is written (default 64 MiB). */
  readonly checkpointAfterBytes?: number;
  /** Bytes queued while the disk fails before the store gives up on the queue (default 256 MiB). */
  readonly queueBytesMax?: number;
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
};

export type StoreOpened = {
  readonly store: ReplicaStore;
  readonly found: StoreFound;
  /** Checkpoint and entries to reload, with the promise only when `found` is intact. */
  readonly stored: StoredState;
  /** What was repaired or distrusted, one line each, for the log. */
  readonly notes: readonly string[];
};

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const ENTRY = 1;
const TRUNCATE = 2;
const SUPERBLOCK_VERSION = 1;

function encodeEntry(entry: LogEntry): Uint8Array {
  return packr.pack([ENTRY, entry.op, entry.view, entry.requests]);
}

function encodeTruncate(op: number): Uint8Array {
  return packr.pack([TRUNCATE, op]);
}

export function encodePromise(promise: { readonly view: number; readonly lastNormalView: number } | null): Uint8Array {
  return packr.pack(promise === null ? [SUPERBLOCK_VERSION, null] : [SUPERBLOCK_VERSION, promise.view, promise.lastNormalView]);
}

type DecodedPromise = { readonly kind: 'promise'; readonly view: number; readonly lastNormalView: number } | { readonly kind: 'none' } | { readonly kind: 'bad'; readonly reason: string };

function decodePromise(payload: Uint8Array): DecodedPromise {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch {
    return { kind: 'bad', reason: 'superblock payload is not msgpack' };
  }
  if (!Array.isArray(value) || value[0] !== SUPERBLOCK_VERSION) return { kind: 'bad', reason: 'superblock payload has an unknown layout' };
  if (value.length === 2 && value[1] === null) return { kind: 'none' };
  const [, view, lastNormalView] = value as [unknown, unknown, unknown];
  if (value.length !== 3 || !isProtocolNumber(view) || !isProtocolNumber(lastNormalView) || lastNormalView > view) {
    return { kind: 'bad', reason: 'superblock promise is malformed' };
  }
  return { kind: 'promise', view, lastNormalView };
}

function isProtocolNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= 2 ** 48;
}

type DecodedRecord =
  | { readonly kind: 'entry'; readonly entry: LogEntry }
  | { readonly kind: 'skip' }
  | { readonly kind: 'truncate'; readonly op: number }
  | { readonly kind: 'bad'; readonly reason: string };

/**
 * Decodes one record. An entry at or below the checkpoint (`base`) is skipped unread; any other
 * is checked like a prepare's against its own op: whether that op is the one expected is
 * LiveOps's judgement (after a checkpoint's segment cut, the log may start with stale entries
 * that a later truncation record discards).
 */
function decodeRecord(payload: Uint8Array, base: number, limits: TreeLimits): DecodedRecord {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch {
    return { kind: 'bad', reason: 'record is not msgpack' };
  }
  if (!Array.isArray(value)) return { kind: 'bad', reason: 'record is not an array' };
  if (value[0] === TRUNCATE && value.length === 2 && isProtocolNumber(value[1])) return { kind: 'truncate', op: value[1] };
  if (value[0] !== ENTRY || value.length !== 4) return { kind: 'bad', reason: 'record of an unknown kind' };
  const entry = { op: value[1] as unknown, view: value[2] as unknown, requests: value[3] as unknown };
  if (!isProtocolNumber(entry.op) || entry.op === 0) return { kind: 'bad', reason: 'entry op is not a protocol number' };
  if (entry.op <= base) return { kind: 'skip' };
  const problem = validateStoredEntry(entry, entry.op, limits);
  return problem === null ? { kind: 'entry', entry: entry as LogEntry } : { kind: 'bad', reason: problem };
}

/**
 * The entries replay holds above the checkpoint, with the log sequence of each: where a new
 * checkpoint lets the log drop its segments.
 *
 * Segments are dropped whole, so after a checkpoint the log may start, before the first entry
 * still needed, with entries of a suffix that a later truncation record replaced (ops above the
 * checkpoint that do not follow it). Replay (`front` true) therefore lets a run of entries
 * start anywhere above the checkpoint until one starts right after it; such a "floating" run
 * must be cut by a truncation before the end (`floating()`), or the log lost entries. Once a
 * run follows the checkpoint, and always for records written by this store, every entry must
 * follow the one before.
 */
class LiveOps {
  base: number;
  readonly entries: LogEntry[] = [];
  readonly seqs: number[] = [];
  #front: boolean;

  constructor(base: number, replaying: boolean) {
    this.base = base;
    this.#front = replaying;
  }

  get lastOp(): number {
    return this.entries.at(-1)?.op ?? this.base;
  }

  /** Replay is over: from now on entries must follow the checkpoint and each other. */
  endReplay(): void {
    this.#front = false;
  }

  /** The log sequence of the first entry of a run that does not follow the checkpoint, or null. */
  floating(): number | null {
    const first = this.entries[0];
    return first !== undefined && first.op !== this.base + 1 ? (this.seqs[0] ?? null) : null;
  }

  /** False when the entry leaves a gap or overlaps without a truncation (storage is not what was written). */
  entry(entry: LogEntry, seq: number): boolean {
    if (entry.op <= this.base) return true;
    if (this.entries.length === 0) {
      if (entry.op === this.base + 1) this.#front = false;
      else if (!this.#front) return false;
    } else if (entry.op !== this.lastOp + 1) {
      return false;
    }
    this.entries.push(entry);
    this.seqs.push(seq);
    return true;
  }

  truncate(op: number): void {
    const first = this.entries[0]?.op ?? this.base + 1;
    const keep = Math.max(0, op - first + 1);
    if (keep < this.entries.length) {
      this.entries.length = keep;
      this.seqs.length = keep;
    }
  }

  /** A checkpoint at `op` is stored: entries up to it are no longer needed. Returns the first sequence still needed, or null (none). */
  moveBase(op: number): number | null {
    if (op <= this.base) return this.seqs[0] ?? null;
    const cut = Math.min(op - this.base, this.entries.length);
    this.entries.splice(0, cut);
    this.seqs.splice(0, cut);
    this.base = op;
    return this.seqs[0] ?? null;
  }
}

type Action =
  | { readonly t: 'append'; readonly payload: Uint8Array; readonly entry: LogEntry | null; readonly truncate: number | null }
  | { readonly t: 'install'; readonly image: CheckpointImage }
  /** A checkpoint the replica reached itself: once the records before it are durable, an image of it may be written. */
  | { readonly t: 'covered'; readonly op: number }
  | { readonly t: 'promise'; readonly view: number; readonly lastNormalView: number }
  | { readonly t: 'answer'; readonly generation: number; readonly op: number };

/** Thrown inside the write loop to abandon it after `lost`. */
class Abandoned extends Error {}

export class ReplicaStore {
  readonly dir: string;
  readonly #fs: FileSystem;
  readonly #log: RecordLog;
  readonly #superblock: Superblock;
  readonly #live: LiveOps;
  readonly #checkpointAfterBytes: number;
  readonly #queueBytesMax: number;
  readonly #retryFirstMs: number;
  readonly #retryMaxMs: number;
  #hooks: ReplicaStoreHooks | null = null;
  #queue: Action[] = [];
  #queuedBytes = 0;
  #running: Promise<void> | null = null;
  #closed = false;
  #lost = false;
  #failing = false;
  #retryTimer: { cancel(): void } | null = null;
  /** Bytes appended since the newest checkpoint file. */
  #bytesSinceCheckpoint = 0;
  #checkpointOp: number;
  /** An encoded image of a checkpoint the replica reached itself, waiting to be written. */
  #offered: CheckpointImage | null = null;
  /**
   * The newest checkpoint reached by the replica itself whose record, and so every record
   * before it, is durable: only an image up to it may be written. "The log holds its op" is not
   * enough: after a view change the log on disk can still hold the replaced entries at that op
   * while the truncation and the new entries wait in the queue.
   */
  #coveredOp: number;
  #fsyncs = 0;
  #appends = 0;
  #appendMs = 0;
  #records = 0;
  #entries = 0;
  #bytes = 0;
  #checkpoints = 0;
  #faults = 0;

  private constructor(dir: string, fs: FileSystem, log: RecordLog, superblock: Superblock, live: LiveOps, options: ReplicaStoreOptions) {
    this.dir = dir;
    this.#fs = fs;
    this.#log = log;
    this.#superblock = superblock;
    this.#live = live;
    this.#checkpointOp = live.base;
    this.#coveredOp = live.base;
    this.#checkpointAfterBytes = options.checkpointAfterBytes ?? 64 * 1024 * 1024;
    this.#queueBytesMax = options.queueBytesMax ?? 256 * 1024 * 1024;
    this.#retryFirstMs = options.retryFirstMs ?? 50;
    this.#retryMaxMs = options.retryMaxMs ?? 5_000;
  }

  /**
   * Claims the directory, reads everything back and repairs what must be repaired before the
   * replica starts: a torn tail is cut (record_log), damage is cut away after the last trusted
   * record, and a distrusted promise is overwritten with "none". Throws StorageRefusal for a
   * directory that is not this replica's, StorageError when the disk fails.
   */
  static async open(dir: string, identity: DirectoryIdentity, options: ReplicaStoreOptions): Promise<StoreOpened> {
    const fs = options.fs ?? nodeFileSystem;
    const claim = await claimDirectory(fs, dir, identity);
    if (claim.kind !== 'claimed') throw new StorageRefusal(claim.message, claim.path);
    const notes: string[] = [];
    const opened = await Superblock.open(fs, dir);
    if (opened.kind === 'newer_format') {
      throw new StorageRefusal(`${opened.path} has on-disk format ${opened.version}, newer than this haret's: upgrade haret to use this directory`, opened.path);
    }
    const superblock = opened.superblock;
    try {
      let promise: { view: number; lastNormalView: number } | null = null;
      let trusted = true;
      let superblockSaysSomething = false;
      /** Only one copy was ever written to, and it is unreadable: maybe the very first write, torn. */
      let onlyFirstWriteBad = false;
      let superblockNote = -1;
      switch (opened.found.kind) {
        case 'none':
          break;
        case 'damaged':
          trusted = false;
          superblockSaysSomething = true;
          onlyFirstWriteBad = opened.found.copies.filter((copy) => copy.status !== 'empty').length === 1;
          superblockNote = notes.length;
          notes.push(opened.found.reason);
          break;
        case 'valid': {
          superblockSaysSomething = true;
          const decoded = decodePromise(opened.found.payload);
          if (decoded.kind === 'promise') promise = { view: decoded.view, lastNormalView: decoded.lastNormalView };
          else if (decoded.kind === 'bad') {
            trusted = false;
            notes.push(`${opened.found.path}: ${decoded.reason}`);
          }
          // 'none': a replica whose storage was found damaged before and has not promised since.
          else trusted = false;
          break;
        }
        default:
          assertNever(opened.found, 'superblock read');
      }

      const checkpointRead = await readLatestCheckpoint(fs, dir);
      if (checkpointRead.kind === 'newer_format') {
        throw new StorageRefusal(`${checkpointRead.path} has on-disk format ${checkpointRead.version}, newer than this haret's: upgrade haret to use this directory`, checkpointRead.path);
      }
      // Checkpoint files are installed whole (tmp + rename), so an invalid one is damage: the
      // log segments it replaced may be gone, and an older checkpoint (or none) plus what is
      // left of the log can read as a clean but shorter history.
      if (checkpointRead.invalid.length > 0) trusted = false;
      for (const invalid of checkpointRead.invalid) notes.push(`${invalid.path}: ${invalid.reason} (skipped)`);
      let checkpoint: Machine | null = null;
      if (checkpointRead.kind === 'valid') {
        const decoded = decodeCheckpoint({ op: checkpointRead.op, snapshot: checkpointRead.payload });
        if (decoded.ok) checkpoint = decoded.machine;
        else {
          trusted = false;
          notes.push(`${checkpointRead.path}: ${decoded.reason}`);
        }
      }

      // The same file system as everything else: the seam must see the log's I/O too.
      const logOpened = await RecordLog.open(dir, { fs, ...(options.segmentBytesMax === undefined ? {} : { segmentBytesMax: options.segmentBytesMax }) });
      const live = new LiveOps(checkpoint?.appliedOp ?? 0, true);
      let lastGoodSeq = logOpened.log.nextSequence - logOpened.records.length - 1;
      let damagedAt: string | null = null;
      if (logOpened.state === 'torn_tail') notes.push(`${dir}: torn last record cut (a write that was never acknowledged)`);
      else if (typeof logOpened.state === 'object') {
        const d = logOpened.state.damaged;
        damagedAt = `${join(dir, d.segment)} at byte ${d.offset}: ${d.reason}`;
      }
      for (const record of logOpened.records) {
        const problem = replayRecord(live, record, options.limits);
        if (problem !== null) {
          damagedAt = `${dir} record ${record.seq}: ${problem}`;
          break;
        }
        lastGoodSeq = record.seq;
      }
      const floating = live.floating();
      if (floating !== null) {
        // Entries that do not follow the checkpoint and no truncation discarded: some are lost.
        damagedAt ??= `${dir} record ${floating}: entry ${live.entries[0]?.op ?? 0} does not follow checkpoint ${live.base}`;
        lastGoodSeq = Math.min(lastGoodSeq, floating - 1);
        live.truncate(live.base);
      }
      live.endReplay();
      if (damagedAt !== null) {
        trusted = false;
        notes.push(`log damaged: ${damagedAt}; only what precedes it is trusted`);
      }
      // A crash during the first promise's write (nothing follows a promise on disk before it is
      // durable) leaves one torn copy and nothing else: nothing was ever promised or stored, as
      // in an empty directory. (Were it a stored first promise damaged later, the replica still
      // recovers: an empty store starts fresh only on its node's first start.)
      if (onlyFirstWriteBad && checkpoint === null && checkpointRead.invalid.length === 0 && logOpened.records.length === 0 && damagedAt === null) {
        superblockSaysSomething = false;
        notes[superblockNote] = `${opened.found.path}: the first promise was never written whole (a crash during its write): treated as empty`;
      }
      const anything = superblockSaysSomething || checkpoint !== null || logOpened.records.length > 0 || checkpointRead.invalid.length > 0;
      let found: StoreFound;
      if (!anything) found = 'empty';
      else if (trusted && promise !== null) found = 'intact';
      else found = 'damaged';
      if (found === 'damaged') {
        // README rule 18: a replica whose storage lost something promises nothing until it has
        // recovered; say so on disk first, before the damage is cut away, so a crash during the
        // cut or the recovery cannot resume on a log that lost entries under the old promise.
        await superblock.write(encodePromise(null));
        promise = null;
      }
      if (damagedAt !== null) await logOpened.log.truncateAfter(lastGoodSeq);
      const store = new ReplicaStore(dir, fs, logOpened.log, superblock, live, options);
      const stored: StoredState = { checkpoint, entries: [...live.entries], ...(found === 'intact' && promise !== null ? { promise } : {}) };
      return { store, found, stored, notes };
    } catch (error) {
      await superblock.close().catch(() => undefined);
      if (error instanceof StorageRefusal) throw error;
      throw toStorageError(error, dir, 'opening the replica store in');
    }
  }

  /** Receives `persisted`, fault and recovery events; set once, before the first persist. */
  attach(hooks: ReplicaStoreHooks): void {
    this.#hooks = hooks;
  }

  /** One `persist` effect of the core, in effect order; `generation` and `op` are answered once its step is durable. */
  persist(record: PersistRecord, generation: number, op: number): void {
    if (this.#closed || this.#lost) return;
    // Several effects of one step carry the same answer; only the last needs it (the answer
    // after this record, in the same batch, is given once this record is durable too).
    const last = this.#queue.at(-1);
    if (last?.t === 'answer' && last.generation === generation && last.op <= op) this.#queue.pop();
    switch (record.kind) {
      case 'entries':
        for (const entry of record.entries) this.#push({ t: 'append', payload: encodeEntry(entry), entry, truncate: null });
        break;
      case 'truncate_after':
        this.#push({ t: 'append', payload: encodeTruncate(record.op), entry: null, truncate: record.op });
        break;
      case 'checkpoint':
        // Reached by applying our own log: the log holds its history once the records before
        // this one are durable, and an offered image may be written from then on (lazy). From a
        // peer: write it before any later record.
        if (record.image !== null) this.#push({ t: 'install', image: record.image });
        else this.#push({ t: 'covered', op: record.machine.appliedOp });
        break;
      case 'promise':
        this.#push({ t: 'promise', view: record.view, lastNormalView: record.lastNormalView });
        break;
      default:
        assertNever(record, 'persist record');
    }
    this.#queue.push({ t: 'answer', generation, op });
    this.#schedule();
  }

  /** An encoded image of the replica's current checkpoint: written when the log has grown enough. */
  offerImage(image: CheckpointImage): void {
    if (image.op <= this.#checkpointOp) return;
    this.#offered = image;
    if (this.#bytesSinceCheckpoint >= this.#checkpointAfterBytes) this.#schedule();
  }

  counters(): StorageCounters {
    return {
      fsyncs: this.#fsyncs,
      appends: this.#appends,
      appendMs: this.#appendMs,
      records: this.#records,
      entries: this.#entries,
      bytes: this.#bytes,
      checkpoints: this.#checkpoints,
      faults: this.#faults,
      state: this.#lost ? 'lost' : this.#failing ? 'failing' : 'ok',
    };
  }

  /** Stops taking records, waits for the write in progress (abandoning retries) and closes the files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#retryTimer?.cancel();
    if (this.#running !== null) await this.#running.catch(() => undefined);
    await this.#log.close().catch(() => undefined);
    await this.#superblock.close().catch(() => undefined);
  }

  #push(action: Action): void {
    this.#queue.push(action);
    if (action.t === 'append') this.#queuedBytes += action.payload.length;
    else if (action.t === 'install') this.#queuedBytes += action.image.snapshot.length;
    if (this.#failing && this.#queuedBytes > this.#queueBytesMax) this.#giveUp();
  }

  #giveUp(): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#retryTimer?.cancel();
    this.#hooks?.lost();
  }

  #schedule(): void {
    if (this.#running !== null || this.#closed || this.#lost) return;
    // Start after the current synchronous run of persist calls: a step's effects are issued one
    // after another and all carry the step's (generation, op), so they must share one batch.
    // Started at once, the first record would be a batch alone and its answer would report the
    // step's op durable while the step's entries are still queued (an early prepare_ok).
    this.#running = Promise.resolve().then(() => this.#run()).finally(() => {
      this.#running = null;
      if (this.#queue.length > 0 && !this.#closed && !this.#lost) this.#schedule();
    });
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0 || this.#wantsCheckpoint()) {
        const actions = this.#queue;
        this.#queue = [];
        this.#queuedBytes = 0;
        await this.#execute(actions);
        if (this.#wantsCheckpoint()) await this.#writeOfferedCheckpoint();
      }
    } catch (error) {
      if (!(error instanceof Abandoned)) throw error;
    }
  }

  /** Executes actions in order: appends grouped into one write + fdatasync, the rest one by one; answers once all before them are durable. */
  async #execute(actions: readonly Action[]): Promise<void> {
    const answers: PersistedAnswer[] = [];
    let batch: Extract<Action, { t: 'append' }>[] = [];
    const appendBatch = async (): Promise<void> => {
      if (batch.length === 0) return;
      const records = batch;
      batch = [];
      const payloads = records.map((r) => r.payload);
      const startedMs = performance.now();
      const range = await this.#retrying(() => this.#log.append(payloads));
      this.#appendMs += performance.now() - startedMs;
      this.#appends += 1;
      this.#fsyncs += 1;
      records.forEach((r, i) => {
        const seq = range.firstSeq + i;
        this.#records += 1;
        this.#bytes += r.payload.length;
        this.#bytesSinceCheckpoint += r.payload.length;
        if (r.entry !== null) {
          this.#entries += 1;
          // The core's contract: entries follow the log; a break is our bug.
          assert(this.#live.entry(r.entry, seq), `persisted entry ${r.entry.op} does not follow ${this.#live.lastOp}`);
        }
        if (r.truncate !== null) this.#live.truncate(r.truncate);
      });
    };
    for (const action of actions) {
      switch (action.t) {
        case 'append':
          batch.push(action);
          break;
        case 'install':
          await appendBatch();
          await this.#writeCheckpointFile(action.image);
          break;
        case 'promise': {
          await appendBatch();
          const payload = encodePromise({ view: action.view, lastNormalView: action.lastNormalView });
          await this.#retrying(() => this.#superblock.write(payload));
          this.#fsyncs += 1;
          break;
        }
        case 'covered':
          // Read only between batches (#wantsCheckpoint), when every record of this one is durable.
          this.#coveredOp = Math.max(this.#coveredOp, action.op);
          break;
        case 'answer':
          answers.push({ type: 'persisted', generation: action.generation, op: action.op });
          break;
        default:
          assertNever(action, 'store action');
      }
    }
    await appendBatch();
    if (answers.length > 0 && !this.#closed) this.#hooks?.persisted(answers);
  }

  #wantsCheckpoint(): boolean {
    const offered = this.#offered;
    return offered !== null && !this.#closed && this.#bytesSinceCheckpoint >= this.#checkpointAfterBytes && offered.op > this.#checkpointOp && offered.op <= this.#coveredOp && offered.op <= this.#live.lastOp;
  }

  async #writeOfferedCheckpoint(): Promise<void> {
    const image = this.#offered;
    if (image === null) return;
    this.#offered = null;
    await this.#writeCheckpointFile(image);
  }

  /** Writes a checkpoint file, then drops the log segments it makes unnecessary. */
  async #writeCheckpointFile(image: CheckpointImage): Promise<void> {
    await this.#retrying(() => writeCheckpoint(this.#fs, this.dir, image.op, image.snapshot));
    this.#fsyncs += 1;
    this.#checkpoints += 1;
    this.#checkpointOp = image.op;
    this.#bytesSinceCheckpoint = 0;
    const needed = this.#live.moveBase(image.op) ?? this.#log.nextSequence;
    // Losing a drop only costs disk space until the next checkpoint: not worth a retry loop.
    await this.#log.dropBefore(needed).catch((error: unknown) => this.#hooks?.fault(toStorageError(error, this.dir, 'dropping segments in'), false));
  }

  /** Runs a disk operation until it succeeds, with backoff; abandons when the store is closed or gave up. */
  async #retrying<T>(operation: () => Promise<T>): Promise<T> {
    let delay = this.#retryFirstMs;
    for (;;) {
      if (this.#closed || this.#lost) throw new Abandoned();
      try {
        const result = await operation();
        if (this.#failing) {
          this.#failing = false;
          this.#hooks?.recovered();
        }
        return result;
      } catch (error) {
        const e = toStorageError(error, this.dir, 'writing in');
        this.#faults += 1;
        const first = !this.#failing;
        this.#failing = true;
        this.#hooks?.fault(e, first);
        if (this.#queuedBytes > this.#queueBytesMax) this.#giveUp();
        // Given up or closed (also while the operation ran): no backoff to sit out first.
        if (this.#closed || this.#lost) throw new Abandoned();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#retryTimer = {
            cancel: () => {
              clearTimeout(timer);
              resolve();
            },
          };
        });
        this.#retryTimer = null;
        delay = Math.min(delay * 2, this.#retryMaxMs);
      }
    }
  }
}

/** Replays one log record onto `live`; a reason when storage is not what was written. */
function replayRecord(live: LiveOps, record: LogRecord, limits: TreeLimits): string | null {
  const decoded = decodeRecord(record.payload, live.base, limits);
  switch (decoded.kind) {
    case 'bad':
      return decoded.reason;
    case 'skip':
      return null;
    case 'truncate':
      live.truncate(decoded.op);
      return null;
    case 'entry':
      return live.entry(decoded.entry, record.seq) ? null : `entry ${decoded.entry.op} does not follow ${live.lastOp}`;
    default:
      return assertNever(decoded, 'stored record');
  }
}

export { StorageError };
