/** The replica actor's glue (actors/replica.ts) on its own: what it does before the core sees a message. */

import { expect } from 'chai';
import { answerQuery, createReplica, writeImageInSlices, type ReplicaApplied, type ReplicaPorts, type ReplicaSnapshot, type SliceClock } from '../../actors/replica.ts';
import type { Envelope } from '../../runtime/envelope.ts';
import { makeReplicaConfig } from '../../src/vr/config.ts';
import { encodeCheckpoint } from '../../src/vr/checkpoint.ts';

/** A backup (replica 1 of 3) whose clock moves 0.5 ms at every read, and a way to feed it the primary's messages. */
function backup(): { glue: ReturnType<typeof createReplica>; deliver: (msg: unknown) => void; wait: (ms: number) => void; clock: () => number; written: number[] } {
  let clock = 0;
  const written: number[] = [];
  const ports: ReplicaPorts = {
    send: () => undefined,
    persist: () => undefined,
    trace: () => undefined,
    imageWritten: (image) => written.push(image.op),
    nowMs: () => (clock += 0.5),
  };
  const config = makeReplicaConfig({ replicaCount: 3, checkpointIntervalOps: 4 });
  const glue = createReplica(ports, { ns: 'ns', index: 1, config, replicas: ['ns/r0', 'ns/r1', 'ns/r2'], defaultProxy: 'proxy', mode: 'fresh', nonce: 1, seed: 1 });
  return { glue, deliver: (msg) => glue.receive([{ from: 'ns/r0', to: 'ns/r1', msg }]), wait: (ms) => void (clock += ms), clock: () => clock, written };
}

/** Entry `op` of view 0: 400 new sessions. */
const prepare = (op: number): unknown => ({
  type: 'prepare', epoch: 0, view: 0, replica: 0, op, commit: op - 1, globalMinAccept: 0,
  entry: { op, view: 0, requests: Array.from({ length: 400 }, (_, i) => ({ type: 'request', clientId: `c${op}.${i}`, requestNum: 0, op: { type: 'register' } })) },
});
const commit = (n: number): unknown => ({ type: 'commit', epoch: 0, view: 0, replica: 0, commit: n, globalMinAccept: 0 });
type Status = { imagesEncoded: number; imagesStale: number; imageSliceMsMax: number };

