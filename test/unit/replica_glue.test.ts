/** The replica actor's glue (actors/replica.ts) on its own: what it does before the core sees a message. */

import { expect } from 'chai';
import { createReplica, type ReplicaPorts } from '../../actors/replica.ts';
import type { Envelope } from '../../runtime/envelope.ts';
import { makeReplicaConfig } from '../../src/vr/config.ts';

describe('replica glue', () => {
  it('a malformed request carrying a real session\'s client id does not redirect that session\'s replies', () => {
    const sent: { to: string; msg: { type?: string } }[] = [];
    const ports: ReplicaPorts = {
      send: (to, msg) => sent.push({ to, msg: msg as { type?: string } }),
      persist: () => undefined,
      trace: () => undefined,
      encodeCheckpoint: () => undefined,
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
});
