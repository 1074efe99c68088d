/**
 * The namespace health monitor (issue 13): decides, from the node's own status, which of its
 * namespaces cannot serve, so that callers are told at once (HaretError / wire error
 * `unavailable`, not executed) instead of waiting their whole give-up time for a `timeout`.
 *
 * A namespace cannot serve when more than f of its replicas on this node cannot take part:
 * recovering or down (status `recovering` or `stopped`; VRR recovery, §4.3, needs f+1 replicas
 * in normal status, so none of them can finish), or durable with a disk that fails or a store
 * that gave up (`storage.state` `failing` or `lost`: they acknowledge nothing, so no quorum
 * can commit). A cluster namespace's replicas on other nodes are not visible here, so the
 * count is against the namespace's total replica count: more than f here is enough to know.
 *
 * A view change or a restart passes through the same states for a moment, so the condition
 * must hold for `graceMs` before the namespace is marked; it is unmarked at the first check
 * that finds it able to serve. Entering says so once at error level (which replicas, why,
 * what to do), leaving once at warn level.
 */

import type { ActorReport } from './node.ts';

/** A namespace the monitor watches: its name, its total replica count, and whether its replicas are durable. */
export type WatchedNamespace = { readonly name: string; readonly replicaCount: number; readonly durable: boolean };

/** What the monitor needs of the node: its status (the replicas' reports) and the namespaces it serves. */
export type HealthSource = {
  status(): Promise<{ readonly actors: readonly ActorReport[] }>;
  namespaces(): readonly WatchedNamespace[];
};

/** The two log levels the monitor writes (the system's pino logger fits). */
export type HealthLog = {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
};

export type HealthOptions = {
  /** How often the node's status is taken. Default 500 ms. */
  readonly intervalMs?: number;
  /** How long a namespace must look unable to serve before it is marked. Default 1.5 s. */
  readonly graceMs?: number;
  /** Called when a namespace is marked (with the reason) and unmarked (null). */
  readonly onChange?: (ns: string, reason: string | null) => void;
};

export const healthDefaults = { intervalMs: 500, graceMs: 1_500 } as const;

/** One replica that cannot take part, and why. */
export type LostReplica = { readonly replica: string; readonly why: string };

/** A namespace that cannot serve: which replicas, and the whole reason in one line. */
export type Outage = { readonly replicas: readonly LostReplica[]; readonly reason: string };

/** Why one replica report cannot take part, or null when it can (or when nothing is known of it). */
function lostReplica(actor: ActorReport): LostReplica | null {
  const detail = typeof actor.detail === 'object' && actor.detail !== null ? (actor.detail as { storage?: { state?: unknown }; down?: { reason?: unknown } }) : {};
  const storage = detail.storage?.state;
  if (actor.status === 'stopped') {
    const down = detail.down?.reason;
    return { replica: actor.actor, why: down === undefined || down === null ? 'down' : `down (${String(down)})` };
  }
  if (actor.status === 'recovering') return { replica: actor.actor, why: 'recovering (its data is gone)' };
  if (storage === 'failing') return { replica: actor.actor, why: 'its disk fails' };
  if (storage === 'lost') return { replica: actor.actor, why: 'its store gave up on a failing disk' };
  return null;
}

/**
 * Whether `ns` cannot serve given this node's replica reports: more than f of its replicas
 * recovering, down, or with a failing or lost store. Null when it can (as far as this node sees).
 */
export function namespaceOutage(ns: WatchedNamespace, actors: readonly ActorReport[]): Outage | null {
  const f = Math.floor((ns.replicaCount - 1) / 2);
  const lost: LostReplica[] = [];
  for (const actor of actors) {
    if (actor.ns !== ns.name) continue;
    const replica = lostReplica(actor);
    if (replica !== null) lost.push(replica);
  }
  if (lost.length <= f) return null;
  const which = lost.map((replica) => `${replica.replica} ${replica.why}`).join(', ');
  const todo = ns.durable
    ? 'fix the disk (replicas whose disk fails resume by themselves once it works), or restore the namespace from a backup if their storage is lost'
    : 'its replicas keep their data in memory only, so it cannot come back by itself: restore the namespace from a backup';
  return {
    replicas: lost,
    reason: `namespace ${ns.name} cannot serve: ${lost.length} of ${ns.replicaCount} replicas cannot take part (${which}), more than f = ${f}; ${todo}`,
  };
}

