/**
 * Checkpoint images (VRR §5.1): a machine (tree + client table + applied op) as checksummed
 * bytes, for state transfer and recovery. The tree part is the tree's own canonical snapshot;
 * the client table is encoded sorted by client id, so equal machines give equal bytes.
 */

import CRC32 from 'crc-32';
import { Map as ImmutableMap } from 'immutable';
import { Packr } from 'msgpackr';
import { decodeSnapshot, packSnapshot, snapshotTerms, type SnapshotTerms } from '../tree/snapshot.ts';
import type { ClientRecord } from './client_table.ts';
import type { CheckpointImage } from './messages.ts';
import { Machine } from './state_machine.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

export function encodeCheckpoint(machine: Machine): CheckpointImage {
  return packCheckpoint(checkpointTerms(machine));
}

/**
 * A checkpoint as plain data, the part of encoding that must run on the replica's thread (it
 * walks the persistent structures). `packCheckpoint` does the rest (msgpack, CRC-32) anywhere,
 * e.g. on a piscina thread: `packCheckpoint(checkpointTerms(m))` equals `encodeCheckpoint(m)`.
 */
export type CheckpointTerms = {
  readonly appliedOp: number;
  readonly tree: SnapshotTerms;
  readonly clients: readonly (readonly [string, ClientRecord])[];
};

export function checkpointTerms(machine: Machine): CheckpointTerms {
  const clients = Array.from(machine.clients.entries()).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { appliedOp: machine.appliedOp, tree: snapshotTerms(machine.tree), clients };
}

export function packCheckpoint(terms: CheckpointTerms): CheckpointImage {
  const body = packr.pack([terms.appliedOp, packSnapshot(terms.tree), terms.clients]);
  const snapshot = new Uint8Array(4 + body.length);
  new DataView(snapshot.buffer).setUint32(0, CRC32.buf(body) >>> 0);
  snapshot.set(body, 4);
  return { op: terms.appliedOp, snapshot };
}

export type CheckpointDecodeResult = { readonly ok: true; readonly machine: Machine } | { readonly ok: false; readonly reason: string };

export function decodeCheckpoint(image: CheckpointImage): CheckpointDecodeResult {
  const bytes = image.snapshot;
  if (!(bytes instanceof Uint8Array) || bytes.length < 4) return { ok: false, reason: 'checkpoint truncated' };
  const body = bytes.subarray(4);
  if (CRC32.buf(body) >>> 0 !== new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)) {
    return { ok: false, reason: 'checkpoint checksum mismatch' };
  }
  let decoded: unknown;
  try {
    decoded = packr.unpack(body);
  } catch (error) {
    return { ok: false, reason: `checkpoint is not msgpack: ${String(error)}` };
  }
  if (!Array.isArray(decoded) || decoded.length !== 3) return { ok: false, reason: 'checkpoint malformed' };
  const [appliedOp, treeBytes, clients] = decoded as [unknown, unknown, unknown];
  if (appliedOp !== image.op) return { ok: false, reason: 'checkpoint op does not match its image' };
  if (!(treeBytes instanceof Uint8Array) || !Array.isArray(clients)) return { ok: false, reason: 'checkpoint malformed' };
  const tree = decodeSnapshot(treeBytes);
  if (!tree.ok) return { ok: false, reason: tree.reason };
  const table = ImmutableMap<string, ClientRecord>().withMutations((map) => {
    for (const pair of clients as unknown[]) {
      if (Array.isArray(pair) && typeof pair[0] === 'string' && isClientRecord(pair[1])) map.set(pair[0], normalise(pair[1]));
    }
  });
  if (table.size !== clients.length) return { ok: false, reason: 'checkpoint client table malformed' };
  return { ok: true, machine: new Machine(tree.tree, table, image.op) };
}

function isClientRecord(value: unknown): value is ClientRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record['requestNum'] === 'number' &&
    typeof record['replyOp'] === 'number' &&
    typeof record['lastActiveOp'] === 'number' &&
    (record['reply'] === null || typeof record['reply'] === 'object')
  );
}

/** msgpack returns Buffers for bytes; results handed to clients are plain Uint8Arrays. */
function normalise(record: ClientRecord): ClientRecord {
  return { requestNum: record.requestNum, reply: record.reply === null ? null : plainBytes(record.reply), replyOp: record.replyOp, lastActiveOp: record.lastActiveOp };
}

function plainBytes<T>(value: T): T {
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (Array.isArray(value)) return value.map(plainBytes) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[key] = plainBytes(inner);
    return out as T;
  }
  return value;
}
