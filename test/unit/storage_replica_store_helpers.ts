/**
 * Shared fixtures of the replica store tests (storage_replica_store*.test.ts): real log entries
 * and checkpoint machines built with the core's own code, a harness that records the store's
 * hooks, and the comparison of what a store read back with what SimStore (the simulator's model
 * of the persist contract) holds.
 */

import { Packr } from 'msgpackr';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultTreeLimits } from '../../src/base/limits.ts';
import { encodeCheckpoint } from '../../src/vr/checkpoint.ts';
import type { PersistRecord, StoredState } from '../../src/vr/io.ts';
import type { CheckpointImage, LogEntry, Request } from '../../src/vr/messages.ts';
import { applyEntry, defaultSessionPolicy, emptyMachine, type Machine } from '../../src/vr/state_machine.ts';
import { SimStore } from '../sim/storage.ts';
import { useTempDirs } from './temp_dirs.ts';
import { nodeFileSystem, type FileSystem, type StorageError } from '../../actors/storage/fs.ts';
import { RECORD_HEADER_BYTES } from '../../actors/storage/record_format.ts';
import { readSuperblock } from '../../actors/storage/superblock.ts';
import { ReplicaStore, type PersistedAnswer, type ReplicaStoreOptions, type StoreOpened } from '../../actors/storage/replica_store.ts';

export const limits = defaultTreeLimits;
export const identity = { node: 'n1', namespace: 'ns', replica: 0 } as const;

const clients = ['alice', 'bob', 'carol'];

function valueOf(op: number, view: number, size: number): Uint8Array {
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = (op * 31 + view * 17 + i * 7) & 0xff;
  return value;
}

/**
 * A real entry: the client's (idempotent) registration and a blob_put, so applying it changes
 * the tree and the client table. Paths cycle over a few names so the tree (and a checkpoint of
 * it) stays small however many entries are applied. `view` also salts the value, so an entry
 * of another view at the same op is a different entry.
 */
export function entry(op: number, view: number, valueBytes = 24): LogEntry {
  const clientId = clients[op % clients.length] ?? 'alice';
  const register: Request = { type: 'request', clientId, requestNum: 0, op: { type: 'register' } };
  const put: Request = {
    type: 'request',
    clientId,
    requestNum: op,
    op: { type: 'tree', op: { type: 'blob_put', path: `/k${op % 5}`, value: valueOf(op, view, valueBytes) } },
  };
  return { op, view, requests: [register, put] };
}

/** Entries from..to inclusive. */
export function entries(from: number, to: number, view: number, valueBytes = 24): LogEntry[] {
  const out: LogEntry[] = [];
  for (let op = from; op <= to; op++) out.push(entry(op, view, valueBytes));
  return out;
}

/** The machine after applying `list` (in order) to `base`. */
export function applyAll(base: Machine, list: readonly LogEntry[]): Machine {
  let machine = base;
  for (const e of list) machine = applyEntry(machine, e, defaultSessionPolicy, []);
  return machine;
}

/** The machine after applying entries 1..op of `view` to an empty machine. */
export function machineAt(op: number, view: number): Machine {
  return applyAll(emptyMachine(), entries(1, op, view));
}

export function image(machine: Machine): CheckpointImage {
  return encodeCheckpoint(machine);
}

export const promise = (view: number, lastNormalView: number): PersistRecord => ({ kind: 'promise', view, lastNormalView });
export const append = (list: readonly LogEntry[]): PersistRecord => ({ kind: 'entries', entries: list });
export const truncateAfter = (op: number): PersistRecord => ({ kind: 'truncate_after', op });
export const lazyCheckpoint = (machine: Machine): PersistRecord => ({ kind: 'checkpoint', machine, image: null });
export const installCheckpoint = (machine: Machine): PersistRecord => ({ kind: 'checkpoint', machine, image: encodeCheckpoint(machine) });

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** Canonical bytes of entries (a Buffer read back and a Uint8Array written encode the same). */
export function entryBytes(list: readonly LogEntry[]): string {
  return Buffer.from(packr.pack(list)).toString('hex');
}

function machineBytes(machine: Machine | null): string {
  return machine === null ? 'none' : Buffer.from(encodeCheckpoint(machine).snapshot).toString('hex');
}

