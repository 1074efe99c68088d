/**
 * The durable replica actor (issue 13): the replica's glue (actors/replica.ts, `createReplica`)
 * over its own store (actors/storage/replica_store.ts). The store executes the core's persist
 * effects with group commit and answers `persisted`, which releases acknowledgements; at start
 * what the store holds decides how the replica starts (src/vr/README.md rule 18):
 *
 *   intact (promise and log trusted)       restart: resumes as the member it was, no recovery
 *   empty, and the node says `fresh`       fresh: a brand-new group in view 0
 *   empty otherwise, or damaged            recovering (VRR §4.3) from the trusted prefix
 *
 * Disk failures never crash the actor: the store retries with backoff and answers nothing
 * meanwhile, so the replica acknowledges nothing it has not stored; an error-level line says
 * so once per episode. While the store cannot even be opened (a read-only or missing disk) the
 * replica is down: it drops what arrives, says so in its status, and retries the open with
 * backoff. If the queue outgrows its bound while the disk fails, the replica restarts from what
 * is stored, inside this actor, once the disk works again.
 */

import { randomInt } from 'node:crypto';
import { setAutoFreeze } from 'immer';
import type { Actor, ActorContext } from '../runtime/actor.ts';
import type { Envelope } from '../runtime/envelope.ts';
import type { StartMode } from '../src/vr/io.ts';
import { answerQuery, createReplica, traceTo, type ReplicaGlue, type ReplicaInit, type ReplicaStatusView } from './replica.ts';
import { ReplicaStore, StorageRefusal, type StoreOpened } from './storage/replica_store.ts';
import { StorageError } from './storage/fs.ts';

const reopenFirstMs = 100;
const reopenMaxMs = 5_000;

/** How a replica starts from what its store held (rule 18), given what the node asked for. */
export function startModeFor(found: StoreOpened['found'], asked: StartMode): StartMode {
  switch (found) {
    case 'intact':
      return 'restart';
    case 'empty':
      return asked === 'fresh' ? 'fresh' : 'recovering';
    case 'damaged':
      return 'recovering';
    default: {
      const never: never = found;
      throw new Error(`unknown store state ${String(never)}`);
    }
  }
}

