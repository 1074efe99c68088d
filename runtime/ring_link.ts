/**
 * One end of a ring link between two threads (ring_transport.ts): a ring each way (ring.ts)
 * and a MessagePort for the rare batch larger than a ring record.
 *
 * Order across the two paths: a batch too large for the ring is posted on the port, and a
 * marker record (`tagOnPort`) is written into the ring first, in its place. The reader takes
 * the next port message when it reads a marker and reads nothing further from the ring until
 * that message is there, so a link delivers batches in the order they were written whatever
 * path each took. A marker that cannot be written (ring full) holds the batch back with the
 * rest of the queue: nothing is posted ahead of it.
 *
 * Encoding, by the transport's `layout`: `binary` records (ring_codec.ts: a fixed layout for the
 * hot messages, actor ids interned per link direction), or one msgpackr batch per record (like
 * codec.ts's msgpack codec). Either is encoded straight into the ring's free space when it is
 * contiguous and large enough; otherwise into private memory and copied in. The reader takes
 * both, whatever its own layout: the record's tag says which. Records are copied out before
 * decoding (research/limits.md §2: unpack on a shared view is much slower).
 */

import { MessageChannel, MessagePort } from 'node:worker_threads';
import { Packr, Unpackr } from 'msgpackr';
import type { Envelope } from './envelope.ts';
import { RecordDecoder, RecordEncoder } from './ring_codec.ts';
import { createRing, RingReader, RingWriter, type RingConfig, type WriteOutcome } from './ring.ts';
import type { PeerLink } from './transport.ts';

/** A record holding one msgpack-encoded batch. */
export const tagBatch = 1;
/** A record saying: the next batch of this link is the next message on its port. */
export const tagOnPort = 2;
/** A record holding one batch in the binary layout (ring_codec.ts). */
export const tagRecord = 3;
/** Like `tagOnPort`, for a batch in the binary layout. */
export const tagRecordOnPort = 4;

/** How a link's writer encodes its batches: `binary` (ring_codec.ts) or `msgpack` (one msgpackr batch). */
export type RecordLayout = 'binary' | 'msgpack';

/**
 * Port messages that arrived ahead of their marker, at most: a peer that posts more is broken,
 * and the excess is counted as malformed and dropped.
 */
export const portInboxMax = 1024;
/**
 * Room below which a batch is packed into private memory and copied in rather than packed in
 * place: msgpackr starts a buffer of its own when it is given less than ~2 KiB.
 */
const inPlaceBytesMin = 4096;

/** This transport's end of a link: what crosses to the thread that uses it. */
export type RingLinkEnd = PeerLink & {
  readonly via: 'ring';
  /** The ring this end writes. */
  readonly tx: SharedArrayBuffer;
  /** The ring this end reads. */
  readonly rx: SharedArrayBuffer;
  /** Batches larger than a ring record, in order with the ring through markers. */
  readonly port: MessagePort;
};

/** A new link: two rings crossed over, one channel. */
export function ringLinkPair(config: RingConfig): readonly [RingLinkEnd, RingLinkEnd] {
  const ab = createRing(config);
  const ba = createRing(config);
  const channel = new MessageChannel();
  return [
    { via: 'ring', tx: ab, rx: ba, port: channel.port1 },
    { via: 'ring', tx: ba, rx: ab, port: channel.port2 },
  ];
}

/** The end itself, or a TypeError: a link of another transport (or damaged in transit) is our bug. */
export function ringEndOf(link: PeerLink): RingLinkEnd {
  const end = link as Partial<RingLinkEnd>;
  if (link.via !== 'ring' || !(end.tx instanceof SharedArrayBuffer) || !(end.rx instanceof SharedArrayBuffer) || !(end.port instanceof MessagePort)) {
    throw new TypeError(`not a ring link (via ${String(link.via)})`);
  }
  return end as RingLinkEnd;
}

/** What the link hands its transport. */
export type LinkEvents = {
  /** A decoded batch: an array, its items not yet checked. */
  readonly batch: (items: readonly unknown[]) => void;
  /** A record or port message that is not a batch. */
  readonly malformed: () => void;
  /** Something may be readable now (the doorbell rang, a port message came). */
  readonly readable: () => void;
  /** The ring this end writes has room again after it was found full. */
  readonly writable: () => void;
};

/** The outcome of writing one batch: all of it, or none of it. */
export type BatchOutcome = {
  readonly outcome: 'written' | 'full' | 'closed';
  /** The batch without the envelopes msgpackr could not encode (those are dropped). */
  readonly batch: readonly Envelope[];
  readonly unencodable: number;
  /** Encoded bytes, when written. */
  readonly bytes: number;
};

