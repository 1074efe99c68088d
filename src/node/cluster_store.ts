/**
 * What a node keeps in its data directory: the cluster it belongs to (members and their
 * addresses) and the namespaces placed across it. Not the replicas' logs: haret replicates
 * in memory as VR Revisited does (§4.3), and a restarted replica rebuilds its state from the
 * others through recovery. The record is what tells a restarted node that it HAD replicas
 * (so they start recovering rather than fresh, which would be unsafe) and whom to dial.
 *
 * Written whole to a temporary file and renamed over the old one, so a crash mid-write leaves
 * the previous record. A record that does not parse is an error at start-up, naming the file:
 * a node must not silently forget that it held replicas.
 */

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { at, FieldReader, type Fields } from '../base/fields.ts';

export type ClusterMember = {
  readonly name: string;
  /** host:port of its cluster links. */
  readonly clusterAddress: string;
  /** host:port of its client API, or null when it serves none. */
  readonly clientAddress: string | null;
  readonly adminAddress: string | null;
  /**
   * Bumped by the node each time it starts: its addresses may change across restarts, and
   * the newest record must win everywhere (an old one gossiped back must not replace it).
   */
  readonly incarnation: number;
};

export type ClusterNamespace = {
  readonly name: string;
  /** The node hosting replica i, for each replica index i. */
  readonly nodes: readonly string[];
};

export type ClusterRecord = {
  readonly version: 1;
  readonly self: string;
  readonly members: readonly ClusterMember[];
  readonly namespaces: readonly ClusterNamespace[];
};

export const recordFileName = 'cluster.json';

/** Members of a cluster, and namespaces placed across it (each local replica is a worker). */
export const membersMax = 64;
export const clusterNamespacesMax = 64;
/** Replicas a namespace may have: an odd number from 1 to 9 (2f+1). */
export const replicaCountMax = 9;
/**
 * Replicas of cluster namespaces one node hosts at most (each is a worker of ~34 MiB: ~2 GiB
 * at the cap). 64 namespaces of 3 replicas spread over 3 or more members stay under it; a
 * peer's namespace past it is refused (src/node/cluster.ts), so no member, forged or buggy,
 * can make a node start the 64 x 9 workers the other caps alone would allow.
 */
export const localReplicasMax = 64;

const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const nameLengthMax = 64;
const addressLengthMax = 1024;

export function isNodeName(value: unknown): value is string {
  return typeof value === 'string' && namePattern.test(value);
}

/** A refusal by one of the readers below; each entry point turns it into its own answer. */
class RecordError extends Error {}

const reader = new FieldReader((message) => {
  throw new RecordError(message);
});

/** A node or namespace name: length first, then the pattern. */
function readName(value: unknown, label: string): string {
  const name = reader.stringValue(value, label, 1, nameLengthMax);
  if (!namePattern.test(name)) return reader.fail(`${label} must be letters, digits, '_', '.', '-' (not starting with one of the last three)`);
  return name;
}

/** host:port as the links and servers report it: no whitespace, at most 1024 characters. */
function readAddress(value: unknown, label: string): string {
  const address = reader.stringValue(value, label, 1, addressLengthMax);
  if (/\s/.test(address)) return reader.fail(`${label} must not contain whitespace`);
  return address;
}

function readAddressOrNull(fields: Fields, key: string, label: string): string | null {
  const value = reader.optional(fields, key) ?? null;
  return value === null ? null : readAddress(value, at(label, key));
}

function readMember(value: unknown, label: string): ClusterMember {
  const fields = reader.record(value, label);
  const incarnation = reader.optional(fields, 'incarnation');
  return {
    name: readName(reader.required(fields, 'name', label), at(label, 'name')),
    clusterAddress: readAddress(reader.required(fields, 'clusterAddress', label), at(label, 'clusterAddress')),
    clientAddress: readAddressOrNull(fields, 'clientAddress', label),
    adminAddress: readAddressOrNull(fields, 'adminAddress', label),
    incarnation: incarnation === undefined ? 0 : reader.counterValue(incarnation, at(label, 'incarnation')),
  };
}

function readNamespace(value: unknown, label: string): ClusterNamespace {
  const fields = reader.record(value, label);
  const name = readName(reader.required(fields, 'name', label), at(label, 'name'));
  // Records and peers from before the rename call the node list `placement`.
  const key = Object.hasOwn(fields, 'nodes') || !Object.hasOwn(fields, 'placement') ? 'nodes' : 'placement';
  const list = reader.array(fields, key, label, replicaCountMax);
  if (list.length === 0 || list.length % 2 === 0) return reader.fail(`${at(label, key)} must list an odd number of nodes from 1 to ${replicaCountMax}`);
  return { name, nodes: list.map((node, index) => readName(node, `${at(label, key)}[${index}]`)) };
}

function readRecord(value: unknown): ClusterRecord {
  const fields = reader.record(value, 'the record');
  reader.integer(fields, 'version', '', 1, 1);
  const self = readName(reader.required(fields, 'self', ''), 'self');
  const members = reader.array(fields, 'members', '', membersMax).map((member, index) => readMember(member, `members[${index}]`));
  const namespaces = reader.array(fields, 'namespaces', '', clusterNamespacesMax).map((namespace, index) => readNamespace(namespace, `namespaces[${index}]`));
  return { version: 1, self, members, namespaces };
}

/** Runs a reader; a refusal becomes null (peers' messages are counted and dropped). */
function orNull<T>(read: () => T): T | null {
  try {
    return read();
  } catch (error) {
    if (error instanceof RecordError) return null;
    throw error;
  }
}

/** A member from untrusted data (a file, a peer), or null. */
export function parseMember(value: unknown): ClusterMember | null {
  return orNull(() => readMember(value, 'member'));
}

/** A namespace from untrusted data (its node list under `nodes`, or the older `placement`), or null. */
export function parseNamespace(value: unknown): ClusterNamespace | null {
  return orNull(() => readNamespace(value, 'namespace'));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads the record, null when there is none yet; throws an Error naming the file (and the field) when it is unreadable. */
export function loadRecord(dataDir: string): ClusterRecord | null {
  const file = join(dataDir, recordFileName);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${messageOf(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not JSON: ${messageOf(error)}`);
  }
  try {
    return readRecord(value);
  } catch (error) {
    if (error instanceof RecordError) throw new Error(`${file} is not a haret cluster record (version 1): ${error.message}`);
    throw error;
  }
}

/** Replaces the record atomically (write, then rename). */
export function saveRecord(dataDir: string, record: ClusterRecord): void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, recordFileName);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(temporary, file);
}