/**
 * Null when `a` and `b` hold the same replica state, else why not. The store writes a lazy
 * checkpoint later than SimStore applies it, so a state with an older checkpoint is the same
 * when its entries up to the newer checkpoint rebuild exactly that checkpoint's machine and the
 * entries above it are equal. The promise must be equal (absent in both, or the same).
 */
export function sameState(a: StoredState, b: StoredState): string | null {
  const promiseText = (s: StoredState): string => (s.promise === undefined ? 'none' : `${s.promise.view}/${s.promise.lastNormalView}`);
  if (promiseText(a) !== promiseText(b)) return `promise ${promiseText(a)} vs ${promiseText(b)}`;
  const opOf = (s: StoredState): number => s.checkpoint?.appliedOp ?? 0;
  const [lo, hi] = opOf(a) <= opOf(b) ? [a, b] : [b, a];
  const cut = opOf(hi);
  const below = lo.entries.filter((e) => e.op <= cut);
  const above = lo.entries.filter((e) => e.op > cut);
  if (opOf(lo) !== cut) {
    const expected = Array.from({ length: cut - opOf(lo) }, (_, i) => opOf(lo) + 1 + i);
    if (below.map((e) => e.op).join(',') !== expected.join(',')) return `entries ${below.map((e) => e.op).join(',')} do not lead from checkpoint ${opOf(lo)} to ${cut}`;
    if (machineBytes(applyAll(lo.checkpoint ?? emptyMachine(), below)) !== machineBytes(hi.checkpoint)) return `entries up to ${cut} do not rebuild checkpoint ${cut}`;
  } else if (machineBytes(lo.checkpoint) !== machineBytes(hi.checkpoint)) {
    return `different checkpoints at ${cut}`;
  }
  if (entryBytes(above) !== entryBytes(hi.entries)) {
    return `entries above ${cut}: [${above.map((e) => `${e.op}v${e.view}`).join(' ')}] vs [${hi.entries.map((e) => `${e.op}v${e.view}`).join(' ')}]`;
  }
  return null;
}

export type HookLog = {
  readonly answers: PersistedAnswer[];
  readonly faults: { readonly error: StorageError; readonly first: boolean }[];
  recovered: number;
  lost: number;
  /** Every hook call in order, for checking the episode pattern. */
  readonly events: string[];
};

/** A store with its hooks recorded; `persist` numbers each call's generation 1, 2, 3, ... */
export class Harness {
  readonly opened: StoreOpened;
  readonly store: ReplicaStore;
  readonly hooks: HookLog = { answers: [], faults: [], recovered: 0, lost: 0, events: [] };
  issued = 0;
  /** Called after each `persisted` hook (a test's check of the moment answers leave). */
  onPersisted: () => void = () => undefined;

  constructor(opened: StoreOpened) {
    this.opened = opened;
    this.store = opened.store;
    this.store.attach({
      persisted: (answers) => {
        this.hooks.answers.push(...answers);
        this.hooks.events.push(`persisted ${answers.map((a) => a.generation).join(',')}`);
        this.onPersisted();
      },
      fault: (error, first) => {
        this.hooks.faults.push({ error, first });
        this.hooks.events.push(`fault ${error.code} ${first}`);
      },
      recovered: () => {
        this.hooks.recovered += 1;
        this.hooks.events.push('recovered');
      },
      lost: () => {
        this.hooks.lost += 1;
        this.hooks.events.push('lost');
      },
    });
  }

  static async open(dir: string, options: Partial<ReplicaStoreOptions> & { fs?: FileSystem } = {}): Promise<Harness> {
    return new Harness(await ReplicaStore.open(dir, identity, { limits, ...options }));
  }

  /** Issues one record; returns its generation (the call's number). */
  persist(record: PersistRecord, op = 0): number {
    this.issued += 1;
    this.store.persist(record, this.issued, op);
    return this.issued;
  }

  /** Generations answered so far, in the order answered. */
  get answered(): number[] {
    return this.hooks.answers.map((a) => a.generation);
  }

  /** Resolves once every call issued so far is answered. */
  async settle(timeoutMs = 10_000): Promise<void> {
    const target = this.issued;
    await waitFor(() => this.answered.includes(target), timeoutMs, `answer to persist #${target}`);
  }
}

