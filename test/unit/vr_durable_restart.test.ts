/**
 * README rule 18: durable promises (view, lastNormalView) are stored before any message that
 * depends on them leaves, and a replica restarted with intact storage resumes without the
 * recovery protocol. A small synchronous harness: each replica's persist effects queue up as
 * writes, `flush` stores them in order (a SimStore) and feeds back `persisted`, messages are
 * delivered FIFO.
 */

import { expect } from 'chai';
import { primaryOf, makeReplicaConfig, type ReplicaConfig } from '../../src/vr/config.ts';
import type { PersistRecord, ReplicaEffect, ReplicaInput } from '../../src/vr/io.ts';
import type { PeerMessage, ReplicaMessage, Request } from '../../src/vr/messages.ts';
import { initialReplicaState, type ReplicaState } from '../../src/vr/state.ts';
import { stepAll } from '../../src/vr/step.ts';
import { SimStore } from '../sim/storage.ts';

const receive = (message: ReplicaMessage): ReplicaInput => ({ type: 'receive', message });
const register = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });

type Envelope = { readonly from: number; readonly to: number; readonly message: PeerMessage };
type Write = { readonly record: PersistRecord; readonly generation: number; readonly op: number };

class DurableGroup {
  readonly config: ReplicaConfig;
  readonly states: ReplicaState[];
  readonly stores: SimStore[];
  writes: Write[][];
  inFlight: Envelope[] = [];
  /** Every message ever sent, in order. */
  readonly sent: Envelope[] = [];
  readonly traces: string[][];
  readonly replies: { from: number; clientId: string }[] = [];
  readonly down = new Set<number>();

  constructor(config: ReplicaConfig) {
    this.config = config;
    this.states = Array.from({ length: config.replicaCount }, (_, i) => initialReplicaState(config, i, 500 + i));
    this.stores = Array.from({ length: config.replicaCount }, () => new SimStore());
    this.writes = Array.from({ length: config.replicaCount }, () => []);
    this.traces = Array.from({ length: config.replicaCount }, () => []);
    for (let i = 0; i < config.replicaCount; i++) this.input(i, { type: 'start', mode: 'fresh', nonce: 0 });
  }

  s(i: number): ReplicaState {
    const state = this.states[i];
    if (state === undefined) throw new Error(`no replica ${i}`);
    return state;
  }

  input(i: number, ...inputs: ReplicaInput[]): readonly ReplicaEffect[] {
    if (this.down.has(i)) return [];
    const result = stepAll(this.s(i), inputs);
    this.states[i] = result.state;
    for (const effect of result.effects) {
      switch (effect.type) {
        case 'persist':
          (this.writes[i] as Write[]).push({ record: effect.record, generation: effect.generation, op: effect.op });
          break;
        case 'send': {
          const envelope = { from: i, to: effect.to, message: effect.message };
          this.inFlight.push(envelope);
          this.sent.push(envelope);
          break;
        }
        case 'reply':
          this.replies.push({ from: i, clientId: effect.clientId });
          break;
        case 'trace':
          (this.traces[i] as string[]).push(effect.trace.event);
          break;
      }
    }
    return result.effects;
  }

  /** Stores replica i's queued writes in order, answering each with `persisted`. */
  flush(i: number): void {
    for (let guard = 0; (this.writes[i] as Write[]).length > 0; guard++) {
      if (guard > 10_000) throw new Error('writes did not quiesce');
      const write = (this.writes[i] as Write[]).shift() as Write;
      (this.stores[i] as SimStore).apply(write.record);
      this.input(i, { type: 'persisted', generation: write.generation, op: write.op });
    }
  }

  /** Flushes every replica and delivers every message until nothing is left. */
  settle(): void {
    for (let guard = 0; ; guard++) {
      if (guard > 100_000) throw new Error('group did not quiesce');
      let busy = false;
      for (let i = 0; i < this.config.replicaCount; i++) {
        if ((this.writes[i] as Write[]).length > 0) {
          this.flush(i);
          busy = true;
        }
      }
      const envelope = this.inFlight.shift();
      if (envelope !== undefined) {
        this.input(envelope.to, receive(envelope.message));
        busy = true;
      }
      if (!busy) return;
    }
  }

