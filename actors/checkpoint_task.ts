/**
 * piscina task (runtime/offload.ts): the stateless half of encoding a checkpoint image, msgpack
 * and CRC-32 over the plain terms the replica's thread walked out of its persistent state.
 */

import { packCheckpoint, type CheckpointTerms } from '../src/vr/checkpoint.ts';
import type { CheckpointImage } from '../src/vr/messages.ts';

export function packCheckpointTerms(terms: CheckpointTerms): CheckpointImage {
  return packCheckpoint(terms);
}
