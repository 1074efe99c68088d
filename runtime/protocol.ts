/**
 * What the host and a worker say to each other outside the data path: the worker's start-up
 * data, the link-wiring messages on `parentPort`, and the control API exposed over comlink.
 */

import type { MessagePort } from 'node:worker_threads';
import type { ActorSpec, ActorStatus } from './actor.ts';
import type { CodecName } from './codec.ts';
import type { ActorId } from './envelope.ts';
import type { LogLevel } from './logger.ts';
import type { TransportName } from './mesh.ts';
import type { OffloadOptions } from './offload.ts';
import type { PeerLink, TransportStats } from './transport.ts';

export type WorkerBoot = {
  readonly haretEntry: string;
  readonly haretTsx: string | null;
  readonly name: string;
  readonly actors: readonly ActorSpec[];
  readonly directory: readonly (readonly [ActorId, string])[];
  readonly codec: CodecName;
  /** The node's transport: the worker must build the same kind as the host that links it. */
  readonly transport: TransportName;
  readonly logLevel: LogLevel;
  readonly offload: OffloadOptions;
  readonly controlPort: MessagePort;
  /**
   * A worker hosting several actors contains an actor's throw: that actor alone is dropped and
   * reported (`actor_crashed`), and the host supervises its re-creation (`respawn`). A worker
   * of one actor lets the throw end the thread, and the worker is restarted.
   */
  readonly containCrashes: boolean;
};

export type HostToWorker =
  /** A link to another thread of the node (made by the node's transport kind; see mesh.ts). */
  | { readonly kind: 'peer'; readonly name: string; readonly link: PeerLink }
  | { readonly kind: 'drop_peer'; readonly name: string }
  /** Actors placed after this worker booted (a worker added at run time). */
  | { readonly kind: 'routes'; readonly entries: readonly (readonly [ActorId, string])[] }
  | { readonly kind: 'start' }
  /** Re-creates one actor that crashed (containCrashes), with its restart init. */
  | { readonly kind: 'respawn'; readonly spec: ActorSpec };

export type WorkerToHost =
  | { readonly kind: 'started' }
  | { readonly kind: 'start_failed'; readonly error: string }
  /** An actor threw (containCrashes): it is gone, its stop() has finished; the others run on. */
  | { readonly kind: 'actor_crashed'; readonly actor: ActorId; readonly error: string }
  | { readonly kind: 'respawned'; readonly actor: ActorId }
  | { readonly kind: 'respawn_failed'; readonly actor: ActorId; readonly error: string };

/** Faults a test can inject into a worker, each as if it happened inside an actor's handler. */
export type InjectedFault =
  /** The next drain throws (an uncaught exception in a handler). */
  | 'throw'
  /** The next drain calls process.exit(3) inside the worker. */
  | 'exit'
  /** The next drain allocates until the worker hits its resource limits. */
  | 'exhaust_memory';

export type WorkerStatus = {
  readonly thread: string;
  readonly actors: readonly ActorStatus[];
  readonly router: TransportStats;
  readonly unknownActorDrops: number;
  readonly offloaded: number;
  readonly heapUsedBytes: number;
  /** Cumulative event-loop time of the thread (ms): busy (`active`) and waiting (`idle`). */
  readonly loop: { readonly activeMs: number; readonly idleMs: number };
  /** Cumulative time (ms) this thread spent in garbage collection (perf_hooks 'gc' entries). */
  readonly gcMs?: number;
};

/** The control API a worker exposes over comlink. Never on the data path. */
export type WorkerControl = {
  status(): WorkerStatus;
  inspect(actor: ActorId): unknown;
  /** The actor's answer to a control-plane question (Actor.query). */
  query(actor: ActorId, request: unknown): unknown;
  injectFault(fault: InjectedFault): void;
  /** Test hook: the actor's next batch throws inside its handler (contained or not, as the worker does). */
  crashActor(actor: ActorId): void;
  /** Runs a full garbage collection when the thread has `gc` (node --expose-gc), then reports the heap. */
  collectGarbage(): { readonly heapUsedBytes: number; readonly collected: boolean };
  /** Stops actors and closes ports; the host terminates the thread afterwards. */
  stop(): Promise<void>;
};
