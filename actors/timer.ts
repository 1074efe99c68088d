/**
 * The timer service (DESIGN.md): the only place wall-clock time exists. Every `tickMs` it
 * counts a tick and sends one to each subscriber whose period has come round (replicas every
 * tick; the client proxy, whose sessions only need coarse retry timers, less often, so a
 * thousand idle-waiting sessions do not cost a thousand transitions per tick). The protocol
 * counts ticks, never milliseconds. Ticks to a
 * subscriber whose worker is down are simply lost, like any message.
 *
 * The service wakes every `ticksPerWakeup` ticks, not every tick, and each tick message says
 * how many ticks it stands for (`Tick.ticks`): an idle node then costs its threads one wake-up
 * and one transition per `ticksPerWakeup` ticks. Measured on an idle `haret start` (3
 * replicas) at one tick per wake-up: ~19% of a core, each replica thread ~2% (a transition and
 * a wake-up every 10 ms) and this thread ~3%. Counting is unchanged: a subscriber sees the same
 * number of ticks, only up to `ticksPerWakeup - 1` ticks later, so a timeout never fires early.
 */

import type { Actor, ActorContext } from '../runtime/actor.ts';
import { every, type Interval } from '../runtime/clock.ts';
import type { ActorId } from '../runtime/envelope.ts';
import { ticksPerMessageMax, type Tick, type TimerSubscribe } from './messages.ts';

/** A subscriber gets a tick every `everyTicks` ticks of the service (1: every tick). */
export type TimerSubscriber = { readonly id: ActorId; readonly everyTicks: number };

export type TimerInit = {
  readonly tickMs: number;
  /** Ticks counted per wake-up and delivered in one message (1 when absent). */
  readonly ticksPerWakeup?: number;
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

const oneTick: Tick = { type: 'tick' };

export function createActor(context: ActorContext, init: unknown): Actor {
  const { tickMs, paused } = init as TimerInit;
  const perWakeup = (init as TimerInit).ticksPerWakeup ?? 1;
  if (!Number.isSafeInteger(perWakeup) || perWakeup < 1 || perWakeup > ticksPerMessageMax) throw new RangeError(`timer ticksPerWakeup must be an integer in 1..${ticksPerMessageMax}`);
  /** Tick messages by count, made once: a wake-up sends the same few messages every time. */
  const ticksByCount = new Map<number, Tick>([[1, oneTick]]);
  const tickOf = (count: number): Tick => {
    let message = ticksByCount.get(count);
    if (message === undefined) {
      message = { type: 'tick', ticks: count };
      ticksByCount.set(count, message);
    }
    return message;
  };
  const subscribers = [...(init as TimerInit).subscribers];
  if (!Number.isFinite(tickMs) || tickMs < 1) throw new RangeError('timer tickMs must be at least 1');
  for (const subscriber of subscribers) {
    if (!Number.isSafeInteger(subscriber.everyTicks) || subscriber.everyTicks < 1) throw new RangeError(`timer: everyTicks of ${subscriber.id} must be a positive integer`);
  }
  let ticks = 0;
  let interval: Interval | null = null;
  const start = (): void => {
    interval ??= every(tickMs * perWakeup, () => {
      const before = ticks;
      ticks += perWakeup;
      for (const subscriber of subscribers) {
        // How many of this subscriber's periods ended within the ticks just counted.
        const due = Math.floor(ticks / subscriber.everyTicks) - Math.floor(before / subscriber.everyTicks);
        if (due > 0) context.send(subscriber.id, tickOf(due));
      }
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
    status: () => ({ role: 'timer', tickMs, ticksPerWakeup: perWakeup, ticks, subscribers: subscribers.length, running: interval !== null }),
    stop: () => interval?.cancel(),
  };
}
