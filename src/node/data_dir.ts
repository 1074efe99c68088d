/**
 * The node's data directory (issue 13): a marker naming the node, written at its first start,
 * tells a first start (replicas of the node's own namespaces start `fresh`) from a restart (they
 * resume from their stores, or recover what a store lost). Each durable replica's directory is
 * claimed here too, before any worker starts, so that a directory belonging to another node,
 * namespace or replica, or written by a newer haret, refuses the start with a message naming
 * the file instead of crashing a replica worker over and over.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileSystem, writeFileAtomically } from '../../actors/storage/fs.ts';
import { claimDirectory, IDENTITY_FILE } from '../../actors/storage/identity.ts';
import { recordFileName } from './cluster_store.ts';
import { replicaDir } from './layout.ts';
import type { ResolvedOptions } from './options.ts';

export const nodeMarkerFile = 'haret-node.json';
const markerFormat = 1;

/** Whether the data directory was this node's before; refuses another node's. Creates the marker. */
export async function claimNodeDataDir(dataDir: string, node: string): Promise<{ readonly existed: boolean }> {
  const marker = join(dataDir, nodeMarkerFile);
  if (existsSync(marker)) {
    let found: unknown;
    try {
      found = JSON.parse(readFileSync(marker, 'utf8')) as unknown;
    } catch (error) {
      throw new RangeError(`${marker} is damaged (${error instanceof Error ? error.message : String(error)}): restore it or move the data directory away`);
    }
    const record = typeof found === 'object' && found !== null ? (found as { format?: unknown; node?: unknown }) : {};
    if (typeof record.format === 'number' && record.format > markerFormat) throw new RangeError(`${marker} has on-disk format ${record.format}, newer than this haret's ${markerFormat}: upgrade haret to use this directory`);
    if (record.node !== node) throw new RangeError(`${marker} belongs to node ${JSON.stringify(record.node)}, not ${JSON.stringify(node)}`);
    return { existed: true };
  }
  // A data directory from before the marker (a cluster record or replica stores) is a restart too.
  const existed = existsSync(join(dataDir, recordFileName)) || existsSync(join(dataDir, 'replicas'));
  mkdirSync(dataDir, { recursive: true });
  await writeFileAtomically(nodeFileSystem, dataDir, `${marker}.tmp`, marker, new TextEncoder().encode(`${JSON.stringify({ format: markerFormat, node })}\n`));
  return { existed };
}

/**
 * How each of the node's own namespaces starts. A new node (or an in-memory one): fresh. A
 * durable node restarting: recovering (each replica resumes from intact storage), except a
 * namespace none of whose replicas ever stored anything: a replica acknowledges nothing before
 * its first promise is stored (src/vr/README.md rule 18), so no op of it was ever committed,
 * and it starts fresh rather than wait forever for a recovery no replica can answer (a crash
 * during the node's first start, or every replica directory deleted).
 */
export function startModes(options: ResolvedOptions, restarting: boolean): (ns: string) => 'fresh' | 'recovering' {
  const dataDir = options.dataDir;
  if (!restarting || !options.durable || dataDir === undefined) return () => 'fresh';
  const modes = new Map<string, 'fresh' | 'recovering'>();
  for (const ns of options.namespaces) {
    const dirs = Array.from({ length: ns.config.replicaCount }, (_, index) => replicaDir(dataDir, ns.name, index));
    modes.set(ns.name, dirs.every(neverStored) ? 'fresh' : 'recovering');
  }
  return (ns) => modes.get(ns) ?? 'recovering';
}

/** True when a replica directory holds no byte of storage: no directory, or only its identity and empty files. */
function neverStored(dir: string): boolean {
  if (!existsSync(dir)) return true;
  return readdirSync(dir).every((name) => name === IDENTITY_FILE || name.endsWith('.tmp') || statSync(join(dir, name)).size === 0);
}

/** Claims every durable replica directory of the node's own namespaces; RangeError naming the file on a refusal. */
export async function claimReplicaDirs(options: ResolvedOptions): Promise<void> {
  const dataDir = options.dataDir;
  if (!options.durable || dataDir === undefined) return;
  mkdirSync(join(dataDir, 'replicas'), { recursive: true });
  for (const ns of options.namespaces) {
    for (let index = 0; index < ns.config.replicaCount; index++) {
      const claim = await claimDirectory(nodeFileSystem, replicaDir(dataDir, ns.name, index), { node: options.name, namespace: ns.name, replica: index });
      if (claim.kind !== 'claimed') throw new RangeError(claim.message);
    }
  }
}
