/**
 * A seeded, simulated network between the nodes of a simulated cluster: replicas (numbers
 * 0..n-1) and clients (string ids). Single-threaded and deterministic: every decision (loss,
 * duplication, delay) is drawn from the network's own PRNG, and messages due at the same tick
 * come out in the order they were queued.
 *
 * Faults, per message: loss, duplication (the copy gets its own delay), and a delay drawn from
 * a uniform or exponential distribution, which reorders messages. Per link: a directed link
 * matrix (symmetric and asymmetric partitions; a message is dropped when it is sent over a cut
 * link, and when the link is cut while it is in flight) and clogging (messages on a clogged
 * link are held until the clog ends). The queue is bounded: over `queueMax` a new message is
 * dropped and counted.
 */

import { Prng } from './prng.ts';

/** A replica by index, or a client by id. */
export type NodeId = number | string;

export type DelayDistribution = 'uniform' | 'exponential';

/** Fault parameters; VOPR draws them per seed (swarm testing). */
export type NetworkFaults = {
  /** Probability that a message is lost, in [0, 1]. */
  readonly lossProbability: number;
  /** Probability that a message is delivered twice, in [0, 1]. */
  readonly duplicateProbability: number;
  /** Minimum delay in ticks (>= 1: nothing arrives in the tick it was sent). */
  readonly delayMinTicks: number;
  /** Maximum delay in ticks (>= delayMinTicks). */
  readonly delayMaxTicks: number;
  /** uniform in [min, max]; exponential: min + Exp(mean), capped at max. */
  readonly delayDistribution: DelayDistribution;
  /** Mean of the exponential part (ticks above the minimum). */
  readonly delayMeanTicks: number;
  /** Messages in flight; beyond it new messages are dropped. */
  readonly queueMax: number;
};

export const reliableNetwork: NetworkFaults = {
  lossProbability: 0,
  duplicateProbability: 0,
  delayMinTicks: 1,
  delayMaxTicks: 1,
  delayDistribution: 'uniform',
  delayMeanTicks: 1,
  queueMax: 100_000,
};

export function validateNetworkFaults(faults: NetworkFaults): string | null {
  const probability = (p: number): boolean => Number.isFinite(p) && p >= 0 && p <= 1;
  if (!probability(faults.lossProbability)) return 'lossProbability must be in [0, 1]';
  if (!probability(faults.duplicateProbability)) return 'duplicateProbability must be in [0, 1]';
  if (!Number.isSafeInteger(faults.delayMinTicks) || faults.delayMinTicks < 1) return 'delayMinTicks must be an integer >= 1';
  if (!Number.isSafeInteger(faults.delayMaxTicks) || faults.delayMaxTicks < faults.delayMinTicks) return 'delayMaxTicks must be an integer >= delayMinTicks';
  if (!(faults.delayMeanTicks > 0)) return 'delayMeanTicks must be positive';
  if (!Number.isSafeInteger(faults.queueMax) || faults.queueMax < 1) return 'queueMax must be a positive integer';
  return null;
}

export type Envelope<M> = {
  /** Unique per network, in send order (duplicates get their own id). */
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly message: M;
  readonly sentAt: number;
  readonly deliverAt: number;
  /** True for the extra copy made by duplication. */
  readonly duplicate: boolean;
};

export type NetworkStats = {
  sent: number;
  delivered: number;
  duplicated: number;
  droppedLoss: number;
  droppedPartition: number;
  droppedOverflow: number;
  droppedFilter: number;
};

/** Returns true to drop a message (scenario tests' send filters). */
export type SendFilter<M> = (from: NodeId, to: NodeId, message: M) => boolean;

export function nodeKey(id: NodeId): string {
  return typeof id === 'number' ? `r${id}` : `c:${id}`;
}

export function linkKey(from: NodeId, to: NodeId): string {
  return `${nodeKey(from)}>${nodeKey(to)}`;
}

