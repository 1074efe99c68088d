/**
 * Tick-counted timeouts. The view-change timeout is randomised per replica from the seeded
 * PRNG held in state (VRR §4.2 leaves timeouts open; randomising them keeps replicas from
 * starting view changes in lockstep and duelling).
 */

import type { Ctx } from './context.ts';
import { nextInt } from '../base/prng.ts';

/** Restarts the silence timer with a fresh randomised timeout. */
export function resetViewChangeTimer(ctx: Ctx): void {
  const { config } = ctx.s;
  const jitter = nextInt(ctx.s.prng, config.viewChangeJitterTicks);
  ctx.s.prng = jitter.prng;
  ctx.s.timers.idleTicks = 0;
  ctx.s.timers.timeoutTicks = config.viewChangeTimeoutTicks + jitter.value;
}
