/**
 * `checkpoint_encoded`: the shell hands the replica an image of its current checkpoint,
 * encoded off the protocol's thread. The replica keeps it only for the checkpoint that is
 * still current, and ships it unchanged when a suffix needs it.
 */

import { expect } from 'chai';
import { makeReplicaConfig } from '../../src/vr/config.ts';
import { checkpointTerms, decodeCheckpoint, encodeCheckpoint, packCheckpoint } from '../../src/vr/checkpoint.ts';
import { encodeSnapshot, packSnapshot, snapshotTerms } from '../../src/tree/snapshot.ts';
import type { ReplicaInput } from '../../src/vr/io.ts';
import type { Request } from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { stepAll } from '../../src/vr/step.ts';

function requests(clientId: string, count: number): ReplicaInput[] {
  const out: ReplicaInput[] = [{ type: 'receive', message: { type: 'request', clientId, requestNum: 0, op: { type: 'register' } } }];
  for (let i = 1; i <= count; i += 1) {
    const request: Request = { type: 'request', clientId, requestNum: i, op: { type: 'tree', op: { type: 'create', path: `/n${i}`, nodeType: 'blob' } } };
    out.push({ type: 'receive', message: request });
  }
  return out;
}

/** A single-replica group (it is its own quorum) that has committed past a checkpoint. */
function replicaPastCheckpoint(): ReplicaState {
  const config = makeReplicaConfig({ replicaCount: 1, checkpointIntervalOps: 4, batchMax: 1 });
  let state = stepAll(initialReplicaState(config, 0, 7), [{ type: 'start', mode: 'fresh', nonce: 0 }]).state;
  for (const input of requests('c1', 9)) state = stepAll(state, [input]).state;
  return state;
}

describe('vr: checkpoint images encoded by the shell', () => {
  it('terms walked on one thread and packed on another give the same bytes as encoding in one go', () => {
    const state = replicaPastCheckpoint();
    const machine = state.checkpoint.machine;
    // The terms cross a thread by structured clone; the bytes must not depend on that.
    const image = packCheckpoint(structuredClone(checkpointTerms(machine)));
    expect(image).to.deep.equal(encodeCheckpoint(machine));
    expect(packSnapshot(structuredClone(snapshotTerms(machine.tree)))).to.deep.equal(encodeSnapshot(machine.tree));
    const decoded = decodeCheckpoint(image);
    expect(decoded.ok).to.equal(true);
  });

  it('adopts an image of the current checkpoint', () => {
    const state = replicaPastCheckpoint();
    expect(state.checkpoint.machine.appliedOp).to.equal(8);
    expect(state.checkpoint.image).to.equal(null);
    const image = encodeCheckpoint(state.checkpoint.machine);
    const next = stepAll(state, [{ type: 'checkpoint_encoded', image }]);
    expect(next.state.checkpoint.image).to.deep.equal(image);
    expect(next.state.checkpoint.machine).to.equal(state.checkpoint.machine);
    expect(next.effects).to.deep.equal([]);
  });

  it('ignores, with a trace, an image of another checkpoint or when one is already held', () => {
    const state = replicaPastCheckpoint();
    const stale = { op: 4, snapshot: new Uint8Array([1, 2, 3]) };
    const ignored = stepAll(state, [{ type: 'checkpoint_encoded', image: stale }]);
    expect(ignored.state.checkpoint.image).to.equal(null);
    expect(ignored.effects.map((e) => (e.type === 'trace' ? e.trace.event : e.type))).to.deep.equal(['checkpoint_image_ignored']);
    const image = encodeCheckpoint(state.checkpoint.machine);
    const held = stepAll(state, [{ type: 'checkpoint_encoded', image }]).state;
    const again = stepAll(held, [{ type: 'checkpoint_encoded', image: { ...image, snapshot: new Uint8Array(image.snapshot) } }]);
    expect(again.state.checkpoint.image).to.equal(held.checkpoint.image);
  });
});
