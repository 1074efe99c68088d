/**
 * `startNode`: the embedding API (DESIGN.md "The shape in one picture"). A node is this
 * process: the main thread holds the supervisor, the mesh and the API endpoint; each replica,
 * the client proxy and the timer service run as actors on worker threads.
 */

import { ActorSystem, type HostActorSpec, type SystemEvent, type WorkerReport } from '../../runtime/system.ts';
import { wireLimitsFor } from '../api/wire.ts';
import { AdminServer } from '../net/admin.ts';
import { ClientApiServer } from '../net/server.ts';
import { defaultTreeLimits } from '../tree/limits.ts';
import type { ClientAnswer } from '../vr/messages.ts';
import type { ActorStatus } from '../../runtime/actor.ts';
import type { InjectedFault } from '../../runtime/protocol.ts';
import type { ReplicaStatusView } from '../../actors/replica.ts';
import { NamespaceClient } from './client.ts';
import { Endpoint } from './endpoint.ts';
import { HaretError } from './errors.ts';
import { resolveOptions, type NodeOptions, type ResolvedOptions } from './options.ts';
import { buildLayout, endpointId, netId, proxyId, replicaId, restartInit, timerId } from './placement.ts';

export type ActorReport = {
  readonly actor: string;
  readonly worker: string;
  /** The worker's supervision state: running, restarting, failed, stopped. */
  readonly state: WorkerReport['state'];
  readonly restarts: number;
  /** Why the supervisor gave up on the worker, if it did. */
  readonly failure: string | null;
  /** Replicas: primary or backup; otherwise the actor's kind. */
  readonly role: string | null;
  readonly ns: string | null;
  readonly status: string | null;
  readonly view: number | null;
  readonly op: number | null;
  readonly commit: number | null;
  readonly mailboxDepth: number | null;
  readonly mailboxDropped: number | null;
  /** The actor's own summary (counters), or null while its worker is down. */
  readonly detail: unknown;
};

/** One actor's report from its supervision state and, while it runs, its own summary. */
function actorReport(
  actor: string,
  worker: string,
  supervision: { readonly state: WorkerReport['state']; readonly restarts: number; readonly failure: string | null },
  live: ActorStatus | null,
): ActorReport {
  const view = (live?.status ?? null) as (Partial<ReplicaStatusView> & { role?: string }) | null;
  return {
    actor,
    worker,
    state: supervision.state,
    restarts: supervision.restarts,
    failure: supervision.failure,
    role: view?.role ?? null,
    ns: view?.ns ?? null,
    status: view?.status ?? null,
    view: view?.view ?? null,
    op: view?.op ?? null,
    commit: view?.commit ?? null,
    mailboxDepth: live?.mailbox.depth ?? null,
    mailboxDropped: live?.mailbox.dropped ?? null,
    detail: live?.status ?? null,
  };
}

export type NodeStatus = { readonly actors: readonly ActorReport[]; readonly workers: readonly WorkerReport[] };

export class HaretNode {
  readonly options: ResolvedOptions;
  readonly #system: ActorSystem;
  readonly #endpoint: Endpoint;
  readonly #clients = new Map<string, NamespaceClient>();
  #stopping: Promise<void> | null = null;

  readonly #clientApi: ClientApiServer | null;
  #admin: AdminServer | null = null;

  /** Use `startNode`. */
  constructor(options: ResolvedOptions, system: ActorSystem, endpoint: Endpoint, clientApi: ClientApiServer | null = null) {
    this.options = options;
    this.#system = system;
    this.#endpoint = endpoint;
    this.#clientApi = clientApi;
  }

  /** Where the admin API listens, or null when the node has none. */
  get adminApiAddress(): { readonly host: string; readonly port: number } | null {
    return this.#admin?.address() ?? null;
  }

  /** Called by `startNode` once the admin API listens. */
  attachAdmin(admin: AdminServer): void {
    this.#admin = admin;
  }

  /** Where the TCP client API listens, or null when the node has none. */
  get clientApiAddress(): { readonly host: string; readonly port: number } | null {
    return this.#clientApi?.address() ?? null;
  }

  get namespaces(): string[] {
    return this.options.namespaces.map((ns) => ns.name);
  }