  tickAll(times = 1): void {
    for (let k = 0; k < times; k++) {
      for (let i = 0; i < this.config.replicaCount; i++) this.input(i, { type: 'tick' });
      this.settle();
    }
  }

  /** The replica that is normal primary of its view, if any. */
  primary(): number | null {
    for (let i = 0; i < this.config.replicaCount; i++) {
      const s = this.s(i);
      if (!this.down.has(i) && s.status === 'normal' && primaryOf(s.view, this.config) === i && s.lastNormalView === s.view) return i;
    }
    return null;
  }

  /** Ticks until a primary is normal (and its promise stored), at most `limit` ticks. */
  tickUntilPrimary(limit = 2000): number {
    for (let k = 0; k < limit; k++) {
      const primary = this.primary();
      if (primary !== null && this.s(primary).durable.promiseStored) return primary;
      this.tickAll();
    }
    throw new Error(`no primary after ${limit} ticks: ${this.states.map((s) => `${s.status}@${s.view}`).join(' ')}`);
  }

  /** Loses volatile state and unfinished writes; messages to it are lost while down. */
  crash(i: number): void {
    this.writes[i] = [];
    this.states[i] = initialReplicaState(this.config, i, 900 + i);
    this.down.add(i);
    this.inFlight = this.inFlight.filter((envelope) => envelope.to !== i && envelope.from !== i);
  }

  restart(i: number): readonly ReplicaEffect[] {
    this.down.delete(i);
    return this.input(i, { type: 'start', mode: 'restart', nonce: 4242 + i, stored: (this.stores[i] as SimStore).stored() });
  }

  /** Requests at the current primary, settled. */
  commit(...requests: Request[]): void {
    const primary = this.primary();
    if (primary === null) throw new Error('no primary');
    this.input(primary, ...requests.map(receive));
    this.settle();
  }
}

const config3 = makeReplicaConfig({ replicaCount: 3, durable: true, checkpointIntervalOps: 2 });
const sendTypes = (effects: readonly ReplicaEffect[]): string[] => effects.flatMap((e) => (e.type === 'send' ? [e.message.type] : []));

