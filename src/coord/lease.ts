/**
 * Kept-alive leases (src/coord/README.md "Leases").
 *
 * Safety: before each keep-alive (and the grant) the client notes the monotonic time it sends
 * it. The service counts a lease's TTL from the keep-alive's commit, which comes after the
 * send, so a lease renewed by a keep-alive sent at `s` lives at the service at least until
 * `s + ttlMs`. The client gives it up at `s + ttlMs - marginMs` (the margin absorbs timer and
 * event-loop lateness and clock-rate differences): `lost` fires there, from a timer, unless a
 * newer keep-alive succeeded. It fires at once when the service answers that the lease is gone.
 *
 * Cost: one timer per keeper (the earliest deadline or due keep-alive), at most one
 * keep-alive in flight per lease, and the keep-alives due together travel in one
 * lease_keepalive op (up to 1,000 ids). A lease due within half its period of a keep-alive
 * being sent now joins it, so the schedules of leases with the same period align after one
 * round and stay aligned: n leases cost about n / 1000 ops per period, not n.
 */

import { HaretError } from '../client/errors.ts';
import type { KeptLease, LeaseOptions } from '../client/namespace_client.ts';
import { treeErrors } from '../tree/errors.ts';
import type { CoordClient, CoordContext } from './context.ts';

/** Ids in one lease_keepalive op (the service's default keepAliveIdsMax); halved if the namespace allows fewer. */
const keepAliveIdsMax = 1_000;

type LeaseClient = Pick<CoordClient, 'leaseGrant' | 'leaseKeepAlive' | 'leaseRevoke'>;

/** The keeper's record of one lease. */
class LeaseEntry {
  readonly id: number;
  readonly ttlMs: number;
  readonly keepAliveMs: number;
  readonly retryMs: number;
  readonly marginMs: number;
  /** Monotonic ms at which the client gives the lease up. */
  deadline: number;
  /** Monotonic ms at which the next keep-alive is due. */
  nextAt: number;
  inFlight = false;
  /** Why the lease ended (null while kept). */
  error: HaretError | null = null;
  readonly listeners = new Set<(error: HaretError) => void>();
  readonly lost: Promise<HaretError>;
  readonly #resolveLost: (error: HaretError) => void;

  constructor(id: number, timing: Timing, sentAt: number) {
    this.id = id;
    this.ttlMs = timing.ttlMs;
    this.keepAliveMs = timing.keepAliveMs;
    this.retryMs = timing.retryMs;
    this.marginMs = timing.marginMs;
    this.deadline = sentAt + timing.ttlMs - timing.marginMs;
    this.nextAt = sentAt + timing.keepAliveMs;
    let resolveLost: (error: HaretError) => void = () => {};
    this.lost = new Promise<HaretError>((resolve) => {
      resolveLost = resolve;
    });
    this.#resolveLost = resolveLost;
  }

  /** Records the loss once; returns false if it had ended already. */
  end(error: HaretError): boolean {
    if (this.error !== null) return false;
    this.error = error;
    this.#resolveLost(error);
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener(error);
    return true;
  }
}

type Timing = { readonly ttlMs: number; readonly keepAliveMs: number; readonly retryMs: number; readonly marginMs: number };

/** The KeptLease handed to the application. */
export class KeptLeaseHandle implements KeptLease {
  readonly #entry: LeaseEntry;
  readonly #keeper: LeaseKeeper;
  #revoking: Promise<void> | null = null;

  constructor(entry: LeaseEntry, keeper: LeaseKeeper) {
    this.#entry = entry;
    this.#keeper = keeper;
  }

  get id(): number {
    return this.#entry.id;
  }
  get ttlMs(): number {
    return this.#entry.ttlMs;
  }
  get lost(): Promise<HaretError> {
    return this.#entry.lost;
  }
  get alive(): boolean {
    return this.#entry.error === null && this.#keeper.now() < this.#entry.deadline;
  }
  /** Monotonic ms (performance.now()) at which the client gives the lease up unless a keep-alive succeeds first. */
  get deadline(): number {
    return this.#entry.deadline;
  }

  /** Calls `listener` once when the lease is lost (now, synchronously, if it is); returns the unsubscribe. */
  subscribe(listener: (error: HaretError) => void): () => void {
    const error = this.#entry.error;
    if (error !== null) {
      listener(error);
      return () => {};
    }
    this.#entry.listeners.add(listener);
    return () => this.#entry.listeners.delete(listener);
  }

