/**
 * The SharedArrayBuffer ring implementation of `Transport` (transport.ts): `ringTransport`,
 * chosen per node with `transport: 'ring'` (mesh.ts). It routes exactly like the MessagePort
 * `Router` (router.ts): every envelope sent to one thread within one event-loop turn leaves as
 * ONE batch at `flush()` (the end of a mailbox drain, or at the latest the next check phase);
 * envelopes for this thread are delivered at flush; the host forwards envelopes for other
 * threads; sinks take batches for links outside the node; malformed batches and envelopes
 * msgpackr cannot encode are counted and dropped.
 *
 * What differs is the wire (ring_link.ts): each link is a ring per direction in shared memory
 * plus a port for batches above the ring's record limit, kept in order with the ring.
 *
 * - Backpressure: a batch that does not fit (ring full) stays queued for its thread, ahead of
 *   anything sent later, and is written when the reader frees space (the reader rings the
 *   writer's doorbell). Nothing is dropped for a full ring. What stays queued is bounded by
 *   `queuedEnvelopesMax` per thread; past it, new envelopes for that thread are dropped and
 *   counted `unroutable` (a reader that stopped reading for that long is frozen or gone).
 * - Reading: all the thread's incoming rings are read together once per event-loop turn
 *   (setImmediate) while records keep coming. When a read finds nothing, the thread spins: up
 *   to `spinPolls` synchronous checks of every ring's head (each an Atomics.load, ~10 ns), and
 *   only then arms every ring's doorbell (Atomics.waitAsync) and sleeps until a writer rings.
 *   research/limits.md §3-4: a wake-up costs as much as a postMessage (~40-80 µs here), a
 *   short spin before sleeping cut one-caller latency from 80 to 28 µs, and long spins hurt
 *   on 2 cores. The spin is synchronous, not one poll per event-loop turn: a turn costs ~8 µs
 *   here, so 200 turns kept six threads on two cores busy for ~2 ms after every message and
 *   cut one-caller throughput several times over (measured while building this).
 * - A peer that dies: the system calls `dropPeer`, which abandons the link (both rings marked
 *   closed, the port closed); a record is visible only once its writer published it, so
 *   nothing half-written of a dead writer is ever read. The replacement gets new rings.
 * - The `codec` a node is started with does not apply here. The ring carries records in the
 *   `layout` of its config: `binary` (the default; ring_codec.ts: fixed layouts for request,
 *   prepare, prepare_ok, commit, reply and the other hot messages, msgpack only for ops, reply
 *   bodies and everything else) or `msgpack` (one msgpackr batch per record). A reader takes
 *   either (the record's tag says which), on both of the link's paths.
 *   Why binary by default: encode + decode per envelope, measured with
 *   .prof/ring_codec_bench.mts (a record encoded into a shared room, copied out, decoded;
 *   medians of 5 interleaved rounds, load average 7-9 from other jobs, so only the ratios
 *   mean much): 128 puts-shaped requests 3.95 -> 2.29 µs (1.7x), 128 prepare_ok 1.25 -> 0.26
 *   µs (4.8x), 128 replies 1.93 -> 1.53 µs (1.3x), one prepare of 128 requests 368 -> 289 µs
 *   (1.3x); records are 4-49% smaller. The knob stays so that the runtime benchmark can put
 *   the two side by side in one run (HARET_RING_LAYOUT=msgpack): what the layout is worth end
 *   to end, against the wake-ups, has not been measured yet (the figures below predate it:
 *   msgpack records).
 *
 * Measured (.prof/ring_bench.mts, puts through a default node, medians of 5 interleaved runs on
 * the 2-core VM while other jobs kept its load average at 8-20, so only the ratios mean much):
 * one caller, port 382 ops/s (p50 1.6 ms), ring 174 (4.0 ms), ring with spinPolls 0 345
 * (2.1 ms); 1,024 callers, port 12.9k ops/s, ring 5.5k, ring with spinPolls 0 9.3k. A bare
 * ring round trip between two threads costs what a port's does (p50 ~40 µs); through this
 * transport a one-envelope round trip measured p50 ~55 µs against ~45 for the port router,
 * with a heavier tail (p99 1-3 ms against 0.1-0.8 ms); the extra is in this layer (msgpackr
 * both ways, the doorbell's promise chain, the extra poll turn, re-arming), not separated
 * further. Spins rarely caught a record (the `spins`/`spinHits` stats), so on a busy machine
 * the spin is CPU taken from the other threads. The port transport stays the default.
 *
 * Memory: every pair of threads is linked, each link two rings (2 MiB by default): a default
 * node's 6 threads have 15 links, 30 MiB reserved, whose pages are touched as the rings lap.
 */