export class NamespaceHealth {
  readonly #source: HealthSource;
  readonly #log: HealthLog;
  readonly #intervalMs: number;
  readonly #graceMs: number;
  readonly #onChange: ((ns: string, reason: string | null) => void) | null;
  /** Since when (performance.now) each namespace has looked unable to serve, not yet marked. */
  readonly #suspect = new Map<string, number>();
  /** Marked namespaces and why. */
  readonly #unavailable = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  #checking = false;
  #stopped = false;
  readonly counters = {
    /** Status snapshots judged. */
    checks: 0,
    /** Snapshots that could not be taken (the node stopping, a control timeout). */
    checkFailures: 0,
    /** Times a namespace was marked (one error line each). */
    entered: 0,
    /** Times a namespace was unmarked (one warn line each). */
    left: 0,
  };

  constructor(source: HealthSource, log: HealthLog, options: HealthOptions = {}) {
    this.#source = source;
    this.#log = log;
    this.#intervalMs = options.intervalMs ?? healthDefaults.intervalMs;
    this.#graceMs = options.graceMs ?? healthDefaults.graceMs;
    this.#onChange = options.onChange ?? null;
    if (!(this.#intervalMs > 0) || !(this.#graceMs >= 0)) throw new RangeError('health monitor: intervalMs must be positive and graceMs not negative');
  }

  /** Takes the status every `intervalMs` until `stop`. */
  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    // The monitor alone never keeps the process alive.
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Why `ns` cannot serve, or null when it can (or is not known to be unable to). */
  unavailable(ns: string): string | null {
    return this.#unavailable.get(ns) ?? null;
  }

  /** The namespaces marked now, with their reasons. */
  get marked(): ReadonlyMap<string, string> {
    return this.#unavailable;
  }

  /**
   * One pass: takes the node's status and judges it. A pass still waiting for its status (a
   * slow worker) is not overlapped by the next; a status that fails changes nothing.
   */
  async check(): Promise<void> {
    if (this.#checking || this.#stopped) return;
    this.#checking = true;
    try {
      const { actors } = await this.#source.status();
      if (!this.#stopped) this.observe(actors, performance.now());
    } catch {
      this.counters.checkFailures += 1;
    } finally {
      this.#checking = false;
    }
  }

  /** Judges one status snapshot taken at `nowMs` (performance.now scale). */
  observe(actors: readonly ActorReport[], nowMs: number): void {
    this.counters.checks += 1;
    const watched = this.#source.namespaces();
    const names = new Set(watched.map((ns) => ns.name));
    // A namespace no longer served is forgotten.
    for (const name of [...this.#suspect.keys()]) if (!names.has(name)) this.#suspect.delete(name);
    for (const name of [...this.#unavailable.keys()]) if (!names.has(name)) this.#unavailable.delete(name);
    for (const ns of watched) {
      const outage = namespaceOutage(ns, actors);
      if (outage === null) {
        this.#suspect.delete(ns.name);
        if (this.#unavailable.delete(ns.name)) this.#leave(ns.name);
        continue;
      }
      if (this.#unavailable.has(ns.name)) {
        // Still down: the reason may name other replicas now; said once already.
        this.#unavailable.set(ns.name, outage.reason);
        continue;
      }
      const since = this.#suspect.get(ns.name);
      if (since === undefined) {
        this.#suspect.set(ns.name, nowMs);
        if (this.#graceMs > 0) continue;
      } else if (nowMs - since < this.#graceMs) {
        continue;
      }
      this.#suspect.delete(ns.name);
      this.#unavailable.set(ns.name, outage.reason);
      this.#enter(ns.name, outage);
    }
  }

  #enter(ns: string, outage: Outage): void {
    this.counters.entered += 1;
    this.#log.error({ namespace: ns, replicas: outage.replicas.map((replica) => replica.replica) }, `namespace_unavailable: ${outage.reason}; callers get unavailable at once until it serves again`);
    this.#onChange?.(ns, outage.reason);
  }

  #leave(ns: string): void {
    this.counters.left += 1;
    this.#log.warn({ namespace: ns }, `namespace_available: namespace ${ns} can serve again`);
    this.#onChange?.(ns, null);
  }
}
