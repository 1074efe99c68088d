/**
 * Seeding a replica directory from a backup (issue 13, "Backup"): a new namespace starts from a
 * checkpoint instead of an empty tree. Each replica's directory gets the checkpoint file and a
 * promise of view 0 (superblock), exactly what a replica of a group that has been through view 0
 * and checkpointed there would hold; so the replicas start intact (`restart`, README rule 18):
 * the backups resume in view 0 at the checkpoint, the primary of view 0 starts a view change,
 * and the group serves the restored tree. Only an empty directory is seeded: restoring over a
 * namespace's data would fork it.
 */

import { writeCheckpoint } from './checkpoint_file.ts';
import { nodeFileSystem, type FileSystem } from './fs.ts';
import { claimDirectory, IDENTITY_FILE, type DirectoryIdentity } from './identity.ts';
import { encodePromise, StorageRefusal } from './replica_store.ts';
import { Superblock } from './superblock.ts';

export async function seedReplicaDirectory(dir: string, identity: DirectoryIdentity, op: number, image: Uint8Array, fs: FileSystem = nodeFileSystem): Promise<void> {
  const claim = await claimDirectory(fs, dir, identity);
  if (claim.kind !== 'claimed') throw new StorageRefusal(claim.message, claim.path);
  const held = (await fs.readdir(dir)).filter((name) => name !== IDENTITY_FILE && !name.endsWith('.tmp'));
  if (held.length > 0) {
    throw new StorageRefusal(`${dir} already holds data (${held[0] ?? ''}): a backup seeds a new namespace only; move the directory away to restore over it`, dir);
  }
  await writeCheckpoint(fs, dir, op, image);
  const opened = await Superblock.open(fs, dir);
  if (opened.kind !== 'opened') throw new StorageRefusal(`${opened.path} has on-disk format ${opened.version}, newer than this haret's`, opened.path);
  try {
    await opened.superblock.write(encodePromise({ view: 0, lastNormalView: 0 }));
  } finally {
    await opened.superblock.close();
  }
}
