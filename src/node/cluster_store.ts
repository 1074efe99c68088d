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
  readonly placement: readonly string[];
};

export type ClusterRecord = {
  readonly version: 1;
  readonly self: string;
  readonly members: readonly ClusterMember[];
  readonly namespaces: readonly ClusterNamespace[];
};

export const recordFileName = 'cluster.json';

const nodeNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const namespaceNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const addressPattern = /^[^\s]{1,1024}$/;

export function isNodeName(value: unknown): value is string {
  return typeof value === 'string' && nodeNamePattern.test(value);
}

function isAddressOrNull(value: unknown): value is string | null {
  return value === null || (typeof value === 'string' && addressPattern.test(value));
}

/** A member from untrusted data (a file, a peer), or null. */
export function parseMember(value: unknown): ClusterMember | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!isNodeName(v['name']) || typeof v['clusterAddress'] !== 'string' || !addressPattern.test(v['clusterAddress'])) return null;
  const clientAddress = v['clientAddress'] ?? null;
  const adminAddress = v['adminAddress'] ?? null;
  const incarnation = v['incarnation'] ?? 0;
  if (!isAddressOrNull(clientAddress) || !isAddressOrNull(adminAddress)) return null;
  if (typeof incarnation !== 'number' || !Number.isSafeInteger(incarnation) || incarnation < 0) return null;
  return { name: v['name'], clusterAddress: v['clusterAddress'], clientAddress, adminAddress, incarnation };
}

/** Replicas a namespace may have: an odd number from 1 to 9 (2f+1). */
export const replicaCountMax = 9;

/** A namespace from untrusted data, or null. */
export function parseNamespace(value: unknown): ClusterNamespace | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const placement = v['placement'];
  if (typeof v['name'] !== 'string' || !namespaceNamePattern.test(v['name'])) return null;
  if (!Array.isArray(placement) || placement.length < 1 || placement.length > replicaCountMax || placement.length % 2 === 0) return null;
  if (!placement.every((node) => isNodeName(node))) return null;
  return { name: v['name'], placement: placement as string[] };
}

/** Reads the record, null when there is none yet; throws an Error naming the file when it is unreadable. */
export function loadRecord(dataDir: string): ClusterRecord | null {
  const file = join(dataDir, recordFileName);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`);
  }
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const members = Array.isArray(v['members']) ? v['members'].map(parseMember) : null;
  const namespaces = Array.isArray(v['namespaces']) ? v['namespaces'].map(parseNamespace) : null;
  if (v['version'] !== 1 || !isNodeName(v['self']) || members === null || namespaces === null || members.includes(null) || namespaces.includes(null)) {
    throw new Error(`${file} is not a haret cluster record (version 1)`);
  }
  return { version: 1, self: v['self'], members: members as ClusterMember[], namespaces: namespaces as ClusterNamespace[] };
}

/** Replaces the record atomically (write, then rename). */
export function saveRecord(dataDir: string, record: ClusterRecord): void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, recordFileName);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(temporary, file);
}
