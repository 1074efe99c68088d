/**
 * The host's handle on one worker thread: spawns it through the bootstrap, wires its control
 * port to comlink, and turns every way a worker can die (uncaught exception, process.exit
 * inside it, terminate(), resource limits) into one `exited` promise with the reason.
 */

import { MessageChannel, Worker, type MessagePort, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { nodeEndpoint } from './comlink_node.ts';
import type { ActorSpec } from './actor.ts';
import { bootstrapScript, workerModules } from './bootstrap.ts';
import type { CodecName } from './codec.ts';
import { ControlError, withDeadline } from './control.ts';
import type { ActorId } from './envelope.ts';
import type { LogLevel } from './logger.ts';
import type { TransportName } from './mesh.ts';
import type { OffloadOptions } from './offload.ts';
import type { HostToWorker, InjectedFault, WorkerBoot, WorkerControl, WorkerStatus, WorkerToHost } from './protocol.ts';

export type WorkerExit = {
  readonly code: number;
  /** The uncaught error, when the worker died of one (including resource limits). */
  readonly error: string | null;
  /** True when the host asked for it (stop). */
  readonly requested: boolean;
};

export type SpawnOptions = {
  readonly name: string;
  readonly actors: readonly ActorSpec[];
  readonly directory: ReadonlyMap<ActorId, string>;
  readonly codec: CodecName;
  readonly transport: TransportName;
  readonly logLevel: LogLevel;
  readonly offload: OffloadOptions;
  readonly resourceLimits?: ResourceLimits;
  readonly controlTimeoutMs: number;
  /** A worker of several actors contains an actor's throw and reports it here (see WorkerBoot.containCrashes). */
  readonly onActorCrashed?: (actor: ActorId, error: string) => void;
};

export class WorkerHandle {
  readonly name: string;
  readonly exited: Promise<WorkerExit>;
  readonly #worker: Worker;
  readonly #control: Comlink.Remote<WorkerControl>;
  readonly #controlPort: MessagePort;
  readonly #timeoutMs: number;
  #requested = false;
  #alive = true;
  #lastError: string | null = null;
  /** The modules each actor booted from (compiled twins or sources, bootstrap.ts): a respawn loads the same. */
  readonly #bootModules = new Map<ActorId, string>();
  /** Respawns waiting for the worker's answer, by actor. */
  readonly #respawns = new Map<ActorId, (answer: Extract<WorkerToHost, { kind: 'respawned' | 'respawn_failed' }>) => void>();

  constructor(options: SpawnOptions) {
    this.name = options.name;
    this.#timeoutMs = options.controlTimeoutMs;
    const channel = new MessageChannel();
    const modules = workerModules(options.actors);
    for (const spec of modules.actors) this.#bootModules.set(spec.id, spec.module);
    const boot: WorkerBoot = {
      haretEntry: modules.entry,
      haretTsx: modules.tsx,
      name: options.name,
      actors: modules.actors,
      directory: [...options.directory],
      codec: options.codec,
      transport: options.transport,
      logLevel: options.logLevel,
      offload: options.offload,
      controlPort: channel.port2,
      containCrashes: options.onActorCrashed !== undefined,
    };
    this.#worker = new Worker(bootstrapScript, {
      eval: true,
      name: `haret:${options.name}`,
      workerData: boot,
      transferList: [channel.port2],
      ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
      stdout: false,
      stderr: false,
    });
    this.#controlPort = channel.port1;
    const onActorCrashed = options.onActorCrashed;
    this.#worker.on('message', (message: WorkerToHost) => {
      if (message.kind === 'actor_crashed') onActorCrashed?.(message.actor, message.error);
      else if (message.kind === 'respawned' || message.kind === 'respawn_failed') this.#respawns.get(message.actor)?.(message);
    });
    this.#control = Comlink.wrap<WorkerControl>(nodeEndpoint(channel.port1));
    this.#worker.on('error', (error: Error) => {
      this.#lastError = error.stack ?? error.message;
    });
    this.exited = new Promise<WorkerExit>((resolve) => {
      this.#worker.once('exit', (code: number) => {
        this.#alive = false;
        this.#controlPort.close();
        resolve({ code, error: this.#lastError, requested: this.#requested });
      });
    });
  }

  get alive(): boolean {
    return this.#alive;
  }

  get threadId(): number {
    return this.#worker.threadId;
  }

  post(message: HostToWorker, transfer: readonly TransferListItem[] = []): void {
    if (this.#alive) this.#worker.postMessage(message, transfer);
  }

  /** Resolves when the worker's actors are created; rejects if it fails or dies first. */
  started(timeoutMs: number): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: WorkerToHost): void => {
        if (message.kind === 'started') {
          this.#worker.off('message', onMessage);
          resolve();
        } else if (message.kind === 'start_failed') {
          this.#worker.off('message', onMessage);
          reject(new Error(`worker ${this.name} failed to start: ${message.error}`));
        }
      };
      this.#worker.on('message', onMessage);
    });
    this.post({ kind: 'start' });
    return withDeadline(this.name, 'start', ready, timeoutMs, this.exited);
  }

  status(): Promise<WorkerStatus> {
    return this.#call('status', () => this.#control.status());
  }

  inspect(actor: ActorId): Promise<unknown> {
    return this.#call('inspect', () => this.#control.inspect(actor));
  }

  query(actor: ActorId, request: unknown, timeoutMs?: number): Promise<unknown> {
    return this.#call('query', () => this.#control.query(actor, request), timeoutMs);
  }

  collectGarbage(): Promise<{ readonly heapUsedBytes: number; readonly collected: boolean }> {
    return this.#call('collectGarbage', () => this.#control.collectGarbage());
  }

  injectFault(fault: InjectedFault): Promise<void> {
    return this.#call('injectFault', () => this.#control.injectFault(fault));
  }

  /** Test hook: the actor's next batch throws inside its handler. */
  crashActor(actor: ActorId): Promise<void> {
    return this.#call('crashActor', () => this.#control.crashActor(actor));
  }

  /** Re-creates one crashed actor in this worker (containCrashes); resolves once it runs. */
  respawn(spec: ActorSpec, timeoutMs: number): Promise<void> {
    if (!this.#alive) return Promise.reject(new ControlError('worker_exited', this.name, `respawn of ${spec.id} on ${this.name}: the worker has exited`));
    const answered = new Promise<void>((resolve, reject) => {
      this.#respawns.set(spec.id, (answer) => {
        this.#respawns.delete(spec.id);
        if (answer.kind === 'respawned') resolve();
        else reject(new Error(`${spec.id} could not be re-created on ${this.name}: ${answer.error}`));
      });
    });
    // The module this worker booted the actor from: a worker running compiled twins has no loader for the sources.
    this.post({ kind: 'respawn', spec: { ...spec, module: this.#bootModules.get(spec.id) ?? spec.module } });
    return withDeadline(this.name, `respawn ${spec.id}`, answered, timeoutMs, this.exited).finally(() => this.#respawns.delete(spec.id));
  }

  /** Kills the thread at once, as a crash would (the supervisor restarts it). */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  /** Graceful stop (bounded by the control timeout), then terminate; never restarted. */
  async stop(): Promise<WorkerExit> {
    this.#requested = true;
    if (this.#alive) {
      try {
        await this.#call('stop', () => this.#control.stop());
      } catch {
        // A worker that cannot stop gracefully is terminated all the same.
      }
      await this.#worker.terminate();
    }
    return this.exited;
  }

  #call<T>(what: string, call: () => Promise<T>, timeoutMs: number = this.#timeoutMs): Promise<T> {
    if (!this.#alive) return Promise.reject(new ControlError('worker_exited', this.name, `${what} on ${this.name}: the worker has exited`));
    return withDeadline(this.name, what, call(), timeoutMs, this.exited);
  }
}