/** A binary min-heap on (deliverAt, id): FIFO among messages due at the same tick. */
class EnvelopeHeap<M> {
  readonly #items: Envelope<M>[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Envelope<M> | undefined {
    return this.#items[0];
  }

  push(item: Envelope<M>): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i] as Envelope<M>, items[parent] as Envelope<M>)) break;
      swap(items, i, parent);
      i = parent;
    }
  }

  pop(): Envelope<M> | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && before(items[left] as Envelope<M>, items[smallest] as Envelope<M>)) smallest = left;
      if (right < items.length && before(items[right] as Envelope<M>, items[smallest] as Envelope<M>)) smallest = right;
      if (smallest === i) break;
      swap(items, i, smallest);
      i = smallest;
    }
    return top;
  }

  /** Removes every item matching `predicate`; returns how many. */
  removeWhere(predicate: (item: Envelope<M>) => boolean): number {
    const kept = this.#items.filter((item) => !predicate(item));
    const removed = this.#items.length - kept.length;
    if (removed > 0) {
      this.#items.length = 0;
      for (const item of kept) this.push(item);
    }
    return removed;
  }
}

function before<M>(a: Envelope<M>, b: Envelope<M>): boolean {
  return a.deliverAt < b.deliverAt || (a.deliverAt === b.deliverAt && a.id < b.id);
}

function swap<T>(items: T[], i: number, j: number): void {
  const tmp = items[i] as T;
  items[i] = items[j] as T;
  items[j] = tmp;
}