describe('replica glue', () => {
  it('a malformed request carrying a real session\'s client id does not redirect that session\'s replies', () => {
    const sent: { to: string; msg: { type?: string } }[] = [];
    const ports: ReplicaPorts = {
      send: (to, msg) => sent.push({ to, msg: msg as { type?: string } }),
      persist: () => undefined,
      trace: () => undefined,
      nowMs: () => 0,
    };
    const glue = createReplica(ports, { ns: 'ns', index: 0, config: makeReplicaConfig({ replicaCount: 3 }), replicas: ['ns/r0', 'ns/r1', 'ns/r2'], defaultProxy: 'proxy', mode: 'fresh', nonce: 1, seed: 1 });
    const envelope = (from: string, msg: unknown): Envelope => ({ from, to: 'ns/r0', msg });
    // Replica 0 is the primary of view 0: the registration is prepared (op 1), not yet committed.
    glue.receive([envelope('proxyA', { type: 'request', clientId: 'c1', requestNum: 0, op: { type: 'register' } })]);
    expect(glue.state.op).to.equal(1);
    // A forged request for the same session, malformed (a request number beyond 2^48), from elsewhere.
    glue.receive([envelope('mallory', { type: 'request', clientId: 'c1', requestNum: 2 ** 53 - 1, op: { type: 'tree', op: { type: 'stat', path: '/' } } })]);
    // A backup's prepare_ok commits op 1: the reply goes to the proxy that sent the request.
    glue.receive([envelope('ns/r1', { type: 'prepare_ok', epoch: 0, replica: 1, view: 0, op: 1 })]);
    const replies = sent.filter((s) => s.msg.type === 'reply');
    expect(replies.map((r) => r.to)).to.deep.equal(['proxyA']);
  });

  describe('checkpoint images written in slices on the replica\'s thread', () => {

    it('spreads an image over slices of ~2 ms paced to a share of the thread, and hands the core (and the store) exactly encodeCheckpoint\'s bytes', () => {
      const { glue, deliver, wait, written } = backup();
      for (let op = 1; op <= 4; op++) deliver(prepare(op));
      deliver(commit(4));
      expect(glue.state.checkpoint.machine.appliedOp).to.equal(4);
      // 1,600 sessions: more than one slice holds (each ends once 2 ms have passed on its clock).
      expect(glue.state.checkpoint.image).to.equal(null);
      let deliveries = 0;
      while (glue.state.checkpoint.image === null && deliveries < 100) {
        deliver(commit(4));
        deliveries += 1;
        // Too soon after a slice: the share holds the next one back.
        if (deliveries === 1) expect((glue.status() as unknown as Status).imagesEncoded).to.equal(0);
        wait(20);
      }
      expect(deliveries).to.be.greaterThan(1);
      const status = glue.status() as unknown as Status;
      expect(status.imagesEncoded).to.equal(1);
      expect(status.imagesStale).to.equal(0);
      expect(status.imageSliceMsMax).to.be.at.most(2.5);
      expect(glue.state.checkpoint.image).to.deep.equal(encodeCheckpoint(glue.state.checkpoint.machine));
      expect(written).to.deep.equal([4]);
    });

    it('finishes a write whose checkpoint moved on (a store still cuts its log behind it; the core keeps only a current image), and starts the next no sooner than its share allows', () => {
      const { glue, deliver, wait, clock, written } = backup();
      for (let op = 1; op <= 4; op++) deliver(prepare(op));
      const startedAt = clock();
      deliver(commit(4));
      expect(glue.state.checkpoint.image).to.equal(null);
      // The next checkpoint (op 8) arrives before the first image is done.
      for (let op = 5; op <= 8; op++) deliver(prepare(op));
      deliver(commit(8));
      expect(glue.state.checkpoint.machine.appliedOp).to.equal(8);
      for (let i = 0; i < 200 && written.length === 0; i++) {
        wait(20);
        deliver(commit(8));
      }
      expect(written).to.deep.equal([4]);
      let status = glue.status() as unknown as Status;
      expect(status.imagesStale).to.equal(1);
      expect(glue.state.checkpoint.image).to.equal(null);
      // The image of op 8 comes next, once a second has passed since the first began (both
      // take well under a second of slices on this clock).
      expect(clock() - startedAt).to.be.below(500);
      for (let i = 0; i < 200 && glue.state.checkpoint.image === null; i++) {
        wait(20);
        deliver(commit(8));
      }
      expect(written).to.deep.equal([4, 8]);
      expect(clock() - startedAt).to.be.at.least(1000);
      status = glue.status() as unknown as Status;
      expect(status.imagesEncoded).to.equal(2);
      expect(status.imagesStale).to.equal(1);
      expect(glue.state.checkpoint.image).to.deep.equal(encodeCheckpoint(glue.state.checkpoint.machine));
    });
  });
  describe('a snapshot (backup) written in slices while the replica serves', () => {
    /** A clock that moves 0.5 ms at every read; a pause moves it on and runs `during` (the replica serving meanwhile). */
    function slicingClock(during: () => void = () => undefined): { clock: SliceClock; pauses: number[] } {
      let now = 0;
      const pauses: number[] = [];
      return {
        pauses,
        clock: {
          nowMs: () => (now += 0.5),
          pause: async (ms) => {
            pauses.push(ms);
            now += ms;
            during();
          },
        },
      };
    }

    it('gives encodeCheckpoint\'s bytes, in slices of ~2 ms each followed by a wait three times as long', async () => {
      const { glue, deliver } = backup();
      for (let op = 1; op <= 4; op++) deliver(prepare(op));
      deliver(commit(4));
      const machine = glue.state.machine;
      const { clock, pauses } = slicingClock();
      const image = await writeImageInSlices(machine, clock);
      expect(image).to.deep.equal(encodeCheckpoint(machine));
      expect(pauses.length).to.be.greaterThan(1);
      // Each slice ends once 2 ms have passed (read every 4 steps, 0.5 ms a read): the wait is
      // elapsed / 0.25 - elapsed, so the write takes a quarter of the thread.
      for (const ms of pauses) expect(ms).to.be.within(0, 7.5);
    });

    it('answers `snapshot` with the state at the question, however far the replica goes on while it is written, and `applied` at once', async () => {
      const { glue, deliver } = backup();
      for (let op = 1; op <= 4; op++) deliver(prepare(op));
      deliver(commit(4));
      const asked = glue.state.machine;
      expect(asked.appliedOp).to.equal(4);
      const applied = (await answerQuery({ ns: 'ns', index: 1 }, glue, { type: 'applied' })) as ReplicaApplied;
      expect(applied).to.deep.equal({ ns: 'ns', index: 1, status: 'normal', view: 0, appliedOp: 4 });
      let next = 5;
      const { clock, pauses } = slicingClock(() => {
        if (next > 12) return;
        deliver(prepare(next));
        deliver(commit(next));
        next += 1;
      });
      const snapshot = (await answerQuery({ ns: 'ns', index: 1 }, glue, { type: 'snapshot' }, clock)) as ReplicaSnapshot;
      expect(pauses.length).to.be.greaterThan(1);
      expect(glue.state.machine.appliedOp).to.be.greaterThan(4);
      expect(snapshot.image.op).to.equal(4);
      expect(snapshot.image).to.deep.equal(encodeCheckpoint(asked));
      expect(snapshot.status).to.equal('normal');
    });

    it('refuses an unknown question, and says when the replica is down', async () => {
      const { glue } = backup();
      let unknown: unknown = null;
      await answerQuery({ ns: 'ns', index: 1 }, glue, { type: 'walk_everything' }).catch((error: unknown) => (unknown = error));
      expect(unknown).to.be.instanceOf(RangeError);
      let down: unknown = null;
      await answerQuery({ ns: 'ns', index: 1 }, null, { type: 'snapshot' }).catch((error: unknown) => (down = error));
      expect((down as Error).message).to.contain('ns/r1 is down');
    });
  });
});