describe('vr durable restart (README rule 18)', () => {
  it('a fresh durable replica stores its first promise (view 0) before sending anything that depends on it', () => {
    const state = initialReplicaState(config3, 0, 1);
    const started = stepAll(state, [{ type: 'start', mode: 'fresh', nonce: 0 }]);
    expect(started.effects.flatMap((e) => (e.type === 'persist' ? [e.record] : []))).to.deep.equal([{ kind: 'promise', view: 0, lastNormalView: 0 }]);
    // the primary logs a request but neither prepares it nor counts itself before the promise is stored
    const request = stepAll(started.state, [receive(register('a'))]);
    expect(sendTypes(request.effects)).to.deep.equal([]);
    expect(request.state.primary.acks[0]).to.equal(0);
  });

  it('a vote (start_view_change, do_view_change) leaves only once the promise of its view is stored', () => {
    const group = new DurableGroup(config3);
    group.settle();
    group.commit(register('a'));
    // replica 2 hears replica 1 start a view change
    const effects = group.input(2, receive({ type: 'start_view_change', epoch: 0, view: 1, replica: 1 }));
    expect(sendTypes(effects), 'nothing before the promise is stored').to.deep.equal([]);
    expect(group.traces[2]).to.include('held_until_promise_stored');
    const writes = group.writes[2] as Write[];
    expect(writes.at(-1)?.record).to.deep.equal({ kind: 'promise', view: 1, lastNormalView: 0 });
    const before = group.sent.length;
    group.flush(2);
    const after = group.sent.slice(before).filter((envelope) => envelope.from === 2).map((envelope) => envelope.message.type);
    expect(after).to.include('start_view_change');
    expect(after).to.include('do_view_change');
  });

  it('a prepare_ok for a new view waits for the promise of that view, stored after the view log', () => {
    const group = new DurableGroup(config3);
    group.settle();
    group.commit(register('a'));
    const s2 = group.s(2);
    const startView: PeerMessage = { type: 'start_view', epoch: 0, view: 1, replica: 1, op: s2.op, commit: s2.commit, logStart: s2.op, entries: [], checkpoint: null };
    const effects = group.input(2, receive(startView));
    expect(sendTypes(effects)).to.deep.equal([]);
    const kinds = (group.writes[2] as Write[]).map((write) => write.record.kind);
    expect(kinds.at(-1)).to.equal('promise');
    const before = group.sent.length;
    group.flush(2);
    expect(group.sent.slice(before).map((envelope) => envelope.message.type)).to.deep.equal(['prepare_ok']);
  });

  it('a restarted backup resumes in its view with its commit at its checkpoint, without recovery, and catches up', () => {
    const group = new DurableGroup(config3);
    group.settle();
    for (const id of ['a', 'b', 'c', 'd', 'e']) group.commit(register(id));
    expect(group.s(0).commit).to.equal(5);
    group.crash(2);
    const effects = group.restart(2);
    const s = group.s(2);
    expect(s).to.include({ status: 'normal', view: 0, lastNormalView: 0 });
    expect(s.commit, 'commit at the stored checkpoint').to.equal(s.checkpoint.machine.appliedOp);
    expect(s.commit).to.equal(4);
    expect(sendTypes(effects)).to.not.include('recovery');
    expect(sendTypes(effects)).to.include('prepare_ok');
    group.settle();
    group.commit(register('f'));
    group.tickAll(config3.commitIntervalTicks + 1);
    expect(group.s(2).commit).to.equal(group.s(0).commit);
    expect(group.s(2).machine.clients.has('f')).to.equal(true);
    expect(group.s(0).view, 'no view change').to.equal(0);
    expect(group.sent.some((envelope) => envelope.message.type === 'recovery')).to.equal(false);
  });

  it('a restarted primary starts a view change at its stored view + 1, storing that promise before voting', () => {
    const group = new DurableGroup(config3);
    group.settle();
    for (const id of ['a', 'b', 'c']) group.commit(register(id));
    group.crash(0);
    const effects = group.restart(0);
    expect(group.s(0)).to.include({ status: 'view_change', view: 1, lastNormalView: 0 });
    expect(sendTypes(effects), 'the vote waits for its promise').to.deep.equal([]);
    expect((group.writes[0] as Write[]).map((write) => write.record)).to.deep.equal([{ kind: 'promise', view: 1, lastNormalView: 0 }]);
    group.settle();
    const primary = group.tickUntilPrimary();
    expect(group.s(primary).view).to.be.at.least(1);
    group.commit(register('d'));
    for (const id of ['a', 'b', 'c', 'd']) expect(group.s(primary).machine.clients.has(id), id).to.equal(true);
    expect(group.sent.some((envelope) => envelope.message.type === 'recovery')).to.equal(false);
  });

  for (const order of [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
  ]) {
    it(`a whole 3-replica group restarted at once (in order ${order.join(',')}) elects a primary and commits, without recovery`, () => {
      const group = new DurableGroup(config3);
      group.settle();
      for (const id of ['a', 'b', 'c', 'd', 'e']) group.commit(register(id));
      const committed = group.s(0).commit;
      for (let i = 0; i < 3; i++) group.crash(i);
      for (const i of order) {
        group.restart(i);
        group.tickAll(3);
      }
      const primary = group.tickUntilPrimary();
      group.commit(register('z'));
      expect(group.s(primary).commit).to.be.above(committed);
      for (const id of ['a', 'b', 'c', 'd', 'e', 'z']) expect(group.s(primary).machine.clients.has(id), id).to.equal(true);
      expect(group.sent.some((envelope) => envelope.message.type === 'recovery')).to.equal(false);
      expect(group.stores.flatMap((store) => store.anomalies)).to.deep.equal([]);
    });
  }

  it('storage without a promise (missing superblock) falls back to the recovery protocol', () => {
    const state = initialReplicaState(config3, 1, 3);
    const result = stepAll(state, [{ type: 'start', mode: 'restart', nonce: 9, stored: { checkpoint: null, entries: [] } }]);
    expect(result.state.status).to.equal('recovering');
    expect(sendTypes(result.effects)).to.include('recovery');
    expect(result.effects.some((e) => e.type === 'persist'), 'a recovering replica promises nothing').to.equal(false);
  });
});