  /**
   * `lost` fires (code `stopped`) before the revoke is sent: the holder stops acting before
   * its nodes go. A lease already gone at the service counts as revoked. Idempotent: every call
   * returns the first call's promise.
   */
  revoke(): Promise<void> {
    if (this.#revoking === null) this.#revoking = this.#keeper.revoke(this.#entry);
    return this.#revoking;
  }
}

/**
 * Calls `listener` once when `lease` is lost; returns the unsubscribe. For a lease of another
 * making (not a KeptLeaseHandle) it chains on `lost`, which cannot be unsubscribed (the call is
 * skipped instead).
 */
export function onLoss(lease: KeptLease, listener: (error: HaretError) => void): () => void {
  if (lease instanceof KeptLeaseHandle) return lease.subscribe(listener);
  let subscribed = true;
  void lease.lost.then((error) => {
    if (subscribed) listener(error);
  });
  return () => {
    subscribed = false;
  };
}

function invalid(reason: string): HaretError {
  return HaretError.fromTree(treeErrors.invalidRequest(reason), false);
}

function timingOf(options: LeaseOptions): Timing {
  if (typeof options !== 'object' || options === null) throw invalid('grantLease needs options { ttlMs }');
  const { ttlMs } = options;
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw invalid(`lease ttlMs must be a positive integer, got ${String(ttlMs)}`);
  const marginMs = options.marginMs ?? Math.max(ttlMs / 10, 50);
  if (typeof marginMs !== 'number' || !Number.isFinite(marginMs) || marginMs < 0 || marginMs >= ttlMs) {
    throw invalid(`lease marginMs must be at least 0 and below ttlMs (${ttlMs}), got ${String(marginMs)}`);
  }
  const keepAliveMs = options.keepAliveMs ?? ttlMs / 3;
  if (typeof keepAliveMs !== 'number' || !Number.isFinite(keepAliveMs) || keepAliveMs <= 0 || keepAliveMs >= ttlMs - marginMs) {
    throw invalid(`lease keepAliveMs must be above 0 and below ttlMs - marginMs (${ttlMs - marginMs}), got ${String(keepAliveMs)}`);
  }
  return { ttlMs, keepAliveMs, marginMs, retryMs: Math.min(keepAliveMs, Math.max(ttlMs / 10, 10)) };
}

function expired(entry: LeaseEntry): HaretError {
  return new HaretError(
    'timeout',
    `lease ${entry.id}: no keep-alive succeeded in time (ttl ${entry.ttlMs} ms, margin ${entry.marginMs} ms); the service may expire it`,
    'maybe',
  );
}

function gone(id: number): HaretError {
  return new HaretError('no_such_lease', `lease ${id} is gone at the service (expired, revoked, or not this client's)`, true, treeErrors.noSuchLease(id));
}

/** Keeps the leases of one client alive. */
export class LeaseKeeper {
  readonly #db: LeaseClient;
  readonly #context: CoordContext;
  readonly #entries = new Map<number, LeaseEntry>();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #batchMax = keepAliveIdsMax;

  constructor(context: CoordContext) {
    this.#context = context;
    this.#db = context.db;
  }

  now(): number {
    return performance.now();
  }

  /** Leases kept now. */
  get size(): number {
    return this.#entries.size;
  }

  async grant(options: LeaseOptions): Promise<KeptLeaseHandle> {
    const timing = timingOf(options);
    const sentAt = this.now();
    const granted = await this.#db.leaseGrant(timing.ttlMs);
    const entry = new LeaseEntry(granted.id, timing, sentAt);
    if (this.now() >= entry.deadline) {
      // The grant took so long that the service may expire the lease before we could use it.
      this.#db.leaseRevoke(granted.id).catch(() => {});
      throw new HaretError('timeout', `lease ${granted.id} was granted too late to keep it (after ${Math.round(this.now() - sentAt)} ms of ${timing.ttlMs}); revoked`, true);
    }
    this.#entries.set(entry.id, entry);
    this.#arm(Math.min(entry.nextAt, entry.deadline));
    return new KeptLeaseHandle(entry, this);
  }