export type LinkStats = {
  readonly full: number;
  readonly portPosts: number;
  readonly sleeps: number;
  readonly wakeups: number;
  readonly notifies: number;
  /** Envelopes written in a hot binary layout, and as generic ones (ring_codec.ts); 0 in the msgpack layout. */
  readonly hotEnvelopes: number;
  readonly genericEnvelopes: number;
};

/**
 * The packer a thread's links share: one per thread is enough, as links are written one at a
 * time. Its working buffer is private scratch between uses; `useBuffer` points it into a ring
 * only for the one pack that fills a claim.
 */
export class BatchPacker {
  readonly #packr = new Packr({ useRecords: true, moreTypes: false, copyBuffers: true });
  readonly #scratch = Buffer.allocUnsafeSlow(64 * 1024);

  /** Packed into `room` when it fits there (the result is then a view of it), else into private memory. */
  pack(batch: readonly Envelope[], room: Uint8Array | null): Uint8Array {
    // msgpackr writes strings with Buffer methods: hand it a Buffer over the same memory.
    const target = room === null ? this.#scratch : Buffer.from(room.buffer, room.byteOffset, room.byteLength);
    this.#packr.useBuffer(target);
    try {
      return this.#packr.pack(batch);
    } finally {
      // Never leave msgpackr pointing into a ring: its next pack would write there.
      this.#packr.useBuffer(this.#scratch);
    }
  }
}

export class RingLink {
  readonly #writer: RingWriter;
  readonly #reader: RingReader;
  readonly #port: MessagePort;
  readonly #packer: BatchPacker;
  /** The binary layout's writer, with this direction's interned ids; null when writing msgpack. */
  readonly #encoder: RecordEncoder | null;
  readonly #decoder = new RecordDecoder();
  readonly #unpackr = new Unpackr({ useRecords: true, moreTypes: false, copyBuffers: true });
  readonly #events: LinkEvents;
  readonly #portInbox: unknown[] = [];
  /** A marker was read and its port message has not been taken yet: the marker's tag, else 0. */
  #awaitingPort = 0;
  #sleeping = false;
  #waitingForSpace = false;
  #closed = false;
  #full = 0;
  #portPosts = 0;
  #sleeps = 0;