import type { TransferListItem } from 'node:worker_threads';
import type { Codec } from './codec.ts';
import { isEnvelope, type ActorId, type Envelope } from './envelope.ts';
import { ringConfig, validateRingConfig, type RingConfig } from './ring.ts';
import { BatchPacker, RingLink, ringEndOf, ringLinkPair, type LinkStats, type RecordLayout } from './ring_link.ts';
import type { Deliver, LinkSink, PeerLink, Transport, TransportKind, TransportOptions, TransportStats } from './transport.ts';

export type RingTransportConfig = RingConfig & {
  /** Checks of every incoming ring, spun synchronously, before a reader sleeps; 0 sleeps at once. Default 200. */
  readonly spinPolls: number;
  /** Records taken from one link per poll. */
  readonly pumpRecordsMax: number;
  /** Envelopes held for one thread while its ring is full. */
  readonly queuedEnvelopesMax: number;
  /** How this thread's writers encode batches (readers take both). Default `binary`. */
  readonly layout: RecordLayout;
};

export const defaultSpinPolls = 200;
export const defaultRecordLayout: RecordLayout = 'binary';

export type RingTransportStats = TransportStats & {
  /** Writes that found a ring full (the batch waited for space). */
  readonly ringFull: number;
  /** Batches above the record limit, posted on a link's port. */
  readonly portPosts: number;
  /** Times a reader armed its doorbell, was woken by it, and a writer rang it. */
  readonly sleeps: number;
  readonly wakeups: number;
  readonly notifies: number;
  /** Spins before sleeping, and those that caught a record. */
  readonly spins: number;
  readonly spinHits: number;
  /** Envelopes written in a hot binary layout, and as generic ones (ring_codec.ts). */
  readonly hotEnvelopes: number;
  readonly genericEnvelopes: number;
};

export function validateRingTransportConfig(config: RingTransportConfig): string | null {
  const ring = validateRingConfig(config);
  if (ring !== null) return ring;
  if (!Number.isSafeInteger(config.spinPolls) || config.spinPolls < 0 || config.spinPolls > 1_000_000) return 'spinPolls must be an integer between 0 and 1000000';
  if (!Number.isSafeInteger(config.pumpRecordsMax) || config.pumpRecordsMax < 1) return 'pumpRecordsMax must be a positive integer';
  if (!Number.isSafeInteger(config.queuedEnvelopesMax) || config.queuedEnvelopesMax < 1) return 'queuedEnvelopesMax must be a positive integer';
  if (config.layout !== 'binary' && config.layout !== 'msgpack') return "layout must be 'binary' or 'msgpack'";
  return null;
}

/**
 * Defaults, with the spin overridable by HARET_RING_SPIN_POLLS and the layout by
 * HARET_RING_LAYOUT (read once per thread; workers inherit the environment): measuring knobs
 * for the benchmark, like HARET_MEASURE_POST_BYTES.
 */
export function defaultRingTransportConfig(env: NodeJS.ProcessEnv = process.env): RingTransportConfig {
  const spin = env['HARET_RING_SPIN_POLLS'];
  const layout = env['HARET_RING_LAYOUT'];
  return {
    ...ringConfig(),
    spinPolls: spin === undefined ? defaultSpinPolls : Number(spin),
    pumpRecordsMax: 64,
    queuedEnvelopesMax: 1 << 20,
    layout: layout === undefined ? defaultRecordLayout : (layout as RecordLayout),
  };
}

export class RingTransport implements Transport {
  readonly #self: string;
  readonly #deliver: Deliver;
  readonly #directory: Map<ActorId, string>;
  readonly #options: TransportOptions;
  readonly #config: RingTransportConfig;
  readonly #packer = new BatchPacker();
  readonly #links = new Map<string, RingLink>();
  /** Counters of links already dropped, so stats survive a peer's restart. */
  #closedLinkStats: LinkStats = { full: 0, portPosts: 0, sleeps: 0, wakeups: 0, notifies: 0, hotEnvelopes: 0, genericEnvelopes: 0 };
  readonly #sinks = new Map<string, LinkSink>();
  readonly #outbox = new Map<string, Envelope[]>();
  #local: Envelope[] = [];
  #flushScheduled = false;
  #pollScheduled = false;
  /** Inside `#poll`: a doorbell found already rung then must not start a nested poll. */
  #polling = false;
  /** Spins started, and spins that found a record before their end. */
  #spins = 0;
  #spinHits = 0;
  #closed = false;
  #posts = 0;
  #out = 0;
  #in = 0;
  #unroutable = 0;
  #malformed = 0;
  #unencodable = 0;
  #forwarded = 0;
  #bytes = 0;
  #postsMeasured = 0;