  /** Ends the lease (`lost`: stopped), then revokes it at the service. */
  async revoke(entry: LeaseEntry): Promise<void> {
    this.#end(entry, new HaretError('stopped', `lease ${entry.id} was revoked by this client`, false));
    try {
      await this.#db.leaseRevoke(entry.id);
    } catch (error) {
      if (error instanceof HaretError && (error.code === 'no_such_lease' || error.code === 'lease_not_owned')) return;
      throw error;
    }
  }

  #end(entry: LeaseEntry, error: HaretError): void {
    if (!entry.end(error)) return;
    this.#entries.delete(entry.id);
    if (this.#entries.size === 0) this.#disarm();
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  /** Makes sure the timer fires no later than `at`. */
  #arm(at: number): void {
    if (at >= this.#timerAt) return;
    this.#disarm();
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#wake(), Math.max(0, Math.ceil(at - this.now())));
    this.#timer.unref();
  }

  #wake(): void {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    let anyDue = false;
    for (const entry of [...this.#entries.values()]) {
      if (now >= entry.deadline) this.#end(entry, expired(entry));
      else if (!entry.inFlight && entry.nextAt <= now) anyDue = true;
    }
    if (anyDue) {
      // Leases due within half their period join this send: their schedules align with it.
      const due = [...this.#entries.values()].filter((entry) => !entry.inFlight && entry.nextAt <= now + entry.keepAliveMs / 2);
      for (let start = 0; start < due.length; start += this.#batchMax) this.#send(due.slice(start, start + this.#batchMax));
    }
    this.#rearm();
  }

  /** Arms the timer for the earliest deadline or due keep-alive of all leases. */
  #rearm(): void {
    let at = Number.POSITIVE_INFINITY;
    for (const entry of this.#entries.values()) {
      at = Math.min(at, entry.deadline);
      if (!entry.inFlight) at = Math.min(at, entry.nextAt);
    }
    if (at !== Number.POSITIVE_INFINITY) this.#arm(at);
  }

  #send(batch: readonly LeaseEntry[]): void {
    const sentAt = this.now();
    for (const entry of batch) entry.inFlight = true;
    this.#context.counters.keepAliveOps += 1;
    this.#context.counters.keepAliveIds += batch.length;
    this.#db.leaseKeepAlive(batch.map((entry) => entry.id)).then(
      (result) => {
        batch.forEach((entry, index) => {
          entry.inFlight = false;
          if (entry.error !== null) return;
          if (result.alive[index] === true) {
            entry.deadline = Math.max(entry.deadline, sentAt + entry.ttlMs - entry.marginMs);
            entry.nextAt = sentAt + entry.keepAliveMs;
          } else {
            this.#end(entry, gone(entry.id));
          }
        });
        this.#rearm();
      },
      (error: unknown) => {
        const now = this.now();
        for (const entry of batch) {
          entry.inFlight = false;
          if (entry.error !== null) continue;
          this.#failed(entry, error, batch.length, now);
        }
        this.#rearm();
      },
    );
  }

  /** A keep-alive carrying `entry` failed: lose the lease when retrying cannot help, else retry soon. */
  #failed(entry: LeaseEntry, error: unknown, batchSize: number, now: number): void {
    if (!(error instanceof HaretError)) {
      this.#end(entry, new HaretError('internal', `keep-alive of lease ${entry.id} failed: ${String(error)}`, 'maybe'));
      return;
    }
    const tree = error.treeError;
    if (tree !== null && (tree.code === 'no_such_lease' || tree.code === 'lease_not_owned')) {
      // The error names one lease: that one is gone; the others of the batch go again at once.
      if (tree.id === entry.id || batchSize === 1) this.#end(entry, error);
      else entry.nextAt = now;
      return;
    }
    if (error.code === 'invalid_request' && batchSize > 1) {
      // The namespace allows fewer ids per keep-alive than we sent: send smaller batches.
      this.#batchMax = Math.max(1, Math.floor(batchSize / 2));
      entry.nextAt = now;
      return;
    }
    if (error.code === 'stopped' || error.code === 'invalid_request' || error.code === 'unauthenticated' || error.code === 'unknown_namespace') {
      // The client is closed or refused: no keep-alive through it can succeed.
      this.#end(entry, error);
      return;
    }
    entry.nextAt = now + entry.retryMs;
  }
}
