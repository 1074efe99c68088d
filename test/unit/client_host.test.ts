/**
 * The session host (src/client/host.ts), pure and hand-driven: the one client path that the
 * node's proxy actor and the client library both run. Calls, answers, refusals and ticks go
 * in; sends (naming namespace and replica) and results come out.
 */

import { expect } from 'chai';
import { serviceClientConfig } from '../../src/client/config.ts';
import { hostStats, hostStepAll, initialHostState, type HostEffect, type HostInput, type HostState } from '../../src/client/host.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import type { ClientAnswer, ReplyBody } from '../../src/vr/messages.ts';

const stat: TreeOp = { type: 'stat', path: '/' };

class Host {
  state: HostState = initialHostState({ client: serviceClientConfig, sessionsMax: 2, waitingMax: 1 });
  run(...inputs: HostInput[]): HostEffect[] {
    const stepped = hostStepAll(this.state, inputs);
    this.state = stepped.state;
    return [...stepped.effects];
  }
}

const add = (ns: string, replicaCount = 3, prefix = `p${ns}`): HostInput => ({ type: 'add_namespace', ns, replicaCount, clientIdPrefix: prefix, seed: 7 });
const call = (callId: number, ns: string, op: TreeOp = stat): HostInput => ({ type: 'call', callId, ns, op });
const reply = (clientId: string, requestNum: number, body: ReplyBody, view = 0): HostInput => ({
  type: 'receive',
  message: { type: 'reply', epoch: 0, view, op: 1, clientId, requestNum, body } satisfies ClientAnswer,
});
const sends = (effects: readonly HostEffect[]) => effects.flatMap((e) => (e.type === 'send' ? [[e.ns, e.replica, e.request.clientId, e.request.requestNum]] : []));
const results = (effects: readonly HostEffect[]) => effects.flatMap((e) => (e.type === 'result' ? [[e.callId, e.result.type]] : []));

describe('client session host (src/client/host.ts)', () => {
  it('serves each namespace with its own pool: sends name the namespace and the replica', () => {
    const host = new Host();
    const effects = host.run(add('a'), add('b', 5), call(1, 'a'), call(2, 'b'));
    expect(sends(effects)).to.deep.equal([
      ['a', 0, 'pa.1', 0],
      ['b', 0, 'pb.1', 0],
    ]);
  });

  it('routes answers by client-id prefix to their namespace and follows not_primary to the named replica', () => {
    const host = new Host();
    host.run(add('a'), add('b', 5), call(1, 'a'), call(2, 'b'));
    const registered = host.run(reply('pb.1', 0, { type: 'registered', isNew: true, lastRequestNum: 0 }));
    expect(sends(registered)).to.deep.equal([['b', 0, 'pb.1', 1]]);
    const redirected = host.run({ type: 'receive', message: { type: 'not_primary', epoch: 0, view: 3, primary: 3, clientId: 'pb.1', requestNum: 1 } });
    expect(sends(redirected)).to.deep.equal([['b', 3, 'pb.1', 1]]);
    const done = host.run(reply('pb.1', 1, { type: 'tree', outcome: { type: 'stat', nodeType: 'directory', version: 0, size: 0 } }, 3));
    expect(results(done)).to.deep.equal([[2, 'done']]);
    // Namespace a's session is untouched: still waiting for its registration.
    expect(hostStats(host.state)).to.deep.equal({ sessions: 2, busy: 1, waiting: 0 });
  });

  it('answers a call for a namespace it does not serve, or a call that is not an op, at once', () => {
    const host = new Host();
    expect(results(host.run(add('a'), call(1, 'nope')))).to.deep.equal([[1, 'unknown_namespace']]);
    expect(results(host.run({ type: 'call', callId: 2, ns: 'a', op: null as unknown as TreeOp }))).to.deep.equal([[2, 'invalid_call']]);
  });

  it('limits per namespace: sessionsMax in flight, waitingMax waiting, then `overloaded` at once', () => {
    const host = new Host();
    const effects = host.run(add('a'), call(1, 'a'), call(2, 'a'), call(3, 'a'), call(4, 'a'));
    expect(sends(effects)).to.have.length(2);
    expect(results(effects)).to.deep.equal([[4, 'overloaded']]);
  });

  it('a refusal for good ends the call; a stray answer or refusal is traced and dropped', () => {
    const host = new Host();
    host.run(add('a'), call(1, 'a'));
    host.run(reply('pa.1', 0, { type: 'registered', isNew: true, lastRequestNum: 0 }));
    const refused = host.run({ type: 'refused', clientId: 'pa.1', requestNum: 1, reason: 'invalid_request', message: 'bad' });
    expect(results(refused)).to.deep.equal([[1, 'refused']]);
    const stray = host.run(reply('zz.1', 1, { type: 'session_expired' }), { type: 'refused', clientId: 'zz.9', requestNum: 1, reason: 'unknown_namespace', message: 'x' });
    expect(stray.map((e) => e.type === 'trace' && e.event)).to.deep.equal(['host_stray_answer', 'host_stray_refusal']);
  });

  it('refuses a namespace twice, a prefix twice, an even group or a prefix with a dot, and keeps serving', () => {
    const host = new Host();
    const effects = host.run(add('a'), add('a'), add('b', 3, 'pa'), add('c', 2), add('d', 3, 'p.d'));
    expect(effects.map((e) => e.type === 'trace' && e.detail?.['problem'])).to.deep.equal([
      'already served',
      'clientIdPrefix must be new and hold no dot',
      'replicaCount must be odd and positive',
      'clientIdPrefix must be new and hold no dot',
    ]);
    expect(sends(host.run(call(1, 'a')))).to.deep.equal([['a', 0, 'pa.1', 0]]);
  });

  it('ticks every namespace: a silent replica is retried at the next one', () => {
    const host = new Host();
    host.run(add('a'), add('b'), call(1, 'a'), call(2, 'b'));
    let resent: (string | number)[][] = [];
    for (let tick = 0; tick < 20 && resent.length < 2; tick += 1) resent = resent.concat(sends(host.run({ type: 'tick' })));
    expect(resent).to.deep.equal([
      ['a', 1, 'pa.1', 0],
      ['b', 1, 'pb.1', 0],
    ]);
  });

  it('is a pure function of its inputs: the same inputs give the same state and effects, the old state stays valid', () => {
    const inputs: HostInput[] = [add('a'), call(1, 'a'), reply('pa.1', 0, { type: 'registered', isNew: true, lastRequestNum: 0 }), ...Array.from({ length: 30 }, (): HostInput => ({ type: 'tick' }))];
    const first = new Host();
    const second = new Host();
    const before = first.state;
    expect(first.run(...inputs)).to.deep.equal(second.run(...inputs));
    expect(hostStats(before)).to.deep.equal({ sessions: 0, busy: 0, waiting: 0 });
    expect(Object.isFrozen(first.state)).to.equal(true);
  });
});
