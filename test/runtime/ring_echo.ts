/**
 * The two-worker echo system the ring transport's runtime tests share: actor `a` in worker
 * `w1`, `b` in `w2` (test/runtime/fixtures/echo_actor.ts), and `host/probe` on the host thread
 * collecting what reaches it.
 */

import { ActorSystem, type SystemOptions } from '../../runtime/index.ts';
import type { Probe } from './helpers.ts';

const echo = new URL('./fixtures/echo_actor.ts', import.meta.url).href;

export function startRingEcho(probe: Probe, extra: Partial<SystemOptions> = {}): Promise<ActorSystem> {
  return ActorSystem.start({
    transport: 'ring',
    workers: [
      { name: 'w1', actors: [{ id: 'a', module: echo, init: { label: 'A' } }] },
      { name: 'w2', actors: [{ id: 'b', module: echo, init: { label: 'B' } }] },
    ],
    hostActors: [{ id: 'host/probe', factory: () => ({ receive: (batch) => batch.forEach((e) => probe.push(e.msg)) }), init: null }],
    logLevel: 'silent',
    ...extra,
  });
}
