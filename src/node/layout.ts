/**
 * A node's layout: which actors it runs and on which threads. Actor ids: `<ns>/r<i>` for replicas,
 * `proxy`, `timer`, and `host/api` for the embedding API's endpoint on the main thread.
 */

import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { ActorSpec } from '../../runtime/actor.ts';
import type { WorkerSpec } from '../../runtime/system.ts';
import type { ProxyInit } from '../../actors/client_proxy.ts';
import type { ReplicaInit } from '../../actors/replica.ts';
import type { TimerInit, TimerSubscriber } from '../../actors/timer.ts';
import type { ResolvedOptions } from './options.ts';

export const proxyId = 'proxy';
export const timerId = 'timer';
export const endpointId = 'host/api';
/** The TCP client API's actor on the main thread (when the node serves one). */
export const netId = 'host/net';

export function replicaId(ns: string, index: number): string {
  return `${ns}/r${index}`;
}

/** The module of each actor kind, next to this file in both the sources and the compiled output. */
export function actorModule(name: 'replica' | 'durable_replica' | 'client_proxy' | 'timer'): string {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`../../actors/${name}${extension}`, import.meta.url).href;
}

/** A durable replica's own directory under the node's data directory (actors/storage/replica_store.ts). */
export function replicaDir(dataDir: string, ns: string, index: number): string {
  return join(dataDir, 'replicas', `${ns}.r${index}`);
}

/** The module a replica runs: the durable actor over its store, or the in-memory one. */
export function replicaModule(options: ResolvedOptions): string {
  return options.replicaModule ?? actorModule(options.durable ? 'durable_replica' : 'replica');
}

/** What a durable replica's init carries about its storage; nothing for an in-memory one. */
export function replicaStorage(options: ResolvedOptions, ns: string, index: number): Pick<ReplicaInit, 'storage'> {
  if (!options.durable || options.dataDir === undefined) return {};
  return { storage: { dir: replicaDir(options.dataDir, ns, index), node: options.name } };
}

export function isReplicaInit(init: unknown): init is ReplicaInit {
  return typeof init === 'object' && init !== null && 'nonce' in init && 'replicas' in init;
}

function isTimerInit(init: unknown): init is TimerInit {
  return typeof init === 'object' && init !== null && 'tickMs' in init && 'subscribers' in init;
}

/**
 * A restarted replica never trusts a dead worker's memory: recovering, with a fresh nonce
 * (VRR §4.3). A restarted timer ticks at once (the node is already up).
 */
export function restartInit(spec: ActorSpec): unknown {
  if (isTimerInit(spec.init)) return { ...spec.init, paused: false };
  if (!isReplicaInit(spec.init)) return spec.init;
  const init: ReplicaInit = { ...spec.init, mode: 'recovering', nonce: randomInt(1, 2 ** 31), seed: randomInt(2 ** 31) };
  return init;
}

/** Room in the proxy's mailbox beyond the calls in flight: replicas' answers (one per busy session) and ticks. */
export const proxyMailboxMargin = 100_000;

/** The name of the proxy's worker, when it runs in one (`proxyThread: 'worker'`). */
export const proxyWorker = 'proxy';

export type Layout = {
  readonly workers: WorkerSpec[];
  readonly hostActors: ActorSpec[];
  readonly timerInit: TimerInit;
  readonly proxyInit: ProxyInit;
  /** The proxy's worker, or null when the proxy runs on the main thread (`proxyThread: 'host'`). */
  readonly proxyWorker: string | null;
};

/**
 * `startOf`: how each of the node's own namespaces starts. `fresh` for a new group; a namespace
 * that may hold data says `recovering`, and each durable replica then resumes from its store
 * when that is intact (actors/durable_replica.ts). See src/node/data_dir.ts `startModes`.
 */
export function buildLayout(options: ResolvedOptions, startOf: (ns: string) => 'fresh' | 'recovering' = () => 'fresh'): Layout {
  const replicaSpecs: { index: number; spec: ActorSpec }[] = [];
  const proxyNamespaces: Record<string, readonly string[]> = {};
  const subscribers: TimerSubscriber[] = [{ id: proxyId, everyTicks: options.clientTickEvery }];
  for (const ns of options.namespaces) {
    const replicas = Array.from({ length: ns.config.replicaCount }, (_, index) => replicaId(ns.name, index));
    const start = startOf(ns.name);
    proxyNamespaces[ns.name] = replicas;
    replicas.forEach((id, index) => {
      const init: ReplicaInit = {
        ns: ns.name,
        index,
        config: ns.config,
        replicas,
        defaultProxy: proxyId,
        mode: start,
        nonce: start === 'recovering' ? randomInt(1, 2 ** 31) : 0,
        seed: randomInt(2 ** 31),
        watch: options.watch,
        ...replicaStorage(options, ns.name, index),
      };
      replicaSpecs.push({ index, spec: { id, module: replicaModule(options), init } });
      subscribers.push({ id, everyTicks: 1 });
    });
  }
  const proxyInit: ProxyInit = { namespaces: proxyNamespaces, client: options.client, sessionsMax: options.sessionsMax, waitingMax: options.waitingMax };
  const timerInit: TimerInit = { tickMs: options.tickMs, ticksPerWakeup: options.ticksPerWakeup, subscribers, paused: true };
  const limits = options.replicaResourceLimits === undefined ? {} : { resourceLimits: options.replicaResourceLimits };
  const workers: WorkerSpec[] = [];
  const hostActors: ActorSpec[] = [];
  if (options.workerLayout === 'main_thread') {
    hostActors.push(...replicaSpecs.map(({ spec }) => spec));
  } else if (options.workerLayout === 'actor_per_worker') {
    for (const { spec } of replicaSpecs) workers.push({ name: spec.id.replace('/', '.'), actors: [spec], ...limits });
  } else if (options.workerLayout === 'single') {
    workers.push({ name: 'replicas', actors: replicaSpecs.map(({ spec }) => spec), ...limits });
  } else {
    const byIndex = new Map<number, ActorSpec[]>();
    for (const { index, spec } of replicaSpecs) byIndex.set(index, [...(byIndex.get(index) ?? []), spec]);
    for (const [index, actors] of byIndex) workers.push({ name: `replicas.${index}`, actors, ...limits });
  }
  // Every embedded call in flight may sit in the proxy's mailbox at once, beside the replicas'
  // answers and ticks: the endpoint caps calls (callsInFlightMax), so this mailbox never drops one.
  const proxy: ActorSpec = { id: proxyId, module: actorModule('client_proxy'), init: proxyInit, mailboxCapacity: options.callsInFlightMax + proxyMailboxMargin };
  if (options.proxyThread === 'host') hostActors.push(proxy);
  else workers.push({ name: proxyWorker, actors: [proxy] });
  workers.push({ name: 'timer', actors: [{ id: timerId, module: actorModule('timer'), init: timerInit }] });
  return { workers, hostActors, timerInit, proxyInit, proxyWorker: options.proxyThread === 'host' ? null : proxyWorker };
}

/** The worker of one replica of a namespace created while the node runs (one worker each). */
export function clusterReplicaWorker(options: ResolvedOptions, init: ReplicaInit): WorkerSpec {
  const id = replicaId(init.ns, init.index);
  const limits = options.replicaResourceLimits === undefined ? {} : { resourceLimits: options.replicaResourceLimits };
  return { name: id.replace('/', '.'), actors: [{ id, module: replicaModule(options), init }], ...limits };
}
