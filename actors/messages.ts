/**
 * What haret's actors say to each other on top of the VR messages (src/vr/messages.ts):
 * ticks from the timer service, and calls and results between a caller (the embedding API's
 * endpoint, later a TCP connection) and the client proxy.
 */

import type { CallOutcome } from '../src/client/io.ts';
import type { TreeOp } from '../src/tree/ops.ts';

/**
 * Protocol time (DESIGN.md "Timer service"): `ticks` units of it passed (1 when absent). The
 * timer wakes its subscribers every `ticksPerWakeup` ticks and hands them that many at once
 * (actors/timer.ts), so an idle node wakes its threads a fraction as often.
 */
export type Tick = { readonly type: 'tick'; readonly ticks?: number };

/** The most ticks one tick message may stand for; a count outside 1..this is taken as 1. */
export const ticksPerMessageMax = 100;

/** How many ticks a tick message stands for: a bad count (a bug, or a forged message) counts once. */
export function tickCount(tick: Tick): number {
  const ticks = tick.ticks;
  return ticks !== undefined && Number.isSafeInteger(ticks) && ticks >= 1 && ticks <= ticksPerMessageMax ? ticks : 1;
}

/** A caller asks the proxy to run `op` on namespace `ns`; `callId` is the caller's handle. */
export type ProxyCall = { readonly type: 'call'; readonly callId: number; readonly ns: string; readonly op: TreeOp };

/** What a call ends with: a session's result, or a refusal by the proxy's session host itself. */
export type ProxyOutcome = CallOutcome;

export type ProxyResult = { readonly type: 'result'; readonly callId: number; readonly result: ProxyOutcome };

export function isTick(msg: unknown): msg is Tick {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'tick';
}

/** The node tells its proxy about a namespace created while it runs (replica actor ids by index). */
export type ProxyAddNamespace = { readonly type: 'add_namespace'; readonly name: string; readonly replicas: readonly string[] };

/** The node adds a subscriber to its timer service (a replica created while it runs). */
export type TimerSubscribe = { readonly type: 'subscribe'; readonly id: string; readonly everyTicks: number };