  /** The typed client of a namespace; throws HaretError `unknown_namespace` for one this node does not serve. */
  client(namespace = 'default'): NamespaceClient {
    const ns = this.options.namespaces.find((candidate) => candidate.name === namespace);
    if (ns === undefined) throw new HaretError('unknown_namespace', `no namespace ${namespace} on this node`, false);
    let client = this.#clients.get(namespace);
    if (client === undefined) {
      client = new NamespaceClient(namespace, (name, op) => this.#endpoint.call(name, op), ns.config.treeLimits);
      this.#clients.set(namespace, client);
    }
    return client;
  }

  /** Every actor with its supervision state and protocol position. */
  async status(): Promise<NodeStatus> {
    const workers = await this.#system.status();
    const actors: ActorReport[] = [];
    for (const worker of workers) {
      const spec = this.#workerActors(worker.name);
      for (const actor of spec) {
        actors.push(actorReport(actor, worker.name, worker, worker.detail?.actors.find((candidate) => candidate.id === actor) ?? null));
      }
    }
    const live = new Map(this.#system.host.status().map((actor) => [actor.id, actor]));
    for (const report of this.#system.hostActorReports()) {
      actors.push(actorReport(report.actor, 'host', report, live.get(report.actor) ?? null));
    }
    return { actors, workers };
  }

  /** The replica index that is a normal-status primary in the highest view, or null. */
  async primaryOf(namespace: string): Promise<number | null> {
    const { actors } = await this.status();
    let best: ActorReport | null = null;
    for (const actor of actors) {
      if (actor.ns !== namespace || actor.role !== 'primary' || actor.status !== 'normal') continue;
      if (best === null || (actor.view ?? 0) > (best.view ?? 0)) best = actor;
    }
    return best === null ? null : Number(best.actor.slice(best.actor.lastIndexOf('/r') + 2));
  }

  /** The larger protocol view of one actor (control plane, with a timeout). */
  inspect(actor: string): Promise<unknown> {
    return this.#system.inspect(actor);
  }

  /** Fault injection for tests and chaos drills: acts on the worker hosting `actor`. */
  readonly faults = {
    /** Kills the worker outright (`terminate()`), like a crash. */
    terminate: (actor: string): Promise<void> => this.#system.terminate(this.#workerOf(actor)),
    /** Makes the worker fail from inside an actor's handler: throw, process.exit, or out of memory. */
    inject: (actor: string, fault: InjectedFault): Promise<void> => this.#system.injectFault(this.#workerOf(actor), fault),
    /** Makes an actor on the main thread (the proxy with proxyPlacement host) throw inside its next handler call. */
    crashHostActor: (actor: string): void => this.#system.crashHostActor(actor),
    /** Delivers an arbitrary message to an actor as if a peer sent it (bad-input drills). */
    sendRaw: (to: string, msg: unknown, from = 'host/api'): void => this.#system.send({ from, to, msg }),
  };

  /** Heap bytes per worker after a full GC in each (exact when the process runs with --expose-gc). */
  collectGarbage(): Promise<Record<string, number>> {
    return this.#system.collectGarbage();
  }

  replicaId(namespace: string, index: number): string {
    return replicaId(namespace, index);
  }

  /** Stops every worker and closes every port and timer; pending calls reject with `stopped`. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#admin?.close();
      await this.#clientApi?.close();
      this.#endpoint.close();
      await this.#system.stop();
    })();
    return this.#stopping;
  }

  /** Called by the system's event hook. */
  onSystemEvent(event: SystemEvent): void {
    const proxyDied =
      (event.type === 'worker_exited' && !event.exit.requested && this.#system.threadOf(proxyId) === event.worker) ||
      (event.type === 'host_actor_crashed' && event.actor === proxyId);
    if (proxyDied) this.#endpoint.failAll('proxy_restarted');
  }

  #workerOf(actor: string): string {
    const worker = this.#system.threadOf(actor);
    if (worker === undefined || worker === 'host') throw new RangeError(`no worker hosts ${actor}`);
    return worker;
  }

  #workerActors(worker: string): string[] {
    return this.#system.actorsOf(worker);
  }
}

/** Starts a node; resolves once every actor is running. Options are validated first (RangeError). */
export async function startNode(options: NodeOptions = {}): Promise<HaretNode> {
  const resolved = resolveOptions(options);
  const endpoint = new Endpoint(endpointId, proxyId, resolved.callDeadlineMs);
  let node: HaretNode | null = null;
  const layout = buildLayout(resolved);
  // The TCP client API's actor: replicas route answers to it like to any client's sender.
  let clientApi: ClientApiServer | null = null;
  const hostActors: HostActorSpec[] = [{ id: endpointId, factory: endpoint.factory, init: null }];
  if (resolved.clientApi !== undefined) {
    hostActors.push({
      id: netId,
      factory: () => ({
        receive: (batch) => {
          for (const envelope of batch) clientApi?.onAnswer(envelope.msg as ClientAnswer);
        },
        status: () => ({ role: 'client_api', ...clientApi?.counters }),
      }),
      init: null,
    });
  }
  const system = await ActorSystem.start({
    workers: layout.workers,
    hostActors,
    hostActorSpecs: layout.hostActors,
    codec: resolved.codec,
    ...(resolved.logLevel === undefined ? {} : { logLevel: resolved.logLevel }),
    supervisor: resolved.supervisor,
    controlTimeoutMs: resolved.controlTimeoutMs,
    restartInit,
    onEvent: (event) => node?.onSystemEvent(event),
  });
  if (resolved.clientApi !== undefined) {
    try {
      clientApi = await ClientApiServer.start(
        {
          nodeName: resolved.name,
          namespaces: resolved.namespaces.map((ns) => ({ name: ns.name, replicas: Array.from({ length: ns.config.replicaCount }, (_, i) => replicaId(ns.name, i)) })),
          limits: wireLimitsFor(resolved.namespaces[0]?.config.treeLimits ?? defaultTreeLimits),
          send: (to, request) => system.send({ from: netId, to, msg: request }),
        },
        resolved.clientApi,
      );
    } catch (error) {
      await system.stop();
      throw error;
    }
  }
  node = new HaretNode(resolved, system, endpoint, clientApi);
  if (resolved.adminApi !== undefined) {
    try {
      node.attachAdmin(await AdminServer.start(node, resolved.adminApi));
    } catch (error) {
      await node.stop();
      throw error;
    }
  }
  // Every actor exists now: time may start (see TimerInit.paused).
  system.send({ from: endpointId, to: timerId, msg: { type: 'resume' }, control: true });
  return node;
}