export class Network<M> {
  readonly #prng: Prng;
  #faults: NetworkFaults;
  readonly #queue = new EnvelopeHeap<M>();
  /** Directed links that are cut: `linkKey(from, to)`. */
  readonly #cut = new Set<string>();
  /** Directed links clogged until the given tick. */
  readonly #clogged = new Map<string, number>();
  readonly #filters = new Map<number, SendFilter<M>>();
  #nextFilterId = 1;
  #nextId = 1;
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    duplicated: 0,
    droppedLoss: 0,
    droppedPartition: 0,
    droppedOverflow: 0,
    droppedFilter: 0,
  };

  constructor(prng: Prng, faults: NetworkFaults = reliableNetwork) {
    const problem = validateNetworkFaults(faults);
    if (problem !== null) throw new RangeError(problem);
    this.#prng = prng;
    this.#faults = faults;
  }

  get faults(): NetworkFaults {
    return this.#faults;
  }

  setFaults(faults: NetworkFaults): void {
    const problem = validateNetworkFaults(faults);
    if (problem !== null) throw new RangeError(problem);
    this.#faults = faults;
  }

  /** Messages in flight. */
  get inFlight(): number {
    return this.#queue.size;
  }

  // ---- links -------------------------------------------------------------------------------

  canDeliver(from: NodeId, to: NodeId): boolean {
    return !this.#cut.has(linkKey(from, to));
  }

  /** Cuts the directed link from -> to (an asymmetric partition when only one way). */
  cut(from: NodeId, to: NodeId): void {
    if (from !== to) this.#cut.add(linkKey(from, to));
  }

  /** Restores the directed link from -> to. */
  restore(from: NodeId, to: NodeId): void {
    this.#cut.delete(linkKey(from, to));
  }

  /** Cuts every link between the two groups, both ways. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.cut(a, b);
        this.cut(b, a);
      }
    }
  }

  /** Cuts node off from every other node given, both ways. */
  isolate(node: NodeId, others: readonly NodeId[]): void {
    this.partition([node], others.filter((other) => other !== node));
  }

  /** Holds messages on from -> to until tick `until` (extends an existing clog). */
  clog(from: NodeId, to: NodeId, until: number): void {
    const key = linkKey(from, to);
    this.#clogged.set(key, Math.max(until, this.#clogged.get(key) ?? 0));
  }

  /** Restores every link and removes every clog. */
  heal(): void {
    this.#cut.clear();
    this.#clogged.clear();
  }

  get partitioned(): boolean {
    return this.#cut.size > 0;
  }

  get cutLinks(): readonly string[] {
    return Array.from(this.#cut).sort();
  }

  // ---- filters (scenario tests) ------------------------------------------------------------

  addFilter(filter: SendFilter<M>): number {
    const id = this.#nextFilterId++;
    this.#filters.set(id, filter);
    return id;
  }

  removeFilter(id: number): void {
    this.#filters.delete(id);
  }

  clearFilters(): void {
    this.#filters.clear();
  }

  // ---- traffic -----------------------------------------------------------------------------

  /** Queues a message sent at tick `now`; returns the envelopes queued (0, 1 or 2). */
  send(from: NodeId, to: NodeId, message: M, now: number): readonly Envelope<M>[] {
    this.stats.sent += 1;
    for (const filter of this.#filters.values()) {
      if (filter(from, to, message)) {
        this.stats.droppedFilter += 1;
        return [];
      }
    }
    if (!this.canDeliver(from, to)) {
      this.stats.droppedPartition += 1;
      return [];
    }
    const faults = this.#faults;
    if (this.#prng.chance(faults.lossProbability)) {
      this.stats.droppedLoss += 1;
      return [];
    }
    const queued: Envelope<M>[] = [];
    const copies = this.#prng.chance(faults.duplicateProbability) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      if (this.#queue.size >= faults.queueMax) {
        this.stats.droppedOverflow += 1;
        continue;
      }
      const clogUntil = this.#clogged.get(linkKey(from, to)) ?? 0;
      const deliverAt = Math.max(now + this.#drawDelay(), clogUntil);
      const envelope: Envelope<M> = { id: this.#nextId++, from, to, message, sentAt: now, deliverAt, duplicate: copy > 0 };
      if (copy > 0) this.stats.duplicated += 1;
      this.#queue.push(envelope);
      queued.push(envelope);
    }
    return queued;
  }

  /**
   * Removes and returns every envelope due at or before `now`, in (deliverAt, id) order.
   * Envelopes whose link has been cut since they were sent are dropped; envelopes on a link
   * clogged past `now` are held.
   */
  deliverDue(now: number): Envelope<M>[] {
    const due: Envelope<M>[] = [];
    const held: Envelope<M>[] = [];
    for (;;) {
      const top = this.#queue.peek();
      if (top === undefined || top.deliverAt > now) break;
      this.#queue.pop();
      if (!this.canDeliver(top.from, top.to)) {
        this.stats.droppedPartition += 1;
        continue;
      }
      const clogUntil = this.#clogged.get(linkKey(top.from, top.to));
      if (clogUntil !== undefined && clogUntil > now) {
        held.push({ ...top, deliverAt: clogUntil });
        continue;
      }
      due.push(top);
    }
    for (const envelope of held) this.#queue.push(envelope);
    this.stats.delivered += due.length;
    return due;
  }

  /** Drops every message in flight to `to` (e.g. a crashed node's mailbox); returns how many. */
  dropTo(to: NodeId): number {
    const key = nodeKey(to);
    return this.#queue.removeWhere((envelope) => nodeKey(envelope.to) === key);
  }

  /** Drops every message in flight. */
  clear(): number {
    return this.#queue.removeWhere(() => true);
  }

  /** Forgets expired clogs (cheap housekeeping; call once per tick). */
  expireClogs(now: number): void {
    for (const [key, until] of this.#clogged) if (until <= now) this.#clogged.delete(key);
  }

  #drawDelay(): number {
    const { delayMinTicks: min, delayMaxTicks: max } = this.#faults;
    if (max === min) return min;
    if (this.#faults.delayDistribution === 'uniform') return this.#prng.range(min, max);
    return Math.min(max, min + Math.floor(this.#prng.exponential(this.#faults.delayMeanTicks)));
  }
}
