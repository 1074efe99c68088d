/**
 * piscina task (runtime/offload.ts): a backup's file, the checkpoint image framed and
 * CRC-32C'd (actors/storage/checkpoint_file.ts). Stateless CPU work over a buffer of up to
 * 64 MiB, done here so that it does not stop the node's main thread, where the sockets are
 * (15-150 ms for a 20 MB image on the development VM). The image arrives transferred, and the
 * file leaves moved, not copied.
 */

import { Piscina } from 'piscina';
import { encodeCheckpointFile } from '../../actors/storage/checkpoint_file.ts';

export type BackupFileTask = { readonly op: number; readonly payload: Uint8Array };

export function encodeBackupFile(task: BackupFileTask): unknown {
  return Piscina.move(encodeCheckpointFile(task.op, task.payload));
}
