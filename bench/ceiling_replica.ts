/**
 * The transport ceiling's stand-in for the replica actor: the same inputs and message flow as
 * VR's normal case (request -> primary -> prepare to backups -> prepare_ok -> reply), with the
 * protocol and the tree replaced by an echo. The primary answers a request once one backup
 * acknowledged it (a quorum of 3), so the ceiling has the same hop count as the real path.
 * Batching mirrors the real primary: everything drained together goes in one prepare.
 */

import type { Actor, ActorContext } from '../runtime/actor.ts';
import type { Envelope } from '../runtime/envelope.ts';
import type { ReplicaInit } from '../actors/replica.ts';
import type { Reply, Request } from '../src/vr/messages.ts';

type EchoPrepare = { readonly type: 'echo_prepare'; readonly op: number; readonly requests: readonly Request[] };
type EchoPrepareOk = { readonly type: 'echo_prepare_ok'; readonly op: number };

export function createActor(context: ActorContext, init: unknown): Actor {
  const spec = init as ReplicaInit;
  const primary = spec.index === 0;
  let op = 0;
  const waiting = new Map<number, { readonly requests: readonly Request[]; readonly from: readonly string[] }>();
  const lastNum = new Map<string, number>();
  return {
    receive(batch: readonly Envelope[]) {
      const requests: Request[] = [];
      const from: string[] = [];
      for (const envelope of batch) {
        const msg = envelope.msg as { type?: string };
        if (msg.type === 'request' && primary) {
          requests.push(msg as Request);
          from.push(envelope.from);
        } else if (msg.type === 'echo_prepare') {
          const prepare = msg as EchoPrepare;
          const ok: EchoPrepareOk = { type: 'echo_prepare_ok', op: prepare.op };
          context.send(envelope.from, ok);
        } else if (msg.type === 'echo_prepare_ok' && primary) {
          const entry = waiting.get((msg as EchoPrepareOk).op);
          if (entry === undefined) continue;
          waiting.delete((msg as EchoPrepareOk).op);
          entry.requests.forEach((request, i) => {
            const registered = request.op.type === 'register';
            const reply: Reply = {
              type: 'reply',
              epoch: 0,
              view: 0,
              op: (msg as EchoPrepareOk).op,
              clientId: request.clientId,
              requestNum: request.requestNum,
              body: registered
                ? { type: 'registered', isNew: true, lastRequestNum: lastNum.get(request.clientId) ?? 0 }
                : { type: 'tree', outcome: { type: 'ok', version: request.requestNum } },
            };
            lastNum.set(request.clientId, request.requestNum);
            context.send(entry.from[i] ?? spec.defaultProxy, reply);
          });
        }
      }
      if (requests.length > 0) {
        op += 1;
        waiting.set(op, { requests, from });
        const prepare: EchoPrepare = { type: 'echo_prepare', op, requests };
        for (const replica of spec.replicas) if (replica !== context.self) context.send(replica, prepare);
      }
    },
    status: () => ({ role: primary ? 'primary' : 'backup', ns: spec.ns, index: spec.index, status: 'normal', view: 0, op, commit: op }),
  };
}
