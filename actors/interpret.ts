/**
 * The shared effect interpreter: executes a replica's effects strictly in the order `step`
 * returned them (DESIGN.md "Replica actor"). What each kind of effect does is supplied by the
 * host (the replica glue in ./replica.ts, run by the actor runtime and by the simulator), so
 * both execute effects under the same ordering rules.
 */

import { assertNever } from '../src/base/assert.ts';
import type { AppliedEntry, ReplicaEffect, PersistRecord, TraceEvent } from '../src/vr/io.ts';
import type { ClientAnswer, PeerMessage } from '../src/vr/messages.ts';

export type EffectSinks = {
  /** A committed entry was applied (the watch hub's input). */
  applied(effect: AppliedEntry): void;
  send(to: number, message: PeerMessage): void;
  reply(clientId: string, message: ClientAnswer): void;
  persist(record: PersistRecord, generation: number, op: number): void;
  trace(trace: TraceEvent): void;
};

export function interpretEffects(effects: readonly ReplicaEffect[], sinks: EffectSinks): void {
  for (const effect of effects) {
    switch (effect.type) {
      case 'applied':
        sinks.applied(effect);
        break;
      case 'send':
        sinks.send(effect.to, effect.message);
        break;
      case 'reply':
        sinks.reply(effect.clientId, effect.message);
        break;
      case 'persist':
        sinks.persist(effect.record, effect.generation, effect.op);
        break;
      case 'trace':
        sinks.trace(effect.trace);
        break;
      default:
        assertNever(effect, 'replica effect');
    }
  }
}
