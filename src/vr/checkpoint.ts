/**
 * Checkpoint images (VRR §5.1): a machine (tree + client table + applied op) as checksummed
 * bytes, for state transfer and recovery. The tree part is the tree's own canonical snapshot;
 * the client table is encoded in its LRU order (least recently active first), which every
 * replica applying the same log agrees on: equal machines give equal bytes, and a decoded table
 * has the same order, so it expires the same sessions next (src/vr/client_table.ts).
 */

import CRC32 from 'crc-32';
import { Packr } from 'msgpackr';
import { protocolNumberMax } from '../base/limits.ts';
import { decodeSnapshot, packSnapshot, snapshotTerms, type SnapshotTerms } from '../tree/snapshot.ts';
import { clientTableFromOrdered, type ClientRecord } from './client_table.ts';
import type { CheckpointImage } from './messages.ts';
import { Machine } from './state_machine.ts';
import { leaseTableFromTerms, leaseTerms, type LeaseTerms } from '../tree/leases.ts';

/** The image's packer; src/vr/checkpoint_writer.ts packs with it too, so its bytes are these. */
export const checkpointPackr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const packr = checkpointPackr;

export function encodeCheckpoint(machine: Machine): CheckpointImage {
  return packCheckpoint(checkpointTerms(machine));
}

/**
 * A checkpoint as plain data (the walk of the persistent structures); `packCheckpoint` does the
 * rest (msgpack, CRC-32): `packCheckpoint(checkpointTerms(m))` is `encodeCheckpoint(m)`, the
 * reference the sliced writer (./checkpoint_writer.ts) is byte-identical to.
 */
export type CheckpointTerms = {
  readonly appliedOp: number;
  readonly tree: SnapshotTerms;
  /** Least recently active first (the table's order). */
  readonly clients: readonly (readonly [string, ClientRecord])[];
  /** The lease table (src/tree/leases.ts), in id order. */
  readonly leases: LeaseTerms;
};

export function checkpointTerms(machine: Machine): CheckpointTerms {
  const clients = machine.clients.orderedRecords();
  return { appliedOp: machine.appliedOp, tree: snapshotTerms(machine.tree), clients, leases: leaseTerms(machine.leases) };
}

export function packCheckpoint(terms: CheckpointTerms): CheckpointImage {
  const body = packr.pack([terms.appliedOp, packSnapshot(terms.tree), terms.clients, terms.leases]);
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
  // Three parts: an image written before leases existed (no lease table); four: with one.
  if (!Array.isArray(decoded) || (decoded.length !== 3 && decoded.length !== 4)) return { ok: false, reason: 'checkpoint malformed' };
  const [appliedOp, treeBytes, clients, leaseValue] = decoded as [unknown, unknown, unknown, unknown];
  if (appliedOp !== image.op) return { ok: false, reason: 'checkpoint op does not match its image' };
  // An image read back from disk has not passed the gate: its op is bounded here too.
  if (typeof appliedOp !== 'number' || !Number.isSafeInteger(appliedOp) || appliedOp < 0 || appliedOp > protocolNumberMax) {
    return { ok: false, reason: 'checkpoint op is not a protocol number (0..2^48)' };
  }
  if (!(treeBytes instanceof Uint8Array) || !Array.isArray(clients)) return { ok: false, reason: 'checkpoint malformed' };
  const tree = decodeSnapshot(treeBytes);
  if (!tree.ok) return { ok: false, reason: tree.reason };
  const ordered: (readonly [string, ClientRecord])[] = [];
  for (let i = 0; i < clients.length; i++) {
    const pair: unknown = clients[i];
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') return { ok: false, reason: `checkpoint client table malformed at position ${i}` };
    const problem = clientRecordProblem(pair[1], image.op);
    if (problem !== null) return { ok: false, reason: `checkpoint client ${JSON.stringify(pair[0].slice(0, 40))}: ${problem}` };
    ordered.push([pair[0], normalise(pair[1] as ClientRecord)]);
  }
  // O(n): rebuilds the links, refusing a duplicate id or an order that is not by last activity.
  const table = clientTableFromOrdered(ordered);
  if (!table.ok) return { ok: false, reason: `checkpoint ${table.reason}` };
  if (leaseValue === undefined) return { ok: true, machine: new Machine(tree.tree, table.table, image.op) };
  const leases = leaseTableFromTerms(leaseValue, image.op);
  if (!leases.ok) return { ok: false, reason: `checkpoint ${leases.reason}` };
  return { ok: true, machine: new Machine(tree.tree, table.table, image.op, leases.table) };
}

/** Null when `value` is a record the state machine could have written by `appliedOp`, else why not. */
function clientRecordProblem(value: unknown, appliedOp: number): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'record is not an object';
  const record = value as Record<string, unknown>;
  for (const name of ['requestNum', 'replyOp', 'lastActiveOp']) {
    const field = record[name];
    if (typeof field !== 'number' || !Number.isSafeInteger(field) || field < 0) return `${name} must be a non-negative integer`;
    // README rule 17: a request number the gate would refuse is not a state either.
    if (field > protocolNumberMax) return `${name} is beyond the protocol maximum 2^48`;
  }
  if ((record['replyOp'] as number) > (record['lastActiveOp'] as number)) return 'replyOp beyond lastActiveOp';
  if ((record['lastActiveOp'] as number) > appliedOp) return 'lastActiveOp beyond the checkpoint op';
  const reply = record['reply'];
  if (reply === null) return null;
  // Only a write's reply is kept, and only a tree request has one (request number 0 is register).
  if (record['requestNum'] === 0) return 'a registration with a reply';
  if (typeof reply !== 'object' || Array.isArray(reply)) return 'reply must be an object or null';
  const body = reply as Record<string, unknown>;
  if (body['type'] !== 'tree' || typeof body['outcome'] !== 'object' || body['outcome'] === null) return 'reply must be a tree reply';
  return null;
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