  constructor(self: string, directory: ReadonlyMap<ActorId, string>, deliver: Deliver, options: TransportOptions, config: RingTransportConfig) {
    const problem = validateRingTransportConfig(config);
    if (problem !== null) throw new RangeError(problem);
    this.#self = self;
    this.#directory = new Map(directory);
    this.#deliver = deliver;
    this.#options = options;
    this.#config = config;
  }

  setPeer(thread: string, link: PeerLink): void {
    const end = ringEndOf(link);
    this.#dropLink(thread);
    const ring = new RingLink(
      end,
      this.#packer,
      {
        batch: (items) => this.#accept(items),
        malformed: () => (this.#malformed += 1),
        readable: () => this.#wake(),
        writable: () => this.#scheduleFlush(),
      },
      this.#config.layout,
    );
    this.#links.set(thread, ring);
    this.#wake();
  }

  /**
   * The peer thread died: its link is abandoned, and what was queued for it (a batch its full
   * ring held back) is dropped and counted, as the port router drops envelopes for a thread that
   * is gone. Not handed to its successor: that one starts from recovery, and a backlog addressed
   * to the dead one would only delay what is sent to it afresh.
   */
  dropPeer(thread: string): void {
    this.#dropLink(thread);
    const queued = this.#outbox.get(thread);
    if (queued !== undefined) {
      this.#unroutable += queued.length;
      this.#outbox.delete(thread);
    }
  }

  setSink(thread: string, sink: LinkSink): void {
    this.#sinks.set(thread, sink);
  }

  dropSink(thread: string): void {
    this.#sinks.delete(thread);
  }

  addRoutes(entries: readonly (readonly [ActorId, string])[]): void {
    for (const [actor, thread] of entries) this.#directory.set(actor, thread);
  }

  hostOf(actor: ActorId): string | undefined {
    return this.#directory.get(actor) ?? this.#options.resolve?.(actor);
  }

  send(envelope: Envelope): void {
    if (this.#closed) return;
    const thread = this.hostOf(envelope.to) ?? this.#options.defaultThread;
    if (thread === undefined) {
      this.#unroutable += 1;
      return;
    }
    if (thread === this.#self) {
      this.#local.push(envelope);
    } else {
      let queue = this.#outbox.get(thread);
      if (queue === undefined) {
        queue = [];
        this.#outbox.set(thread, queue);
      }
      if (queue.length >= this.#config.queuedEnvelopesMax) {
        this.#unroutable += 1;
        return;
      }
      queue.push(envelope);
    }
    this.#scheduleFlush();
  }

  /** Writes everything queued: one batch per destination thread; what a full ring refuses stays queued. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    for (const [thread, batch] of this.#outbox) {
      if (batch.length === 0) continue;
      const link = this.#links.get(thread);
      // A ring found full stays queued untouched (not encoded again) until its reader frees space.
      if (link?.waitingForSpace === true) continue;
      if (link !== undefined) {
        this.#outbox.set(thread, []);
        this.#write(thread, link, batch);
        continue;
      }
      this.#outbox.set(thread, []);
      const sink = this.#sinks.get(thread);
      if (sink === undefined) {
        this.#unroutable += batch.length;
        continue;
      }
      this.#posts += 1;
      this.#out += batch.length;
      sink(batch);
    }
    if (this.#local.length > 0) {
      const local = this.#local;
      this.#local = [];
      this.#deliver(local, true);
    }
  }

  close(): void {
    this.#closed = true;
    for (const thread of [...this.#links.keys()]) this.#dropLink(thread);
    this.#sinks.clear();
    this.#outbox.clear();
    this.#local = [];
  }

  stats(): RingTransportStats {
    const links = [...this.#links.values()].map((link) => link.stats());
    const sum = (key: keyof LinkStats): number => links.reduce((total, s) => total + s[key], this.#closedLinkStats[key]);
    return {
      posts: this.#posts,
      envelopesOut: this.#out,
      envelopesIn: this.#in,
      unroutable: this.#unroutable,
      malformed: this.#malformed,
      unencodable: this.#unencodable,
      forwarded: this.#forwarded,
      bytesMeasured: this.#bytes,
      postsMeasured: this.#postsMeasured,
      ringFull: sum('full'),
      portPosts: sum('portPosts'),
      sleeps: sum('sleeps'),
      wakeups: sum('wakeups'),
      notifies: sum('notifies'),
      spins: this.#spins,
      spinHits: this.#spinHits,
      hotEnvelopes: sum('hotEnvelopes'),
      genericEnvelopes: sum('genericEnvelopes'),
    };
  }

  /** Takes envelopes from outside the node's threads, like a batch read from a link. */
  receiveBatch(batch: readonly Envelope[]): void {
    this.#accept(batch);
  }

  #write(thread: string, link: RingLink, batch: readonly Envelope[]): void {
    const result = link.write(batch);
    this.#unencodable += result.unencodable;
    switch (result.outcome) {
      case 'written':
        if (result.batch.length === 0) return;
        this.#posts += 1;
        this.#out += result.batch.length;
        this.#bytes += result.bytes;
        this.#postsMeasured += 1;
        return;
      case 'full': {
        // Back at the head of the queue; the link calls `writable` when the reader frees space.
        const later = this.#outbox.get(thread) ?? [];
        this.#outbox.set(thread, [...result.batch, ...later]);
        return;
      }
      case 'closed':
        this.#unroutable += result.batch.length;
        return;
      default: {
        const never: never = result.outcome;
        throw new Error(`unknown batch outcome ${String(never)}`);
      }
    }
  }

  #dropLink(thread: string): void {
    const link = this.#links.get(thread);
    if (link === undefined) return;
    const s = link.stats();
    const c = this.#closedLinkStats;
    this.#closedLinkStats = {
      full: c.full + s.full,
      portPosts: c.portPosts + s.portPosts,
      sleeps: c.sleeps + s.sleeps,
      wakeups: c.wakeups + s.wakeups,
      notifies: c.notifies + s.notifies,
      hotEnvelopes: c.hotEnvelopes + s.hotEnvelopes,
      genericEnvelopes: c.genericEnvelopes + s.genericEnvelopes,
    };
    link.close();
    this.#links.delete(thread);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      if (this.#flushScheduled) this.flush();
    });
  }

  /** A doorbell rang or a port message came: read now. */
  #wake(): void {
    if (this.#pollScheduled || this.#closed) return;
    if (this.#polling) {
      this.#pollScheduled = true;
      setImmediate(() => this.#poll());
    } else this.#poll();
  }

  /**
   * Reads every incoming ring. When nothing was there, spins: up to `spinPolls` more checks of
   * every ring's head, synchronously (a few microseconds; see the file's opening comment). If
   * records came, the next turn polls again (traffic tends to continue); else every ring's
   * doorbell is armed and the thread sleeps until a writer rings.
   */
  #poll(): void {
    this.#pollScheduled = false;
    if (this.#closed) return;
    this.#polling = true;
    try {
      let taken = this.#pumpAll();
      if (taken === 0 && this.#config.spinPolls > 0 && this.#spin()) {
        taken = this.#pumpAll();
        this.#spinHits += 1;
      }
      if (taken > 0) {
        this.#pollScheduled = true;
        setImmediate(() => this.#poll());
        return;
      }
      for (const link of this.#links.values()) link.sleep();
    } finally {
      this.#polling = false;
    }
  }

  #pumpAll(): number {
    let taken = 0;
    for (const link of this.#links.values()) taken += link.pump(this.#config.pumpRecordsMax);
    return taken;
  }

  /** Up to `spinPolls` checks of every incoming ring's head; true as soon as one has a record. */
  #spin(): boolean {
    this.#spins += 1;
    // The rings themselves, gathered once: a check is then one Atomics.load (~10 ns here).
    const readers = [...this.#links.values()].map((link) => link.reader);
    for (let poll = 0; poll < this.#config.spinPolls; poll += 1) {
      for (const reader of readers) if (reader.ready) return true;
    }
    return false;
  }

  #accept(decoded: readonly unknown[]): void {
    const batch: Envelope[] = [];
    for (const item of decoded) {
      if (!isEnvelope(item)) this.#malformed += 1;
      else if (this.#options.forward === true && this.#isElsewhere(item.to)) {
        this.#forwarded += 1;
        this.send(item);
      } else batch.push(item);
    }
    this.#in += batch.length;
    if (batch.length > 0) this.#deliver(batch, false);
  }

  /** True when an actor is known to live on another thread (or node) than this one. */
  #isElsewhere(actor: ActorId): boolean {
    const thread = this.hostOf(actor);
    return thread !== undefined && thread !== this.#self;
  }
}

/** The ring mesh as a transport kind, with its sizes and spin (`ringTransport` has the defaults). */
export function makeRingTransportKind(config: RingTransportConfig = defaultRingTransportConfig()): TransportKind {
  const problem = validateRingTransportConfig(config);
  if (problem !== null) throw new RangeError(problem);
  return {
    name: 'ring',
    create: (self: string, directory: ReadonlyMap<ActorId, string>, _codec: Codec, deliver: Deliver, options: TransportOptions = {}) => new RingTransport(self, directory, deliver, options, config),
    pair: () => ringLinkPair(config),
    // The rings are shared by postMessage, not moved; only the port is transferred.
    transferList: (end): TransferListItem[] => [ringEndOf(end).port],
  };
}

export const ringTransport: TransportKind = makeRingTransportKind();
