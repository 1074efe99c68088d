/**
 * The timer service (DESIGN.md): the only place wall-clock time exists. Every `tickMs` it
 * counts a tick and sends one to each subscriber whose period has come round (replicas every
 * tick; the client proxy, whose sessions only need coarse retry timers, less often, so a
 * thousand idle-waiting sessions do not cost a thousand transitions per tick). The protocol
 * counts ticks, never milliseconds. Ticks to a
 * subscriber whose worker is down are simply lost, like any message.
 */

import type { Actor, ActorContext } from '../runtime/actor.ts';
import { every } from '../runtime/clock.ts';
import type { ActorId } from '../runtime/envelope.ts';
import type { Tick } from './messages.ts';

/** A subscriber gets a tick every `everyTicks` ticks of the service (1: every tick). */
export type TimerSubscriber = { readonly id: ActorId; readonly everyTicks: number };

export type TimerInit = { readonly tickMs: number; readonly subscribers: readonly TimerSubscriber[] };

const tick: Tick = { type: 'tick' };

export function createActor(context: ActorContext, init: unknown): Actor {
  const { tickMs, subscribers } = init as TimerInit;
  if (!Number.isFinite(tickMs) || tickMs < 1) throw new RangeError('timer tickMs must be at least 1');
  for (const subscriber of subscribers) {
    if (!Number.isSafeInteger(subscriber.everyTicks) || subscriber.everyTicks < 1) throw new RangeError(`timer: everyTicks of ${subscriber.id} must be a positive integer`);
  }
  let ticks = 0;
  const interval = every(tickMs, () => {
    ticks += 1;
    for (const subscriber of subscribers) if (ticks % subscriber.everyTicks === 0) context.send(subscriber.id, tick);
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