export async function createActor(context: ActorContext, init: unknown): Promise<Actor> {
  // As in actors/replica.ts: no deep freeze of the core's states in production (the tests and
  // the simulator keep it, where an accidental mutation is looked for).
  setAutoFreeze(false);
  const spec = init as ReplicaInit;
  const storage = spec.storage;
  if (!spec.config.durable || storage === undefined) throw new RangeError(`replica ${context.self}: the durable actor needs config.durable and a storage directory`);
  const identity = { node: storage.node, namespace: spec.ns, replica: spec.index };
  const log = context.log;
  let glue: ReplicaGlue | null = null;
  let store: ReplicaStore | null = null;
  let startedAs: StartMode = spec.mode;
  let droppedWhileDown = 0;
  let downSince: number | null = null;
  let downReason: string | null = null;
  let reopenTimer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  /** The node's request holds only for the first start: a restart inside this actor had a group already. */
  let asked: StartMode = spec.mode;

  /** A throw from the core outside a drain: crash the worker like one inside it would (the supervisor restarts it). */
  const crash = (error: unknown): void => {
    setImmediate(() => {
      throw error;
    });
  };

  const open = async (): Promise<void> => {
    const opened = await ReplicaStore.open(storage.dir, identity, { limits: spec.config.treeLimits });
    if (stopped) {
      await opened.store.close();
      return;
    }
    for (const note of opened.notes) log.error({ dir: storage.dir }, `storage: ${note}`);
    const mode = startModeFor(opened.found, asked);
    asked = 'recovering';
    startedAs = mode;
    const current = opened.store;
    store = current;
    if (opened.found === 'damaged') log.error({ dir: storage.dir }, 'storage_damaged: this replica trusts only what precedes the damage and recovers the rest from its peers');
    const nonce = mode === 'recovering' ? (spec.nonce === 0 ? randomInt(1, 2 ** 31) : spec.nonce) : spec.nonce;
    current.attach({
      persisted(answers): void {
        if (store !== current || glue === null) return;
        try {
          glue.input(answers);
        } catch (error) {
          crash(error);
        }
      },
      fault(error, first): void {
        if (first) log.error({ code: error.code, path: error.path, error: error.message }, 'storage_failing: nothing more is acknowledged until the disk works again; retrying with backoff');
        else if (log.isLevelEnabled('debug')) log.debug({ code: error.code, error: error.message }, 'storage_retry_failed');
      },
      recovered(): void {
        log.warn({ dir: storage.dir }, 'storage_recovered: the disk works again');
      },
      lost(): void {
        if (store !== current) return;
        log.error({ dir: storage.dir }, 'storage_queue_overflow: the disk failed for too long; the replica restarts from what it stored');
        glue = null;
        goDown('storage queue overflowed while the disk failed');
        void current.close().then(scheduleOpen);
      },
    });
    glue = createReplica(
      {
        send: (to, msg) => context.send(to, msg),
        persist: (record, generation, op) => current.persist(record, generation, op),
        trace: (trace, view) => traceTo(context, trace, spec, view),
        imageWritten(image): void {
          if (store === current) current.offerImage(image);
        },
        nowMs: () => performance.now(),
      },
      { ...spec, mode, nonce, seed: spec.seed },
      { stored: opened.stored },
    );
    downSince = null;
    downReason = null;
    log.info({ mode, found: opened.found, entries: opened.stored.entries.length, checkpointOp: opened.stored.checkpoint?.appliedOp ?? 0 }, 'replica_store_opened');
  };

  const goDown = (reason: string): void => {
    downSince ??= Date.now();
    downReason = reason;
  };

  let reopenDelay = reopenFirstMs;
  const scheduleOpen = (): void => {
    if (stopped || reopenTimer !== null) return;
    reopenTimer = setTimeout(() => {
      reopenTimer = null;
      open().then(
        () => {
          reopenDelay = reopenFirstMs;
        },
        (error: unknown) => {
          if (error instanceof StorageRefusal) {
            // Not ours to use: nothing a retry changes. Crash; the supervisor gives up after its budget and says so.
            crash(error);
            return;
          }
          const first = downReason === null || !downReason.startsWith('cannot open');
          goDown(`cannot open storage: ${error instanceof Error ? error.message : String(error)}`);
          if (first) log.error({ dir: storage.dir, error: downReason }, 'storage_unavailable: the replica is down until its directory can be opened; retrying with backoff');
          reopenDelay = Math.min(reopenDelay * 2, reopenMaxMs);
          scheduleOpen();
        },
      );
    }, reopenDelay);
  };

  try {
    await open();
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    goDown(`cannot open storage: ${error.message}`);
    log.error({ dir: storage.dir, code: error.code, error: error.message }, 'storage_unavailable: the replica is down until its directory can be opened; retrying with backoff');
    scheduleOpen();
  }

  const downView = (): ReplicaStatusView => ({
    role: 'backup',
    ns: spec.ns,
    index: spec.index,
    status: 'stopped',
    view: 0,
    lastNormalView: 0,
    op: 0,
    commit: 0,
    startedAs,
    dropped: droppedWhileDown,
    checkpointOp: 0,
    imagesEncoded: 0,
    imagesStale: 0,
    imageSliceMsMax: 0,
    watches: 0,
    watchHistoryOps: 0,
    watchHistoryBytes: 0,
    leases: 0,
    ephemeralNodes: 0,
    leaseClock: 0,
    ...(store === null ? {} : { storage: store.counters() }),
  });

  return {
    receive(batch: readonly Envelope[]): void {
      if (glue === null) {
        droppedWhileDown += batch.length;
        return;
      }
      glue.receive(batch);
    },
    status: () => {
      if (glue === null) return { ...downView(), down: { since: downSince, reason: downReason } };
      return { ...glue.status(), startedAs, ...(store === null ? {} : { storage: store.counters() }) };
    },
    inspect: () => ({ ...(glue === null ? downView() : glue.inspect()), ...(store === null ? {} : { storage: store.counters() }), heapUsedBytes: process.memoryUsage().heapUsed }),
    query: (request) => answerQuery(spec, glue, request),
    async stop(): Promise<void> {
      stopped = true;
      if (reopenTimer !== null) clearTimeout(reopenTimer);
      glue = null;
      await store?.close();
    },
  };
}
