/**
 * `snapshotNamespace` (src/node/backup.ts): which of a node's replicas of a namespace a backup
 * is walked from. Every replica is asked how far it is (`applied`, no walk); only the furthest
 * in normal status is walked into an image, the next one if it fails meanwhile.
 */

import { expect } from 'chai';
import { decodeCheckpointFile } from '../../actors/storage/checkpoint_file.ts';
import type { ReplicaApplied, ReplicaSnapshot } from '../../actors/replica.ts';
import { snapshotNamespace, snapshotWalkTimeoutMs } from '../../src/node/backup.ts';
import type { ReplicaState } from '../../src/vr/state.ts';

type Fake = {
  readonly status: ReplicaState['status'];
  readonly appliedOp: number;
  /** What its `snapshot` answer does: an image at appliedOp, a throw, or a status it has moved to. */
  readonly snapshot?: 'ok' | 'throw' | ReplicaState['status'];
  /** Its `applied` answer throws (the replica is down). */
  readonly down?: true;
};

/** A query function over fake replicas r0, r1, ...; records every question asked. */
function fakeReplicas(fakes: readonly Fake[]): { readonly ids: string[]; readonly asked: string[]; readonly bounds: (number | undefined)[]; query(actor: string, request: unknown, timeoutMs?: number): Promise<unknown> } {
  const ids = fakes.map((_, index) => `ns/r${index}`);
  const asked: string[] = [];
  const bounds: (number | undefined)[] = [];
  return {
    ids,
    asked,
    bounds,
    async query(actor, request, timeoutMs) {
      const index = ids.indexOf(actor);
      const fake = fakes[index];
      if (fake === undefined) throw new Error(`no actor ${actor}`);
      const type = (request as { type: string }).type;
      asked.push(`${type} ${actor}`);
      bounds.push(timeoutMs);
      if (fake.down === true) throw new Error('down');
      if (type === 'applied') {
        const answer: ReplicaApplied = { ns: 'ns', index, status: fake.status, view: 0, appliedOp: fake.appliedOp };
        return answer;
      }
      expect(type).to.equal('snapshot');
      const outcome = fake.snapshot ?? 'ok';
      if (outcome === 'throw') throw new Error('crashed while walking');
      const status = outcome === 'ok' ? fake.status : outcome;
      const answer: ReplicaSnapshot = { ns: 'ns', index, status, view: 0, image: { op: fake.appliedOp, snapshot: new Uint8Array([index, fake.appliedOp]) } };
      return answer;
    },
  };
}

function opOf(file: Uint8Array): number {
  const decoded = decodeCheckpointFile(file);
  if (decoded.kind !== 'valid') throw new Error(`not a valid checkpoint file: ${decoded.kind}`);
  return decoded.op;
}

describe('backups: which replica a snapshot is walked from', () => {
  it('asks every replica how far it is, and walks only the furthest in normal status', async () => {
    const replicas = fakeReplicas([
      { status: 'normal', appliedOp: 40 },
      { status: 'normal', appliedOp: 42 },
      { status: 'view_change', appliedOp: 50 },
    ]);
    const backup = await snapshotNamespace('ns', replicas.ids, (actor, request, timeoutMs) => replicas.query(actor, request, timeoutMs));
    expect(backup.op).to.equal(42);
    expect(opOf(backup.file)).to.equal(42);
    expect(replicas.asked.filter((line) => line.startsWith('snapshot'))).to.deep.equal(['snapshot ns/r1']);
    expect(replicas.asked.filter((line) => line.startsWith('applied'))).to.have.length(3);
    // The walk is awaited its own bound; the question of how far, the control timeout.
    expect(replicas.bounds).to.deep.equal([undefined, undefined, undefined, snapshotWalkTimeoutMs]);
  });

  it('falls back to the next furthest when the chosen one throws or leaves normal status while walking', async () => {
    const replicas = fakeReplicas([
      { status: 'normal', appliedOp: 30 },
      { status: 'normal', appliedOp: 33, snapshot: 'throw' },
      { status: 'normal', appliedOp: 35, snapshot: 'view_change' },
    ]);
    const backup = await snapshotNamespace('ns', replicas.ids, (actor, request) => replicas.query(actor, request));
    expect(backup.op).to.equal(30);
    expect(replicas.asked.filter((line) => line.startsWith('snapshot'))).to.deep.equal(['snapshot ns/r2', 'snapshot ns/r1', 'snapshot ns/r0']);
  });

  it('says why when no replica can give one: down, not normal, or failing while walking', async () => {
    const replicas = fakeReplicas([
      { status: 'normal', appliedOp: 1, down: true },
      { status: 'recovering', appliedOp: 0 },
      { status: 'normal', appliedOp: 9, snapshot: 'throw' },
    ]);
    let thrown: unknown = null;
    try {
      await snapshotNamespace('ns', replicas.ids, (actor, request) => replicas.query(actor, request));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(Error);
    const message = (thrown as Error).message;
    expect(message).to.contain('no replica of ns on this node is in normal status');
    expect(message).to.contain('ns/r0: down');
    expect(message).to.contain('ns/r1: recovering');
    expect(message).to.contain('ns/r2: crashed while walking');
  });

  it('with no replica of the namespace here, says so', async () => {
    let thrown: unknown = null;
    try {
      await snapshotNamespace('ns', [], () => Promise.reject(new Error('never asked')));
    } catch (error) {
      thrown = error;
    }
    expect((thrown as Error).message).to.contain('(none here)');
  });
});
