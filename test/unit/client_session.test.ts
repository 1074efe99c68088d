/**
 * Client sessions (src/client/session.ts), hand-driven: calls, answers and ticks go in, sends
 * and results come out.
 */

import { expect } from 'chai';
import { defaultClientConfig, type ClientConfig } from '../../src/client/config.ts';
import type { ClientEffect, ClientInput } from '../../src/client/io.ts';
import { clientStep, initialClientState, isIdle, type ClientState } from '../../src/client/session.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import type { ClientAnswer, ReplyBody, Request } from '../../src/vr/messages.ts';

// ---- helpers -------------------------------------------------------------------------------

const clientId = 'client-1';
const createA: TreeOp = { type: 'create', path: '/a', nodeType: 'blob' };
const createB: TreeOp = { type: 'create', path: '/b', nodeType: 'blob' };

const call = (callId: number, op: TreeOp = createA): ClientInput => ({ type: 'call', callId, op });
const tick: ClientInput = { type: 'tick' };
const receive = (message: ClientAnswer): ClientInput => ({ type: 'receive', message });

function reply(requestNum: number, body: ReplyBody, view = 0, op = 1): ClientAnswer {
  return { type: 'reply', epoch: 0, view, op, clientId, requestNum, body };
}
const registered = (lastRequestNum = 0, isNew = true, view = 0): ClientAnswer => reply(0, { type: 'registered', isNew, lastRequestNum }, view);
const treeOk = (requestNum: number, view = 0, op = 2): ClientAnswer => reply(requestNum, { type: 'tree', outcome: { type: 'ok', version: 1 } }, view, op);

const sentRequests = (effects: readonly ClientEffect[]): { to: number; request: Request }[] =>
  effects.flatMap((e) => (e.type === 'send' ? [{ to: e.to, request: e.request }] : []));
const results = (effects: readonly ClientEffect[]) => effects.flatMap((e) => (e.type === 'result' ? [{ callId: e.callId, result: e.result }] : []));

/** A tiny driver: feeds inputs, keeps the state, accumulates effects per call. */
class Session {
  state: ClientState;
  constructor(config: ClientConfig = defaultClientConfig, seed = 1) {
    this.state = initialClientState(clientId, config, seed);
  }
  run(...inputs: ClientInput[]): ClientEffect[] {
    const out: ClientEffect[] = [];
    for (const input of inputs) {
      const result = clientStep(this.state, input);
      this.state = result.state;
      out.push(...result.effects);
    }
    return out;
  }
  ticks(count: number): ClientEffect[] {
    return this.run(...Array.from({ length: count }, () => tick));
  }
  /** Ticks until the next retry is due minus one (no send yet). */
  waitTicks(): number {
    const waiting = this.state.outstanding?.waitTicks;
    if (waiting === undefined) throw new Error('nothing outstanding');
    return waiting;
  }
}

/** A session registered (new, lastRequestNum 0) with call 1 sent as request 1 to replica 0. */
function registeredWithCall(config: ClientConfig = defaultClientConfig): Session {
  const session = new Session(config);
  session.run(call(1), receive(registered()));
  expect(session.state.outstanding?.request.requestNum).to.equal(1);
  return session;
}

// ---- tests ---------------------------------------------------------------------------------