  constructor(end: RingLinkEnd, packer: BatchPacker, events: LinkEvents, layout: RecordLayout = 'binary') {
    this.#writer = new RingWriter(end.tx);
    this.#reader = new RingReader(end.rx);
    this.#port = end.port;
    this.#packer = packer;
    this.#encoder = encoderFor(layout);
    this.#events = events;
    this.#port.on('message', (data: unknown) => {
      if (this.#portInbox.length >= portInboxMax) {
        this.#events.malformed();
        return;
      }
      this.#portInbox.push(data);
      this.#events.readable();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The ring this end writes was found full and its reader has not freed space since. */
  get waitingForSpace(): boolean {
    return this.#waitingForSpace;
  }

  /** The ring this end reads (a spinning thread checks its head directly). */
  get reader(): RingReader {
    return this.#reader;
  }

  stats(): LinkStats {
    const counts = this.#encoder?.counts ?? { hot: 0, generic: 0 };
    return { full: this.#full, portPosts: this.#portPosts, sleeps: this.#sleeps, wakeups: this.#reader.wakeups, notifies: this.#writer.notifies, hotEnvelopes: counts.hot, genericEnvelopes: counts.generic };
  }

  /**
   * Writes a batch as one record (or, too large for one, on the port behind a marker). An
   * envelope msgpackr cannot encode is dropped and counted; the rest still go.
   */
  write(batch: readonly Envelope[]): BatchOutcome {
    if (this.#closed || this.#writer.closed) return { outcome: 'closed', batch, unencodable: 0, bytes: 0 };
    let unencodable = 0;
    let room = this.#writer.claim(inPlaceBytesMin);
    let packed = this.#tryPack(batch, room);
    if (packed === null) {
      // Find the ones that cannot go, one by one (rare: a bug in whoever built them).
      const kept = batch.filter((envelope) => this.#tryPack([envelope], null) !== null);
      unencodable = batch.length - kept.length;
      batch = kept;
      room = this.#writer.claim(inPlaceBytesMin);
      packed = batch.length === 0 ? null : this.#tryPack(batch, room);
      if (packed === null) return { outcome: 'written', batch: [], unencodable: unencodable + batch.length, bytes: 0 };
    }
    const bytes = packed.byteLength;
    const tag = this.#encoder === null ? tagBatch : tagRecord;
    let outcome: WriteOutcome;
    if (room !== null && packed.buffer === room.buffer && packed.byteOffset === room.byteOffset) outcome = this.#writer.publish(bytes, tag);
    else outcome = this.#writer.tryWrite(packed, tag);
    if (outcome === 'too_large') outcome = this.#postOnPort(packed, this.#encoder === null ? tagOnPort : tagRecordOnPort);
    switch (outcome) {
      case 'written':
        // The reader will decode this record, in order: the ids it defines are now shared.
        this.#encoder?.published();
        return { outcome, batch, unencodable, bytes };
      case 'full':
        this.#full += 1;
        this.#awaitSpace();
        return { outcome, batch, unencodable, bytes: 0 };
      case 'closed':
        return { outcome, batch, unencodable, bytes: 0 };
      case 'too_large':
        throw new Error('an empty marker record cannot be too large');
      default: {
        const never: never = outcome;
        throw new Error(`unknown write outcome ${String(never)}`);
      }
    }
  }

  /**
   * Reads and hands over up to `recordsMax` records (a bound, so one busy peer cannot hold the
   * thread); returns how many were taken.
   */
  pump(recordsMax: number): number {
    let taken = 0;
    while (taken < recordsMax && !this.#closed) {
      if (this.#awaitingPort !== 0) {
        if (this.#portInbox.length === 0) break;
        const marker = this.#awaitingPort;
        this.#awaitingPort = 0;
        this.#decode(this.#portInbox.shift(), marker === tagOnPort ? tagBatch : tagRecord);
        taken += 1;
        continue;
      }
      const record = this.#reader.next();
      if (record === null) break;
      taken += 1;
      if (record.tag === tagBatch || record.tag === tagRecord) this.#decode(record.payload, record.tag);
      else if (record.tag === tagOnPort || record.tag === tagRecordOnPort) this.#awaitingPort = record.tag;
      else this.#events.malformed();
    }
    return taken;
  }

  /** Arms the doorbell: `readable` fires when the peer writes (at once if it already has). */
  sleep(): void {
    if (this.#sleeping || this.#closed) return;
    const wait = this.#reader.sleep();
    if (wait === null) {
      this.#events.readable();
      return;
    }
    this.#sleeping = true;
    this.#sleeps += 1;
    void wait.then(() => {
      this.#sleeping = false;
      if (!this.#closed) this.#events.readable();
    });
  }

  /** Abandons both rings (the peer sees `closed`; every sleeper wakes) and closes the port. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer.close();
    this.#reader.close();
    this.#port.close();
    this.#portInbox.length = 0;
  }

  /** The batch packed (see BatchPacker.pack, RecordEncoder.pack), or null when msgpackr cannot encode it. */
  #tryPack(batch: readonly Envelope[], room: Uint8Array | null): Uint8Array | null {
    try {
      return this.#encoder === null ? this.#packer.pack(batch, room) : this.#encoder.pack(batch, room);
    } catch {
      return null;
    }
  }

  /** The marker first (it holds the batch's place in the ring), then the bytes on the port. */
  #postOnPort(packed: Uint8Array, markerTag: number): WriteOutcome {
    const marker = this.#writer.tryWrite(new Uint8Array(0), markerTag);
    if (marker !== 'written') return marker;
    // Copy out of the encoder's buffer (msgpackr's, or the binary encoder's scratch) into one we own, so it can be transferred.
    const owned = new Uint8Array(packed.byteLength);
    owned.set(packed);
    this.#port.postMessage(owned, [owned.buffer]);
    this.#portPosts += 1;
    return 'written';
  }

  #awaitSpace(): void {
    if (this.#waitingForSpace) return;
    const wait = this.#writer.waitForSpace();
    if (wait === null) {
      // Space was freed between the failed write and now: retry on the next turn.
      setImmediate(() => this.#events.writable());
      return;
    }
    this.#waitingForSpace = true;
    void wait.then(() => {
      this.#waitingForSpace = false;
      if (!this.#closed) this.#events.writable();
    });
  }

  /** A record's (or port message's) batch to the transport, by the tag that says how it is encoded. */
  #decode(data: unknown, tag: number): void {
    if (tag === tagRecord) {
      // All or nothing: a malformed binary record delivers no envelope of it (ring_codec.ts).
      const envelopes = data instanceof Uint8Array ? this.#decoder.decode(data) : null;
      if (envelopes === null) this.#events.malformed();
      else this.#events.batch(envelopes);
      return;
    }
    let decoded: unknown;
    try {
      if (!(data instanceof Uint8Array)) throw new TypeError('a batch is bytes');
      decoded = this.#unpackr.unpack(data);
    } catch {
      this.#events.malformed();
      return;
    }
    if (Array.isArray(decoded)) this.#events.batch(decoded as unknown[]);
    else this.#events.malformed();
  }
}

function encoderFor(layout: RecordLayout): RecordEncoder | null {
  switch (layout) {
    case 'binary':
      return new RecordEncoder();
    case 'msgpack':
      return null;
    default: {
      const never: never = layout;
      throw new RangeError(`unknown record layout ${String(never)}`);
    }
  }
}
