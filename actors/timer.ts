/**
 * The timer service (DESIGN.md): the only place wall-clock time exists. Every `tickMs` it
 * sends a tick to each subscriber; the protocol counts ticks, never milliseconds. Ticks to a
 * subscriber whose worker is down are simply lost, like any message.
 */

import type { Actor, ActorContext } from '../runtime/actor.ts';
import { every } from '../runtime/clock.ts';
import type { ActorId } from '../runtime/envelope.ts';
import type { Tick } from './messages.ts';

export type TimerInit = { readonly tickMs: number; readonly subscribers: readonly ActorId[] };

const tick: Tick = { type: 'tick' };

export function createActor(context: ActorContext, init: unknown): Actor {
  const { tickMs, subscribers } = init as TimerInit;
  if (!Number.isFinite(tickMs) || tickMs < 1) throw new RangeError('timer tickMs must be at least 1');
  let ticks = 0;
  const interval = every(tickMs, () => {
    ticks += 1;
    for (const subscriber of subscribers) context.send(subscriber, tick);
  });
  return {
    receive(batch) {
      // The timer takes no requests; anything sent to it is a bug elsewhere, traced and dropped.
      if (batch.length > 0) context.log.debug({ count: batch.length }, 'timer_ignored_envelopes');
    },
    status: () => ({ role: 'timer', tickMs, ticks, subscribers: subscribers.length }),
    stop: () => interval.cancel(),
  };
}