describe('client session (src/client/session.ts)', () => {
  it('starts idle, unregistered, in view 0', () => {
    const session = new Session();
    expect(isIdle(session.state)).to.equal(true);
    expect(session.state).to.include({ registered: false, view: 0, lastRequestNum: 0 });
    expect(session.ticks(50)).to.deep.equal([]);
  });

  it('rejects an invalid configuration', () => {
    expect(() => initialClientState(clientId, { ...defaultClientConfig, retryTicks: 0 }, 1)).to.throw(RangeError);
    expect(() => initialClientState(clientId, { ...defaultClientConfig, retryTicksMax: 5, retryTicks: 10 }, 1)).to.throw(RangeError);
  });

  it('the first call sends register (request 0) to replica view % n; the call follows as request lastRequestNum + 1', () => {
    const session = new Session();
    const first = session.run(call(1));
    expect(sentRequests(first)).to.deep.equal([{ to: 0, request: { type: 'request', clientId, requestNum: 0, op: { type: 'register' } } }]);
    expect(results(first)).to.deep.equal([]);
    expect(isIdle(session.state)).to.equal(false);

    const afterRegister = session.run(receive(registered(0)));
    expect(session.state.registered).to.equal(true);
    expect(sentRequests(afterRegister)).to.deep.equal([{ to: 0, request: { type: 'request', clientId, requestNum: 1, op: { type: 'tree', op: createA } } }]);
    expect(results(afterRegister)).to.deep.equal([]);

    const done = session.run(receive(treeOk(1, 0, 2)));
    expect(results(done)).to.deep.equal([
      { callId: 1, result: { type: 'done', outcome: { type: 'ok', version: 1 }, epoch: 0, view: 0, op: 2, requestNum: 1 } },
    ]);
    expect(isIdle(session.state)).to.equal(true);

    // the next call is request 2, without registering again
    const second = session.run(call(2, createB));
    expect(sentRequests(second)).to.deep.equal([{ to: 0, request: { type: 'request', clientId, requestNum: 2, op: { type: 'tree', op: createB } } }]);
  });

  it('the register goes to the primary of the highest view heard of', () => {
    const session = new Session();
    session.run(call(1), receive(registered(0, true, 4)), receive(treeOk(1, 4)));
    expect(session.state.view).to.equal(4);
    // session expired: the next call registers again, at replica 4 % 3 = 1
    session.run(call(2), receive(reply(2, { type: 'session_expired' }, 4)));
    const third = session.run(call(3));
    expect(sentRequests(third)).to.deep.equal([{ to: 1, request: { type: 'request', clientId, requestNum: 0, op: { type: 'register' } } }]);
  });

  it('queued calls go one at a time, in order, numbered consecutively', () => {
    const session = new Session();
    session.run(call(1, createA), call(2, createB));
    const afterRegister = session.run(receive(registered()));
    expect(sentRequests(afterRegister).map((s) => s.request.requestNum)).to.deep.equal([1]);
    const next = session.run(receive(treeOk(1)));
    expect(results(next).map((r) => r.callId)).to.deep.equal([1]);
    expect(sentRequests(next)).to.deep.equal([{ to: 0, request: { type: 'request', clientId, requestNum: 2, op: { type: 'tree', op: createB } } }]);
  });

  it('a not_primary redirects at once to the named primary, and later requests go there', () => {
    const session = registeredWithCall();
    const effects = session.run(receive({ type: 'not_primary', epoch: 0, view: 1, primary: 1, clientId, requestNum: 1 }));
    expect(sentRequests(effects)).to.deep.equal([{ to: 1, request: { type: 'request', clientId, requestNum: 1, op: { type: 'tree', op: createA } } }]);
    expect(session.state.view).to.equal(1);
    session.run(receive(treeOk(1, 1)));
    expect(sentRequests(session.run(call(2)))[0]?.to).to.equal(1);
  });

  it('a not_primary naming the replica already tried does not cause an immediate resend', () => {
    const session = registeredWithCall();
    const effects = session.run(receive({ type: 'not_primary', epoch: 0, view: 0, primary: 0, clientId, requestNum: 1 }));
    expect(sentRequests(effects)).to.deep.equal([]);
  });

  it('silence: the request is re-sent to the next replica after the backoff, which doubles', () => {
    const config: ClientConfig = { ...defaultClientConfig, retryTicks: 10, retryTicksMax: 80 };
    const session = registeredWithCall(config);
    const firstWait = session.waitTicks();
    expect(firstWait).to.be.within(10, 14); // base 10 + jitter in [0, 5)
    expect(sentRequests(session.ticks(firstWait - 1))).to.deep.equal([]);
    const retry = sentRequests(session.ticks(1));
    expect(retry).to.deep.equal([{ to: 1, request: { type: 'request', clientId, requestNum: 1, op: { type: 'tree', op: createA } } }]);
    const secondWait = session.waitTicks();
    expect(secondWait).to.be.within(20, 29);
    expect(sentRequests(session.ticks(secondWait - 1))).to.deep.equal([]);
    expect(sentRequests(session.ticks(1)).map((s) => s.to)).to.deep.equal([2]);
    // and round again to replica 0, same request number every time
    const third = sentRequests(session.ticks(session.waitTicks()));
    expect(third.map((s) => [s.to, s.request.requestNum])).to.deep.equal([[0, 1]]);
  });

  it('a re-sent request is plain data that outlives the step (not an immer draft)', () => {
    // redirect, silence and busy all re-send through the same path
    const redirected = registeredWithCall();
    const redirect = sentRequests(redirected.run(receive({ type: 'not_primary', epoch: 0, view: 1, primary: 1, clientId, requestNum: 1 })));
    const silent = registeredWithCall();
    const retry = sentRequests(silent.ticks(silent.waitTicks()));
    for (const [label, sent] of [
      ['redirect', redirect],
      ['retry on silence', retry],
    ] as const) {
      expect(sent, label).to.have.length(1);
      const request = sent[0]?.request;
      expect(() => structuredClone(request), `${label}: the request can be cloned`).to.not.throw();
      expect(() => JSON.stringify(request), `${label}: the request can be read`).to.not.throw();
    }
  });

  it('the backoff is capped at retryTicksMax (plus jitter)', () => {
    const config: ClientConfig = { ...defaultClientConfig, retryTicks: 10, retryTicksMax: 20, giveUpTicks: 100_000 };
    const session = registeredWithCall(config);
    for (let attempt = 0; attempt < 8; attempt++) {
      const wait = session.waitTicks();
      expect(wait, `attempt ${attempt}`).to.be.at.most(29);
      session.ticks(wait);
    }
  });

  it('busy: the session waits at least retryAfterTicks before trying again', () => {
    const session = registeredWithCall();
    const effects = session.run(receive({ type: 'busy', epoch: 0, view: 0, retryAfterTicks: 40, clientId, requestNum: 1 }));
    expect(sentRequests(effects)).to.deep.equal([]);
    expect(results(effects)).to.deep.equal([]);
    expect(session.waitTicks()).to.equal(40);
    expect(sentRequests(session.ticks(39))).to.deep.equal([]);
    const retry = sentRequests(session.ticks(1));
    expect(retry).to.have.length(1);
    expect(retry[0]?.request.requestNum).to.equal(1);
  });

  it('busy asking for less than the current backoff does not shorten it', () => {
    const session = registeredWithCall();
    const wait = session.waitTicks();
    session.run(receive({ type: 'busy', epoch: 0, view: 0, retryAfterTicks: 1, clientId, requestNum: 1 }));
    expect(session.waitTicks()).to.equal(wait);
  });

  it('gives up after giveUpTicks with a typed timeout, not before', () => {
    const config: ClientConfig = { ...defaultClientConfig, giveUpTicks: 100 };
    const session = registeredWithCall(config);
    const before = session.ticks(99);
    expect(results(before)).to.deep.equal([]);
    expect(sentRequests(before).length, 'it kept retrying meanwhile').to.be.above(0);
    const last = session.ticks(1);
    expect(results(last)).to.deep.equal([{ callId: 1, result: { type: 'timeout' } }]);
    expect(isIdle(session.state)).to.equal(true);
    expect(session.ticks(500)).to.deep.equal([]);
  });

  it('a register that never answers fails the waiting call with timeout', () => {
    const config: ClientConfig = { ...defaultClientConfig, giveUpTicks: 50 };
    const session = new Session(config);
    session.run(call(7));
    const effects = session.ticks(50);
    expect(results(effects)).to.deep.equal([{ callId: 7, result: { type: 'timeout' } }]);
    expect(session.state.registered).to.equal(false);
    expect(isIdle(session.state)).to.equal(true);
  });

  it('stale answers are ignored: another request number, another client, or nothing outstanding', () => {
    const session = registeredWithCall();
    const before = session.state;
    const stale = session.run(
      receive(treeOk(0)),
      receive(treeOk(2)),
      receive({ ...treeOk(1), clientId: 'someone-else' } as ClientAnswer),
      receive({ type: 'not_primary', epoch: 0, view: 0, primary: 2, clientId, requestNum: 0 }),
      receive({ type: 'busy', epoch: 0, view: 0, retryAfterTicks: 500, clientId, requestNum: 7 }),
    );
    expect(results(stale)).to.deep.equal([]);
    expect(sentRequests(stale)).to.deep.equal([]);
    expect(stale.filter((e) => e.type === 'trace').map((e) => (e.type === 'trace' ? e.event : ''))).to.deep.equal(Array(5).fill('client_ignore_stale_answer'));
    expect(session.state.outstanding).to.deep.equal(before.outstanding);
    // the real answer still completes the call
    expect(results(session.run(receive(treeOk(1)))).map((r) => r.callId)).to.deep.equal([1]);
    // a late duplicate after completion is ignored too
    const late = session.run(receive(treeOk(1)));
    expect(results(late)).to.deep.equal([]);
  });

  it('queueMax: a call beyond the queue is answered overloaded and never sent', () => {
    const config: ClientConfig = { ...defaultClientConfig, queueMax: 2 };
    const session = new Session(config);
    const effects = session.run(call(1), call(2), call(3));
    expect(results(effects)).to.deep.equal([{ callId: 3, result: { type: 'overloaded' } }]);
    expect(session.state.queue.map((q) => q.callId)).to.deep.equal([1, 2]);
    session.run(receive(registered()));
    session.run(receive(treeOk(1)));
    const second = session.run(receive(treeOk(2)));
    expect(results(second).map((r) => r.callId)).to.deep.equal([2]);
    expect(isIdle(session.state)).to.equal(true);
  });

  it('a continued session (registered with lastRequestNum 7) numbers the next request 8', () => {
    const session = new Session();
    session.run(call(1));
    const effects = session.run(receive(registered(7, false)));
    expect(sentRequests(effects)).to.deep.equal([{ to: 0, request: { type: 'request', clientId, requestNum: 8, op: { type: 'tree', op: createA } } }]);
    session.run(receive(treeOk(8)));
    expect(sentRequests(session.run(call(2)))[0]?.request.requestNum).to.equal(9);
  });

  it('rejected and session_expired replies end the call with their typed result; session_expired re-registers next time', () => {
    const session = registeredWithCall();
    const error = { code: 'bad_path', reason: 'x' } as const;
    const rejected = session.run(receive(reply(1, { type: 'rejected', outcome: { type: 'error', error } }, 0, 0)));
    expect(results(rejected)).to.deep.equal([{ callId: 1, result: { type: 'rejected', outcome: { type: 'error', error } } }]);
    const next = session.run(call(2));
    expect(sentRequests(next)[0]?.request.requestNum).to.equal(2);
    const expired = session.run(receive(reply(2, { type: 'session_expired' }, 0, 0)));
    expect(results(expired)).to.deep.equal([{ callId: 2, result: { type: 'session_expired', executed: false } }]);
    expect(session.state.registered).to.equal(false);
    const again = session.run(call(3));
    expect(sentRequests(again)[0]?.request).to.deep.equal({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
  });

  it('session_expired after a resend: an earlier attempt may have run before the eviction', () => {
    const session = registeredWithCall();
    const resent = session.ticks(session.waitTicks());
    expect(sentRequests(resent)).to.have.length(1);
    const expired = session.run(receive(reply(1, { type: 'session_expired' }, 0, 0)));
    expect(results(expired)).to.deep.equal([{ callId: 1, result: { type: 'session_expired', executed: 'maybe' } }]);
  });

  it('a stale_request answer ends the call as maybe executed, and later requests number above what ran', () => {
    const session = registeredWithCall();
    const stale = session.run(receive(reply(1, { type: 'stale_request', lastRequestNum: 7 }, 0, 0)));
    expect(results(stale)).to.deep.equal([{ callId: 1, result: { type: 'stale_request', lastRequestNum: 7 } }]);
    expect(sentRequests(session.run(call(2)))[0]?.request.requestNum).to.equal(8);
  });

  it('a node\'s refusal for good ends the call: not executed on the first attempt, maybe after a resend, executed when the answer was too large', () => {
    const first = registeredWithCall();
    const refusal = (reason: 'invalid_request' | 'unknown_namespace' | 'frame_too_large'): ClientInput => ({ type: 'refused', requestNum: 1, reason, message: 'no' });
    expect(results(first.run(refusal('invalid_request')))).to.deep.equal([{ callId: 1, result: { type: 'refused', reason: 'invalid_request', message: 'no', executed: false } }]);
    expect(isIdle(first.state)).to.equal(true);
    const resent = registeredWithCall();
    resent.ticks(resent.waitTicks());
    expect(results(resent.run(refusal('unknown_namespace')))).to.deep.equal([{ callId: 1, result: { type: 'refused', reason: 'unknown_namespace', message: 'no', executed: 'maybe' } }]);
    const large = registeredWithCall();
    expect(results(large.run(refusal('frame_too_large')))).to.deep.equal([{ callId: 1, result: { type: 'refused', reason: 'frame_too_large', message: 'no', executed: true } }]);
    // A refusal for another request number is stale: ignored.
    const other = registeredWithCall();
    expect(results(other.run({ type: 'refused', requestNum: 5, reason: 'invalid_request', message: 'no' }))).to.deep.equal([]);
    expect(other.state.outstanding?.request.requestNum).to.equal(1);
  });

  it('a refused register fails the call that waited for it, which was never sent', () => {
    const session = new Session();
    session.run(call(1));
    const effects = session.run({ type: 'refused', requestNum: 0, reason: 'unknown_namespace', message: 'gone' });
    expect(results(effects)).to.deep.equal([{ callId: 1, result: { type: 'refused', reason: 'unknown_namespace', message: 'gone', executed: false } }]);
    expect(isIdle(session.state)).to.equal(true);
  });

  it('is deterministic: the same seed and inputs give the same effects', () => {
    const inputs: ClientInput[] = [call(1), receive(registered()), ...Array.from({ length: 200 }, () => tick)];
    const a = new Session(defaultClientConfig, 5).run(...inputs);
    const b = new Session(defaultClientConfig, 5).run(...inputs);
    expect(a).to.deep.equal(b);
  });
});
