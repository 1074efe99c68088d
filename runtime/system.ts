/**
 * The actor system of one node, on the host (main) thread: spawns the workers, links every
 * pair of threads (the host included) through the node's transport (mesh.ts), puts each worker
 * and each module-loaded host actor under one `Supervised` unit, and answers status. This file
 * composes; restarts, intensity and cool-down live in supervised.ts, the data path behind
 * `Transport`. It knows actors only as specs and envelopes; what they mean is the caller's
 * business (the runtime imports nothing of the core).
 */

import type { ResourceLimits } from 'node:worker_threads';
import type { ActorFactory, ActorSpec } from './actor.ts';
import { ActorHost, crashedStopMs, crashedStopOutcome } from './actor_host.ts';
import { makeCodec, type CodecName } from './codec.ts';
import type { ActorId, Envelope } from './envelope.ts';
import { makeLogger, resolveLogLevel, type LogLevel, type Logger } from './logger.ts';
import { defaultOffloadOptions, makeOffload, type Offload, type OffloadOptions } from './offload.ts';
import type { InjectedFault, WorkerStatus } from './protocol.ts';
import { defaultTransportName, transportKind, type TransportName } from './mesh.ts';
import { Supervised, type SupervisedState } from './supervised.ts';
import { defaultSupervisorOptions, validateSupervisorOptions, type SupervisorOptions } from './supervisor.ts';
import type { LinkSink, Transport, TransportKind } from './transport.ts';
import { WorkerHandle, type WorkerExit } from './worker_handle.ts';

/** The host thread's name in the directory. */
export const hostThread = 'host';

export type WorkerSpec = {
  /** Unique among the node's threads, and not `host`. */
  readonly name: string;
  readonly actors: readonly ActorSpec[];
  readonly resourceLimits?: ResourceLimits;
};

export type HostActorSpec = { readonly id: ActorId; readonly factory: ActorFactory; readonly init: unknown };

export type SystemOptions = {
  readonly workers: readonly WorkerSpec[];
  /** Actors that run on the host thread (e.g. the embedding API's endpoint). */
  readonly hostActors?: readonly HostActorSpec[];
  /**
   * Actors loaded from a module onto the host thread (placement, e.g. the client proxy next to
   * the API to save two thread hops). Supervised like workers: a throw removes the actor and it
   * is re-created from its module after the same backoff, within the same intensity limit, and
   * after the same cool-down once failed.
   */
  readonly hostActorSpecs?: readonly ActorSpec[];
  readonly codec?: CodecName;
  /** How envelopes cross between the node's threads (mesh.ts): MessagePorts or shared-memory rings. Default `port`. */
  readonly transport?: TransportName;
  readonly logLevel?: LogLevel;
  readonly supervisor?: SupervisorOptions;
  /** Deadline of every control call (status, inspect, stop, fault injection). */
  readonly controlTimeoutMs?: number;
  /** Deadline for a worker to create its actors. */
  readonly startTimeoutMs?: number;
  readonly offload?: OffloadOptions;
  /** The init an actor restarts with (a replica: recovering, with a fresh nonce). Default: its first init. */
  readonly restartInit?: (spec: ActorSpec, restart: number) => unknown;
  /** Notified of worker deaths, restarts and failures (logging, tests). */
  readonly onEvent?: (event: SystemEvent) => void;
  /**
   * Fields the owner adds to the supervision log lines about these actors (a worker's, or one
   * host actor): e.g. a replica's namespace, index and view, which the runtime cannot know.
   * Called only when such a line is written; it must not throw.
   */
  readonly describeActors?: (actors: readonly ActorId[]) => Readonly<Record<string, unknown>>;
  /**
   * Names the link for actors outside this node (e.g. `node:b` for `b::proxy`); the host
   * thread then relays envelopes between its workers and those links (see `setLink`).
   */
  readonly resolveRemote?: (actor: ActorId) => string | undefined;
};

