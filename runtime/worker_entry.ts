/**
 * The entry of every runtime worker: builds the thread's actor host and transport from
 * `workerData`, wires peer links as the host sends them, starts actors on `start`, and
 * exposes the control API over comlink on its own port.
 */

import { PerformanceObserver } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { nodeEndpoint } from './comlink_node.ts';
import { answerTransfersOf } from './actor.ts';
import { ActorHost, crashedStopOutcome } from './actor_host.ts';
import { makeCodec } from './codec.ts';
import { makeLogger } from './logger.ts';
import { makeOffload } from './offload.ts';
import type { HostToWorker, InjectedFault, WorkerBoot, WorkerControl, WorkerToHost } from './protocol.ts';
import { transportKind } from './mesh.ts';

const boot = workerData as WorkerBoot;
const port = parentPort;
if (port === null) throw new Error('worker_entry must run in a worker thread');

const log = makeLogger(boot.logLevel, { thread: boot.name });
const offload = makeOffload(boot.offload);
/**
 * boot.containCrashes (a worker of several actors): an actor's throw ends that actor only. Its
 * stop() must finish before the host may re-create it (a durable replica's successor opens the
 * same files); one that does not finish in time takes the worker down, and the worker's
 * supervisor restarts every actor of it, as a throw always did before.
 */
function onActorCrash(actor: string, error: unknown, stopped: Promise<void>): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  // Past crashedStopMs the crash is escalated to the whole worker.
  void crashedStopOutcome(stopped, { unref: false }).then((outcome) => {
    if (outcome === 'late') {
      log.error({ actor, error: text }, 'crashed_actor_stop_timeout');
      process.exit(4);
    }
    post({ kind: 'actor_crashed', actor, error: text });
  });
}

const host = new ActorHost(boot.name, log, offload, boot.containCrashes ? onActorCrash : null);
// Actors this worker does not know (another node's, or on a worker added after this one
// booted) are reached through the host thread, which relays.
const router = transportKind(boot.transport).create(boot.name, new Map(boot.directory), makeCodec(boot.codec), (batch, local) => host.deliver(batch, local), { defaultThread: 'host' });
host.attach(router);

function post(message: WorkerToHost): void {
  port?.postMessage(message);
}

port.on('message', (message: HostToWorker) => {
  switch (message.kind) {
    case 'peer':
      router.setPeer(message.name, message.link);
      return;
    case 'drop_peer':
      router.dropPeer(message.name);
      return;
    case 'routes':
      router.addRoutes(message.entries);
      return;
    case 'start':
      void Promise.all(boot.actors.map((spec) => host.spawn(spec))).then(
        () => post({ kind: 'started' }),
        (error: unknown) => post({ kind: 'start_failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
      return;
    case 'respawn': {
      const actor = message.spec.id;
      // One that runs already (a late duplicate request) is not made twice.
      const made = host.has(actor) ? Promise.resolve() : host.spawn(message.spec);
      void made.then(
        () => post({ kind: 'respawned', actor }),
        (error: unknown) => post({ kind: 'respawn_failed', actor, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
      return;
    }
    default: {
      const never: never = message;
      log.warn({ message: never }, 'unknown_host_message');
    }
  }
});

function faultHook(fault: InjectedFault): () => void {
  switch (fault) {
    case 'throw':
      return () => {
        throw new Error(`injected fault in ${boot.name}`);
      };
    case 'exit':
      return () => process.exit(3);
    case 'exhaust_memory':
      return () => {
        const hoard: number[][] = [];
        for (;;) hoard.push(new Array<number>(1 << 20).fill(hoard.length));
      };
    default: {
      const never: never = fault;
      throw new RangeError(`unknown fault ${String(never)}`);
    }
  }
}

function loopTime(): { activeMs: number; idleMs: number } {
  const elu = performance.eventLoopUtilization();
  return { activeMs: elu.active, idleMs: elu.idle };
}

// Time this thread spent in garbage collection, for the status report (the runtime
// benchmark's GC share per thread): no other source gives a worker's GC time in Node 20.
let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
});
gcObserver.observe({ entryTypes: ['gc'] });

const control: WorkerControl = {
  status: () => ({
    thread: boot.name,
    actors: host.status(),
    router: router.stats(),
    unknownActorDrops: host.unknownActorDrops(),
    offloaded: offload.completed(),
    heapUsedBytes: process.memoryUsage().heapUsed,
    loop: loopTime(),
    gcMs,
  }),
  inspect: (actor) => host.inspect(actor),
  query: async (actor, request) => {
    const answer = await host.query(actor, request);
    const buffers = answerTransfersOf(answer);
    return buffers.length === 0 ? answer : Comlink.transfer(answer, [...buffers]);
  },
  injectFault: (fault) => host.injectFault(faultHook(fault)),
  crashActor: (actor) => host.crashNext(actor),
  collectGarbage: () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    return { heapUsedBytes: process.memoryUsage().heapUsed, collected: gc !== undefined };
  },
  async stop() {
    await host.stop();
    router.close();
    gcObserver.disconnect();
    await offload.close();
  },
};

Comlink.expose(control, nodeEndpoint(boot.controlPort));
log.debug({ actors: boot.actors.map((spec) => spec.id) }, 'worker_booted');
