/**
 * The timer service (DESIGN.md): the only place wall-clock time exists. Every `tickMs` it
 * counts a tick and sends one to each subscriber whose period has come round (replicas every
 * tick; the client proxy, whose sessions only need coarse retry timers, less often, so a
 * thousand idle-waiting sessions do not cost a thousand transitions per tick). The protocol
 * counts ticks, never milliseconds. Ticks to a
 * subscriber whose worker is down are simply lost, like any message.
 */

import type { Actor, ActorContext } from '../runtime/actor.ts';
import { every, type Interval } from '../runtime/clock.ts';
import type { ActorId } from '../runtime/envelope.ts';
import type { Tick, TimerSubscribe } from './messages.ts';

/** A subscriber gets a tick every `everyTicks` ticks of the service (1: every tick). */
export type TimerSubscriber = { readonly id: ActorId; readonly everyTicks: number };

export type TimerInit = {
  readonly tickMs: number;
  readonly subscribers: readonly TimerSubscriber[];
  /**
   * Start without ticking until a `resume` message arrives: a node resumes the timer once every
   * worker is up, so replicas whose workers happen to start first do not time out waiting for
   * a primary that is still loading and start a needless view change.
   */
  readonly paused: boolean;
};

/** Starts a paused timer service. */
export type TimerResume = { readonly type: 'resume' };

const tick: Tick = { type: 'tick' };

export function createActor(context: ActorContext, init: unknown): Actor {
  const { tickMs, paused } = init as TimerInit;
  const subscribers = [...(init as TimerInit).subscribers];
  if (!Number.isFinite(tickMs) || tickMs < 1) throw new RangeError('timer tickMs must be at least 1');
  for (const subscriber of subscribers) {
    if (!Number.isSafeInteger(subscriber.everyTicks) || subscriber.everyTicks < 1) throw new RangeError(`timer: everyTicks of ${subscriber.id} must be a positive integer`);
  }
  let ticks = 0;
  let interval: Interval | null = null;
  const start = (): void => {
    interval ??= every(tickMs, () => {
      ticks += 1;
      for (const subscriber of subscribers) if (ticks % subscriber.everyTicks === 0) context.send(subscriber.id, tick);
    });
  };
  if (!paused) start();
  const subscribe = (message: TimerSubscribe): void => {
    const valid = typeof message.id === 'string' && Number.isSafeInteger(message.everyTicks) && message.everyTicks >= 1;
    if (!valid) context.log.warn({ message }, 'timer_bad_subscribe');
    else if (!subscribers.some((subscriber) => subscriber.id === message.id)) subscribers.push({ id: message.id, everyTicks: message.everyTicks });
  };
  return {
    receive(batch) {
      for (const envelope of batch) {
        const type = (envelope.msg as { type?: unknown } | null)?.type;
        if (type === 'resume') start();
        else if (type === 'subscribe') subscribe(envelope.msg as TimerSubscribe);
        // Anything else sent to the timer is a bug elsewhere, traced and dropped.
        else context.log.debug({ from: envelope.from }, 'timer_ignored_envelope');
      }
    },
    status: () => ({ role: 'timer', tickMs, ticks, subscribers: subscribers.length, running: interval !== null }),
    stop: () => interval?.cancel(),
  };
}