export type SystemEvent =
  | { readonly type: 'worker_exited'; readonly worker: string; readonly exit: WorkerExit }
  | { readonly type: 'worker_restarted'; readonly worker: string; readonly restarts: number }
  | { readonly type: 'worker_failed'; readonly worker: string; readonly reason: string }
  | { readonly type: 'host_actor_crashed'; readonly actor: ActorId; readonly error: string }
  | { readonly type: 'host_actor_restarted'; readonly actor: ActorId; readonly restarts: number }
  | { readonly type: 'host_actor_failed'; readonly actor: ActorId; readonly reason: string }
  /** An actor of a worker of several actors threw; the worker and its other actors run on (WorkerBoot.containCrashes). */
  | { readonly type: 'actor_crashed'; readonly worker: string; readonly actor: ActorId; readonly error: string }
  | { readonly type: 'actor_restarted'; readonly worker: string; readonly actor: ActorId; readonly restarts: number }
  | { readonly type: 'actor_failed'; readonly worker: string; readonly actor: ActorId; readonly reason: string };

export type WorkerState = SupervisedState;

export type WorkerReport = {
  readonly name: string;
  readonly state: WorkerState;
  readonly restarts: number;
  readonly lastExit: WorkerExit | null;
  /** Why the supervisor gave up, when state is `failed`. */
  readonly failure: string | null;
  /** When (epoch ms) a failed worker is started afresh (its cool-down ends); null if not scheduled. */
  readonly retryAt: number | null;
  /** Live figures from the worker, or null with `unavailable` saying why. */
  readonly detail: WorkerStatus | null;
  readonly unavailable: string | null;
};

export type HostActorReport = {
  readonly actor: ActorId;
  readonly state: WorkerState;
  readonly restarts: number;
  readonly failure: string | null;
  readonly lastError: string | null;
  /** When (epoch ms) a failed actor is re-created (its cool-down ends); null if not scheduled. */
  readonly retryAt: number | null;
};

type HostManaged = {
  /** Replaced when its restart init changes (`updateInit`). */
  spec: ActorSpec;
  readonly supervised: Supervised;
  lastError: string | null;
};

type Managed = {
  /** Replaced when an actor's restart init changes (`updateInit`). */
  spec: WorkerSpec;
  readonly supervised: Supervised;
  handle: WorkerHandle | null;
  lastExit: WorkerExit | null;
  /**
   * A worker of several actors: each actor's own supervision, for a throw the worker contained
   * (the worker's restart re-creates them all and starts these afresh). Empty for one actor.
   */
  actors: Map<ActorId, ActorManaged>;
};

type ActorManaged = { readonly supervised: Supervised; lastError: string | null };

/** Supervision of one actor inside a worker of several (see Managed.actors). */
export type WorkerActorReport = {
  readonly actor: ActorId;
  readonly worker: string;
  readonly state: WorkerState;
  readonly restarts: number;
  readonly failure: string | null;
  readonly lastError: string | null;
  readonly retryAt: number | null;
};

