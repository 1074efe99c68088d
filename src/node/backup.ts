/**
 * Backups (issue 13, "Backup"). `snapshotNamespace` asks this node's replicas of a namespace for
 * the machine at their commit (a replica applies only committed ops, VRR §4.1, so any normal
 * replica's machine is a consistent state) and keeps the most recent, as a checkpoint file:
 * magic, format, op, length and CRC-32C over it all (actors/storage/checkpoint_file.ts), around
 * the core's own CRC-checked checkpoint image. `restoreNamespaces` seeds the directories of a new
 * namespace's replicas from such a file before they start (actors/storage/seed.ts).
 */

import { readFileSync } from 'node:fs';
import { decodeCheckpointFile, encodeCheckpointFile } from '../../actors/storage/checkpoint_file.ts';
import { seedReplicaDirectory } from '../../actors/storage/seed.ts';
import type { ReplicaApplied, ReplicaSnapshot } from '../../actors/replica.ts';
import { decodeCheckpoint } from '../vr/checkpoint.ts';
import { replicaDir } from './layout.ts';
import type { ResolvedOptions } from './options.ts';

export type Backup = { readonly ns: string; readonly op: number; readonly file: Uint8Array };

/**
 * How long a replica's walk into an image is awaited. The control timeout (2 s by default) is
 * for questions answered at once; a namespace of 50 MB took longer than that to walk and pack on
 * the development VM, so `snapshot save` refused namespaces well under its 64 MiB limit.
 */
export const snapshotWalkTimeoutMs = 60_000;

/**
 * The most recent committed state among `replicas` (actor ids) in normal status; an Error when
 * none answers. Each replica is first asked how far its machine is (`applied`, no walk), and
 * only the furthest is walked into an image: a walk spends its replica's thread (a quarter of it,
 * in slices), and with every replica in one worker (`single`, `main_thread`) walking all of them
 * spent that thread once per replica for one image kept. Should the furthest fail or leave
 * normal status meanwhile, the next is asked.
 * `encodeFile` frames and checksums the image (a node does it on its offload pool).
 */
export async function snapshotNamespace(
  ns: string,
  replicas: readonly string[],
  query: (actor: string, request: unknown, timeoutMs?: number) => Promise<unknown>,
  encodeFile: (op: number, payload: Uint8Array) => Promise<Uint8Array> = async (op, payload) => encodeCheckpointFile(op, payload),
): Promise<Backup> {
  const problems: string[] = [];
  const problem = (actor: string, reason: unknown): void => {
    problems.push(`${actor}: ${reason instanceof Error ? reason.message : String(reason)}`);
  };
  const answers = await Promise.allSettled(replicas.map((actor) => query(actor, { type: 'applied' })));
  const candidates: { readonly actor: string; readonly appliedOp: number }[] = [];
  for (const [i, answer] of answers.entries()) {
    const actor = replicas[i] ?? '?';
    if (answer.status === 'rejected') problem(actor, answer.reason);
    else {
      const applied = answer.value as ReplicaApplied;
      if (applied.status !== 'normal') problems.push(`${actor}: ${applied.status}`);
      else candidates.push({ actor, appliedOp: applied.appliedOp });
    }
  }
  candidates.sort((x, y) => y.appliedOp - x.appliedOp);
  for (const { actor } of candidates) {
    let snapshot: ReplicaSnapshot;
    try {
      snapshot = (await query(actor, { type: 'snapshot' }, snapshotWalkTimeoutMs)) as ReplicaSnapshot;
    } catch (error) {
      problem(actor, error);
      continue;
    }
    if (snapshot.status !== 'normal') {
      problems.push(`${actor}: ${snapshot.status}`);
      continue;
    }
    return { ns, op: snapshot.image.op, file: await encodeFile(snapshot.image.op, snapshot.image.snapshot) };
  }
  throw new Error(`no replica of ${ns} on this node is in normal status to take a snapshot from (${problems.join('; ') || 'none here'})`);
}

/** Reads and checks a backup file whole: its op and checkpoint image; RangeError naming the file otherwise. */
export function readBackup(path: string): { readonly op: number; readonly image: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new RangeError(`backup ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const decoded = decodeCheckpointFile(bytes);
  if (decoded.kind === 'newer_format') throw new RangeError(`backup ${path} has format ${decoded.version}, newer than this haret's: upgrade haret to restore it`);
  if (decoded.kind !== 'valid') throw new RangeError(`backup ${path} is not a valid haret backup: ${decoded.reason}`);
  const machine = decodeCheckpoint({ op: decoded.op, snapshot: decoded.payload });
  if (!machine.ok) throw new RangeError(`backup ${path} holds a damaged checkpoint: ${machine.reason}`);
  return { op: decoded.op, image: decoded.payload };
}

/** Seeds every replica directory of each namespace in `options.restore` (its own namespaces only) from its backup file. */
export async function restoreNamespaces(options: ResolvedOptions): Promise<void> {
  const dataDir = options.dataDir;
  for (const [ns, path] of Object.entries(options.restore)) {
    const namespace = options.namespaces.find((candidate) => candidate.name === ns);
    if (namespace === undefined || dataDir === undefined || !options.durable) throw new RangeError(`restore ${ns}: only a durable node's own namespace can be restored (dataDir, and ${ns} among its namespaces)`);
    const backup = readBackup(path);
    for (let index = 0; index < namespace.config.replicaCount; index++) {
      try {
        await seedReplicaDirectory(replicaDir(dataDir, ns, index), { node: options.name, namespace: ns, replica: index }, backup.op, backup.image);
      } catch (error) {
        throw new RangeError(`restore ${ns} from ${path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}