/** Polls `condition` until true; rejects after `timeoutMs` naming what it waited for. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const isLog = (path: string): boolean => /log-\d{20}\.seg$/.test(path);

export async function diskBytes(dir: string, pattern: RegExp): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    // A temporary file may vanish between the listing and the stat (renamed into place).
    if (pattern.test(name)) total += (await stat(join(dir, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** Byte offsets of the records of one segment file, in order. */
export function recordOffsets(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let pos = 0; pos + RECORD_HEADER_BYTES <= bytes.length; pos += RECORD_HEADER_BYTES + view.getUint32(pos)) out.push(pos);
  return out;
}

export async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => isLog(n)).sort();
}

/** What the superblock on disk says: 'none', 'view/lastNormalView', or its read kind. */
export async function superblockSays(dir: string): Promise<string> {
  const read = await readSuperblock(nodeFileSystem, dir);
  if (read.kind !== 'valid') return read.kind;
  const value = packr.unpack(read.payload) as unknown[];
  return value[1] === null ? 'none' : `${String(value[1])}/${String(value[2])}`;
}

/**
 * Index p (records[0..p) applied) of a SimStore prefix equal to what was read back, at least
 * `from`; or null. The store writes each entry of an `entries` record as a log record of its
 * own, so a crash can keep the first entries of an unanswered record and not the rest: that is
 * the same as SimStore given those entries alone, so between records p and p + 1 each entry is
 * a prefix too (still never one that leaves out an answered record).
 */
export function matchingPrefix(records: readonly PersistRecord[], from: number, opened: Harness['opened']): number | null {
  const sim = new SimStore();
  const fits = (p: number): boolean => {
    const hasPromise = sim.promise !== null;
    const kindFits = opened.found === 'intact' ? hasPromise : opened.found === 'empty' ? p === 0 : false;
    return kindFits && sameState(opened.stored, sim.stored()) === null;
  };
  for (let p = 0; p <= records.length; p++) {
    if (p > 0) {
      const record = records[p - 1] as PersistRecord;
      if (record.kind === 'entries' && p > from) {
        // Part of an unanswered record: all but its last entry (all of it is the next check).
        for (const e of record.entries.slice(0, -1)) {
          sim.apply({ kind: 'entries', entries: [e] });
          if (fits(p)) return p - 1;
        }
        sim.apply({ kind: 'entries', entries: record.entries.slice(-1) });
      } else {
        sim.apply(record);
      }
    }
    if (p < from) continue;
    if (fits(p)) return p;
  }
  return null;
}

/** A store with promise (1,1) and entries 1..10, one record each, closed. */
export async function tenEntries(dir: string): Promise<void> {
  const h = await Harness.open(dir);
  h.persist(promise(1, 1));
  for (let op = 1; op <= 10; op++) h.persist(append(entries(op, op, 1)));
  await h.settle();
  await h.store.close();
}

/** Flips a bit in the payload of record `index` (0-based) of the first segment. */
export async function flipInRecord(dir: string, index: number): Promise<void> {
  const [name] = await segments(dir);
  const path = join(dir, name ?? '');
  const bytes = new Uint8Array(await readFile(path));
  const offset = recordOffsets(bytes)[index];
  if (offset === undefined) throw new Error(`no record ${index}`);
  const at = offset + RECORD_HEADER_BYTES + 3;
  bytes[at] = (bytes[at] ?? 0) ^ 0x40;
  await writeFile(path, bytes);
}

/**
 * A test file's stores: fresh directories under one temporary root (removed after the file),
 * and `open`, whose stores are closed after each test even when it fails (no descriptor leaks).
 * Call at the top level of a test file: it registers that file's hooks.
 */
export function useStores(prefix: string): { freshDir: () => string; open: (dir: string, options?: Parameters<typeof Harness.open>[1]) => Promise<Harness> } {
  const { freshDir } = useTempDirs(prefix);
  const openStores: ReplicaStore[] = [];
  afterEach(async () => {
    for (const store of openStores.splice(0)) await store.close();
  });
  return {
    freshDir,
    open: async (dir, options = {}) => {
      const harness = await Harness.open(dir, options);
      openStores.push(harness.store);
      return harness;
    },
  };
}