export class ActorSystem {
  readonly host: ActorHost;
  readonly #transport: Transport;
  /** Makes every link of this node: both ends of a link must come from one implementation. */
  readonly #kind: TransportKind;
  readonly #managed = new Map<string, Managed>();
  readonly #hostManaged = new Map<ActorId, HostManaged>();
  readonly #directory: Map<ActorId, string>;
  readonly #options: Required<Omit<SystemOptions, 'hostActors' | 'hostActorSpecs' | 'restartInit' | 'onEvent' | 'resolveRemote' | 'describeActors'>> & {
    readonly restartInit: SystemOptions['restartInit'] | undefined;
    readonly onEvent: SystemOptions['onEvent'] | undefined;
    readonly describeActors: SystemOptions['describeActors'] | undefined;
  };
  readonly #log: Logger;
  readonly #offload: Offload;
  #stopping = false;
  #stopped: Promise<void> | null = null;

  private constructor(options: SystemOptions) {
    const supervisor = options.supervisor ?? defaultSupervisorOptions;
    const problem = validateSupervisorOptions(supervisor);
    if (problem !== null) throw new RangeError(problem);
    this.#options = {
      workers: options.workers,
      codec: options.codec ?? 'clone',
      transport: options.transport ?? defaultTransportName,
      logLevel: resolveLogLevel(options.logLevel),
      supervisor,
      controlTimeoutMs: options.controlTimeoutMs ?? 2_000,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      offload: options.offload ?? defaultOffloadOptions,
      restartInit: options.restartInit,
      onEvent: options.onEvent,
      describeActors: options.describeActors,
    };
    this.#directory = buildDirectory(options.workers, [...(options.hostActors ?? []).map((a) => a.id), ...(options.hostActorSpecs ?? []).map((a) => a.id)]);
    this.#log = makeLogger(this.#options.logLevel, { thread: hostThread });
    this.#offload = makeOffload(this.#options.offload);
    this.host = new ActorHost(hostThread, this.#log, this.#offload, (actor, error, stopped) => this.#onHostCrash(actor, error, stopped));
    for (const spec of options.hostActorSpecs ?? []) this.#hostManaged.set(spec.id, this.#superviseHostActor(spec));
    this.#kind = transportKind(this.#options.transport);
    this.#transport = this.#kind.create(hostThread, this.#directory, makeCodec(this.#options.codec), (batch, local) => this.host.deliver(batch, local), {
      forward: true,
      ...(options.resolveRemote === undefined ? {} : { resolve: options.resolveRemote }),
    });
    this.host.attach(this.#transport);
    for (const spec of options.workers) this.#managed.set(spec.name, this.#superviseWorker(spec));
  }

  /** Spawns every worker, wires the mesh, creates every actor; rejects (and cleans up) if any fails. */
  static async start(options: SystemOptions): Promise<ActorSystem> {
    const system = new ActorSystem(options);
    try {
      for (const actor of options.hostActors ?? []) await system.host.add(actor.id, actor.factory, actor.init);
      for (const spec of options.hostActorSpecs ?? []) await system.host.spawn(spec);
      const handles = [...system.#managed.values()].map((managed) => system.#spawn(managed, managed.spec.actors));
      for (let i = 0; i < handles.length; i += 1) {
        for (let j = i + 1; j < handles.length; j += 1) link(system.#kind, handles[i] as WorkerHandle, handles[j] as WorkerHandle);
        system.#connectHost(handles[i] as WorkerHandle);
      }
      await Promise.all(handles.map((handle) => handle.started(system.#options.startTimeoutMs)));
    } catch (error) {
      await system.stop();
      throw error;
    }
    return system;
  }

  get logger(): Logger {
    return this.#log;
  }

  get offload(): Offload {
    return this.#offload;
  }

  /** Which thread hosts an actor. */
  threadOf(actor: ActorId): string | undefined {
    return this.#directory.get(actor);
  }

  /** Sends from the host thread (batched like every other send). */
  send(envelope: Envelope): void {
    this.#transport.send(envelope);
  }

  /**
   * Adds a worker at run time (a namespace created on a running node): it is wired into the
   * mesh like the first ones, every other worker learns where its actors are, and it is
   * supervised from then on. Resolves once its actors run.
   */
  async addWorker(spec: WorkerSpec): Promise<void> {
    if (this.#stopping) throw new Error('the actor system is stopping');
    if (spec.name === hostThread || this.#managed.has(spec.name)) throw new RangeError(`thread name ${spec.name} is used twice (or is reserved)`);
    for (const actor of spec.actors) if (this.#directory.has(actor.id)) throw new RangeError(`actor ${actor.id} is placed twice`);
    const entries = spec.actors.map((actor) => [actor.id, spec.name] as const);
    for (const [actor, thread] of entries) this.#directory.set(actor, thread);
    this.#transport.addRoutes(entries);
    for (const other of this.#managed.values()) other.handle?.post({ kind: 'routes', entries });
    const managed = this.#superviseWorker(spec);
    this.#managed.set(spec.name, managed);
    await this.#spawnLinked(managed, spec.actors).started(this.#options.startTimeoutMs);
  }

  /** Routes for actors outside this node's threads (their link is installed with `setLink`). */
  addRemoteRoutes(entries: readonly (readonly [ActorId, string])[]): void {
    this.#transport.addRoutes(entries);
  }

  /** Installs the link for a remote thread name (another node): batches for it go to `sink`. */
  setLink(name: string, sink: LinkSink): void {
    this.#transport.setSink(name, sink);
  }

  /**
   * Envelopes from another node: those for this node's actors are delivered (on this thread or
   * relayed to their worker); the caller filters out anything not meant for this node.
   */
  receiveRemote(batch: readonly Envelope[]): void {
    this.#transport.receiveBatch(batch);
  }

  /**
   * Changes the init an actor is restarted with (the timer after a subscriber was added, the
   * proxy after a namespace was): a restart must not forget what the node learned since.
   */
  updateInit(actor: ActorId, init: unknown): void {
    for (const managed of this.#managed.values()) {
      if (!managed.spec.actors.some((spec) => spec.id === actor)) continue;
      managed.spec = { ...managed.spec, actors: managed.spec.actors.map((spec) => (spec.id === actor ? { ...spec, init } : spec)) };
      return;
    }
    const hostManaged = this.#hostManaged.get(actor);
    if (hostManaged !== undefined) hostManaged.spec = { ...hostManaged.spec, init };
  }

  /** The actors placed on a worker. */
  actorsOf(worker: string): string[] {
    return this.#managed.get(worker)?.spec.actors.map((actor) => actor.id) ?? [];
  }

  workerNames(): string[] {
    return [...this.#managed.keys()];
  }

  /** The live handle of a worker (changes across restarts), or null while it is down. */
  handle(worker: string): WorkerHandle | null {
    return this.#managed.get(worker)?.handle ?? null;
  }

  /** Supervision state of the module-loaded actors on the host thread. */
  hostActorReports(): HostActorReport[] {
    return [...this.#hostManaged.values()].map(({ spec, supervised, lastError }) => ({
      actor: spec.id,
      state: supervised.state,
      restarts: supervised.restarts,
      failure: supervised.failure,
      lastError,
      retryAt: supervised.retryAt,
    }));
  }

  /** Test hook: a host-thread actor throws inside its next handler call. */
  crashHostActor(actor: ActorId): void {
    this.host.crashNext(actor);
  }

  /**
   * Test and chaos hook: an actor throws inside its next handler call, wherever it runs. In a
   * worker of several actors the worker contains it; a worker of one actor ends.
   */
  async crashActor(actor: ActorId): Promise<void> {
    const handle = this.#workerHandleOf(actor);
    if (handle === null) return this.host.crashNext(actor);
    await handle.crashActor(actor);
  }

  /** Supervision of the actors of workers of several actors (their own crashes and restarts). */
  workerActorReports(): WorkerActorReport[] {
    const out: WorkerActorReport[] = [];
    for (const managed of this.#managed.values()) {
      for (const [actor, { supervised, lastError }] of managed.actors) {
        out.push({ actor, worker: managed.spec.name, state: supervised.state, restarts: supervised.restarts, failure: supervised.failure, lastError, retryAt: supervised.retryAt });
      }
    }
    return out;
  }

  async status(): Promise<WorkerReport[]> {
    return Promise.all(
      [...this.#managed.values()].map(async (managed): Promise<WorkerReport> => {
        const { supervised } = managed;
        let detail: WorkerStatus | null = null;
        let unavailable: string | null = null;
        if (managed.handle === null || !managed.handle.alive) unavailable = supervised.state;
        else {
          try {
            detail = await managed.handle.status();
          } catch (error) {
            unavailable = error instanceof Error ? error.message : String(error);
          }
        }
        return {
          name: managed.spec.name,
          state: supervised.state,
          restarts: supervised.restarts,
          lastExit: managed.lastExit,
          failure: supervised.failure,
          retryAt: supervised.retryAt,
          detail,
          unavailable,
        };
      }),
    );
  }

  async inspect(actor: ActorId): Promise<unknown> {
    const handle = this.#workerHandleOf(actor);
    return handle === null ? this.host.inspect(actor) : handle.inspect(actor);
  }

  /**
   * An actor's answer to a control-plane question (Actor.query), wherever it runs. In a worker
   * the answer is awaited `timeoutMs` (the control timeout unless given): a question whose
   * answer takes long by design, such as a backup's walk, passes its own bound.
   */
  async query(actor: ActorId, request: unknown, timeoutMs?: number): Promise<unknown> {
    const handle = this.#workerHandleOf(actor);
    return handle === null ? this.host.query(actor, request) : handle.query(actor, request, timeoutMs);
  }

  /** The live handle of the worker hosting `actor`, or null when it runs on the host thread; throws when unknown or its worker is down. */
  #workerHandleOf(actor: ActorId): WorkerHandle | null {
    const thread = this.#directory.get(actor);
    if (thread === undefined) throw new RangeError(`unknown actor ${actor}`);
    if (thread === hostThread) return null;
    const handle = this.handle(thread);
    if (handle === null) throw new Error(`${actor}: worker ${thread} is down`);
    return handle;
  }

  /** Full GC in every live worker (when started with --expose-gc); heap bytes per worker after it. */
  async collectGarbage(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const managed of this.#managed.values()) {
      if (managed.handle === null || !managed.handle.alive) continue;
      out[managed.spec.name] = (await managed.handle.collectGarbage()).heapUsedBytes;
    }
    return out;
  }

  /** Test and chaos hook: make a worker fail as if from inside an actor's handler. */
  async injectFault(worker: string, fault: InjectedFault): Promise<void> {
    const handle = this.handle(worker);
    if (handle === null) throw new Error(`worker ${worker} is down`);
    await handle.injectFault(fault);
  }

  /** Kills a worker outright (`terminate()`); the supervisor treats it as a crash. */
  async terminate(worker: string): Promise<void> {
    const handle = this.handle(worker);
    if (handle === null) throw new Error(`worker ${worker} is down`);
    await handle.terminate();
  }

  /** Stops every worker and the offload pool, closes every link and cancels every restart timer: no handle is left open. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stopAll();
    return this.#stopped;
  }

  async #stopAll(): Promise<void> {
    this.#stopping = true;
    for (const managed of this.#hostManaged.values()) managed.supervised.stop();
    const stops: Promise<unknown>[] = [];
    for (const managed of this.#managed.values()) {
      managed.supervised.stop();
      for (const actor of managed.actors.values()) actor.supervised.stop();
      if (managed.handle !== null) stops.push(managed.handle.stop());
    }
    await Promise.all(stops);
    await this.host.stop();
    this.#transport.close();
    await this.#offload.close();
  }

  /** A worker under supervision; it runs when this is called (its first start is the caller's). */
  #superviseWorker(spec: WorkerSpec): Managed {
    const managed: Managed = {
      spec,
      handle: null,
      lastExit: null,
      actors: new Map(),
      supervised: new Supervised(this.#options.supervisor, {
        start: (restarts) => this.#restartWorker(managed, restarts),
        restarted: (restarts) => {
          this.#log.info({ worker: managed.spec.name, restarts, ...this.#describeWorker(managed) }, 'worker_restarted');
          this.#options.onEvent?.({ type: 'worker_restarted', worker: managed.spec.name, restarts });
        },
        failed: (reason, coolDownMs, retryAt) => {
          this.#log.error({ worker: managed.spec.name, reason, coolDownMs, retryAt: new Date(retryAt).toISOString(), ...this.#describeWorker(managed) }, 'worker_failed');
          this.#options.onEvent?.({ type: 'worker_failed', worker: managed.spec.name, reason });
        },
      }),
    };
    return managed;
  }

  /** A module-loaded host actor under supervision; it runs when this is called. */
  #superviseHostActor(spec: ActorSpec): HostManaged {
    const managed: HostManaged = {
      spec,
      lastError: null,
      supervised: new Supervised(this.#options.supervisor, {
        start: (restarts) => this.#restartHostActor(managed, restarts),
        restarted: (restarts) => {
          this.#log.info({ actor: managed.spec.id, restarts, ...this.#describe([managed.spec.id]) }, 'host_actor_restarted');
          this.#options.onEvent?.({ type: 'host_actor_restarted', actor: managed.spec.id, restarts });
        },
        failed: (reason, coolDownMs, retryAt) => {
          this.#log.error({ actor: managed.spec.id, reason, coolDownMs, retryAt: new Date(retryAt).toISOString(), ...this.#describe([managed.spec.id]) }, 'host_actor_failed');
          this.#options.onEvent?.({ type: 'host_actor_failed', actor: managed.spec.id, reason });
        },
      }),
    };
    return managed;
  }

  #spawn(managed: Managed, actors: readonly ActorSpec[]): WorkerHandle {
    // Every spawn starts the actors' own supervision afresh: a new worker runs them all.
    for (const old of managed.actors.values()) old.supervised.stop();
    const contained = actors.length > 1;
    managed.actors = new Map(contained ? actors.map((actor) => [actor.id, this.#superviseWorkerActor(managed, actor.id)] as const) : []);
    let spawned: WorkerHandle | null = null;
    const onActorCrashed = (actor: ActorId, error: string): void => {
      if (spawned !== null) this.#onWorkerActorCrash(managed, spawned, actor, error);
    };
    const handle = new WorkerHandle({
      ...(contained ? { onActorCrashed } : {}),
      name: managed.spec.name,
      actors,
      directory: this.#directory,
      codec: this.#options.codec,
      transport: this.#options.transport,
      logLevel: this.#options.logLevel,
      offload: this.#options.offload,
      controlTimeoutMs: this.#options.controlTimeoutMs,
      ...(managed.spec.resourceLimits === undefined ? {} : { resourceLimits: managed.spec.resourceLimits }),
    });
    spawned = handle;
    managed.handle = handle;
    void handle.exited.then((exit) => this.#onExit(managed, handle, exit));
    return handle;
  }

  /** One actor of a worker of several, under its own supervision; its start is a respawn in that worker. */
  #superviseWorkerActor(managed: Managed, actor: ActorId): ActorManaged {
    const worker = managed.spec.name;
    return {
      lastError: null,
      supervised: new Supervised(this.#options.supervisor, {
        start: (restarts) => this.#respawnActor(managed, actor, restarts),
        restarted: (restarts) => {
          this.#log.info({ worker, actor, restarts, ...this.#describe([actor]) }, 'actor_restarted');
          this.#options.onEvent?.({ type: 'actor_restarted', worker, actor, restarts });
        },
        failed: (reason, coolDownMs, retryAt) => {
          this.#log.error({ worker, actor, reason, coolDownMs, retryAt: new Date(retryAt).toISOString(), ...this.#describe([actor]) }, 'actor_failed');
          this.#options.onEvent?.({ type: 'actor_failed', worker, actor, reason });
        },
      }),
    };
  }

  #onWorkerActorCrash(managed: Managed, handle: WorkerHandle, actor: ActorId, error: string): void {
    if (this.#stopping || managed.handle !== handle) return;
    const actorManaged = managed.actors.get(actor);
    if (actorManaged === undefined) return;
    actorManaged.lastError = error;
    this.#log.error({ worker: managed.spec.name, actor, error, ...this.#describe([actor]) }, 'actor_crashed');
    this.#options.onEvent?.({ type: 'actor_crashed', worker: managed.spec.name, actor, error });
    actorManaged.supervised.crashed();
  }

  /** The supervisor's re-creation of one crashed actor in its (living) worker, with its restart init. */
  async #respawnActor(managed: Managed, actor: ActorId, restarts: number): Promise<void> {
    const handle = managed.handle;
    if (handle === null || !handle.alive) throw new Error(`worker ${managed.spec.name} is down`);
    const spec = managed.spec.actors.find((candidate) => candidate.id === actor);
    if (spec === undefined) throw new Error(`actor ${actor} is not placed on ${managed.spec.name}`);
    await handle.respawn({ ...spec, init: this.#options.restartInit?.(spec, restarts) ?? spec.init }, this.#options.startTimeoutMs);
  }

  /** Spawns a worker and links it to every live thread (a late worker, or a restart). */
  #spawnLinked(managed: Managed, actors: readonly ActorSpec[]): WorkerHandle {
    const handle = this.#spawn(managed, actors);
    for (const other of this.#managed.values()) {
      if (other !== managed && other.handle !== null && other.handle.alive) link(this.#kind, handle, other.handle);
    }
    this.#connectHost(handle);
    return handle;
  }

  /** The supervisor's start of a worker: its actors with their restart init, the mesh rewired. */
  async #restartWorker(managed: Managed, restarts: number): Promise<void> {
    const actors = managed.spec.actors.map((spec) => ({ ...spec, init: this.#options.restartInit?.(spec, restarts) ?? spec.init }));
    const handle = this.#spawnLinked(managed, actors);
    try {
      await handle.started(this.#options.startTimeoutMs);
    } catch (error) {
      // It died while starting (its exit reaches the supervisor first), or the start merely
      // hangs, which is a failure too: the supervisor counts it once either way.
      this.#log.error({ worker: managed.spec.name, error: String(error), ...this.#describeWorker(managed) }, 'worker_restart_failed');
      if (handle.alive) void handle.terminate();
      throw error;
    }
  }

  /** The supervisor's start of a host actor: re-created from its module with its restart init. */
  async #restartHostActor(managed: HostManaged, restarts: number): Promise<void> {
    try {
      const spec = { ...managed.spec, init: this.#options.restartInit?.(managed.spec, restarts) ?? managed.spec.init };
      await this.host.spawn(spec);
    } catch (error) {
      this.#reportHostCrash(managed.spec.id, error);
      throw error;
    }
  }

  /**
   * A host-thread actor threw. Its successor is created only once the old one's `stop()` has
   * finished (a durable replica's files closed), as on a worker (worker_entry.ts); a stop that
   * takes longer than `crashedStopMs` leaves the actor stopped, not re-created over files that
   * may still be open, and says so (a worker would exit instead; the main thread cannot).
   */
  #onHostCrash(actor: ActorId, error: unknown, stopped: Promise<void>): void {
    this.#reportHostCrash(actor, error);
    void crashedStopOutcome(stopped, { unref: true }).then((outcome) => {
      if (this.#stopping) return;
      const managed = this.#hostManaged.get(actor);
      if (outcome === 'late') {
        this.#log.error({ actor, ...this.#describe([actor]) }, 'crashed_actor_stop_timeout');
        if (managed !== undefined) managed.lastError = `${managed.lastError ?? ''} (its stop did not finish within ${crashedStopMs} ms: not re-created)`;
        managed?.supervised.stop();
        return;
      }
      managed?.supervised.crashed();
    });
  }

  #reportHostCrash(actor: ActorId, error: unknown): void {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    this.#log.error({ actor, error: text, ...this.#describe([actor]) }, 'host_actor_crashed');
    this.#options.onEvent?.({ type: 'host_actor_crashed', actor, error: text });
    const managed = this.#hostManaged.get(actor);
    if (managed !== undefined && !this.#stopping) managed.lastError = text;
  }

  /** The owner's fields for a log line about these actors (describeActors); none if it has none or fails. */
  #describe(actors: readonly ActorId[]): Readonly<Record<string, unknown>> {
    try {
      return this.#options.describeActors?.(actors) ?? {};
    } catch {
      return {};
    }
  }

  #describeWorker(managed: Managed): Readonly<Record<string, unknown>> {
    return this.#describe(managed.spec.actors.map((actor) => actor.id));
  }

  #connectHost(handle: WorkerHandle): void {
    const [here, there] = this.#kind.pair();
    this.#transport.setPeer(handle.name, here);
    handle.post({ kind: 'peer', name: hostThread, link: there }, this.#kind.transferList(there));
  }

  #onExit(managed: Managed, handle: WorkerHandle, exit: WorkerExit): void {
    if (managed.handle !== handle) return;
    managed.handle = null;
    managed.lastExit = exit;
    this.#options.onEvent?.({ type: 'worker_exited', worker: managed.spec.name, exit });
    if (this.#stopping || exit.requested) return;
    this.#log.warn({ worker: managed.spec.name, code: exit.code, error: exit.error, ...this.#describeWorker(managed) }, 'worker_exited');
    // Peers drop what they would send it until the replacement is wired (like a lost link).
    this.#transport.dropPeer(managed.spec.name);
    for (const other of this.#managed.values()) other.handle?.post({ kind: 'drop_peer', name: managed.spec.name });
    managed.supervised.crashed();
  }
}

/** Links two workers directly (no hop through the host). */
function link(kind: TransportKind, a: WorkerHandle, b: WorkerHandle): void {
  const [toB, toA] = kind.pair();
  a.post({ kind: 'peer', name: b.name, link: toB }, kind.transferList(toB));
  b.post({ kind: 'peer', name: a.name, link: toA }, kind.transferList(toA));
}

function buildDirectory(workers: readonly WorkerSpec[], hostActors: readonly ActorId[]): Map<ActorId, string> {
  const directory = new Map<ActorId, string>();
  const threads = new Set<string>([hostThread]);
  const place = (actor: ActorId, thread: string): void => {
    if (directory.has(actor)) throw new RangeError(`actor ${actor} is placed twice`);
    directory.set(actor, thread);
  };
  for (const actor of hostActors) place(actor, hostThread);
  for (const worker of workers) {
    if (threads.has(worker.name)) throw new RangeError(`thread name ${worker.name} is used twice (or is reserved)`);
    threads.add(worker.name);
    for (const actor of worker.actors) place(actor.id, worker.name);
  }
  return directory;
}
