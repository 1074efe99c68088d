/**
 * A single-producer single-consumer byte ring over one SharedArrayBuffer: the shared-memory half
 * of a ring link (ring_link.ts). One thread writes records, one other thread reads them.
 *
 * Layout: a 256-byte header of Int32 words, then `ringBytes` of data (a power of two).
 * - `head` (written only by the producer) and `tail` (written only by the consumer) are
 *   free-running byte counters; a position is `counter & (ringBytes - 1)`, and since 2^32 is a
 *   multiple of the ring size the counters may wrap around 2^32 freely. Used bytes are
 *   `head - tail`. They sit on separate cache lines so the two threads do not share one.
 * - A record is `[i32 length][i32 tag][payload]`, padded to 8 bytes, and never straddles the
 *   end of the data area: when it does not fit before the end, a wrap marker (length -1) fills
 *   the rest and the record starts at 0. A record is published by one `Atomics.store` of `head`
 *   after every byte of it is written, so the consumer (which reads `head` with Atomics.load
 *   first) can never see a torn record, even if the producer's thread is killed mid-write: the
 *   unpublished bytes are simply never read.
 * - Doorbells. The consumer sleeps only after setting `readerSleeping` and re-checking `head`;
 *   the producer stores `head` and then loads `readerSleeping`, calling Atomics.notify only
 *   when it is set. Both are sequentially consistent, so one of the two always sees the other
 *   (no lost wake-up), and a producer pays no notify while the consumer is awake. The same
 *   pair of words serves a producer that waits for space (`writerWaiting`, woken by the
 *   consumer's `tail` store).
 * - `closed`: set by either side when it abandons the ring (its link dropped, the transport
 *   closed); both sides' waiters are woken and every later write is refused.
 *
 * Sleeping uses `Atomics.waitAsync` only: a blocking Atomics.wait would freeze a thread that
 * runs an event loop (the main thread may not call it at all). A pending waitAsync does not
 * keep a thread alive by itself.
 *
 * Limits: the data area is 4 KiB to 1 GiB; a payload is at most `maxRecordBytes`, at most half
 * the ring minus a record header, so that an empty ring always has room for any record wherever
 * its head stands (a wrap can waste up to the rest of the lap).
 */

/** Int32 word indexes of the header. */
const headWord = 0;
/** 64 bytes from `head`: a cache line of its own. */
const tailWord = 16;
const readerSleepingWord = 32;
const writerWaitingWord = 33;
const closedWord = 34;
const magicWord = 35;
const ringBytesWord = 36;
const maxRecordBytesWord = 37;

export const ringHeaderBytes = 256;
/** Length + tag, in front of every record. */
const recordHeaderBytes = 8;
/** A record header whose length is this says: nothing more in this lap, continue at 0. */
const wrapLength = -1;
const ringMagic = 0x52494e47; // "RING"

export const defaultRingBytes = 1 << 20;
export const ringBytesMin = 1 << 12;
export const ringBytesMax = 1 << 30;

export type RingConfig = {
  /** Bytes of the data area: a power of two, 4 KiB to 1 GiB. Default 1 MiB. */
  readonly ringBytes: number;
  /** Largest payload a record may carry; default a quarter of the ring. */
  readonly maxRecordBytes: number;
};

/** The largest payload a ring of this size can promise to take. */
export function maxRecordBytesFor(ringBytes: number): number {
  return ringBytes / 2 - recordHeaderBytes;
}

/** A reason the config is unusable, or null. */
export function validateRingConfig(config: RingConfig): string | null {
  const { ringBytes, maxRecordBytes } = config;
  if (!Number.isSafeInteger(ringBytes) || ringBytes < ringBytesMin || ringBytes > ringBytesMax || (ringBytes & (ringBytes - 1)) !== 0) {
    return `ringBytes must be a power of two between ${ringBytesMin} and ${ringBytesMax}`;
  }
  if (!Number.isSafeInteger(maxRecordBytes) || maxRecordBytes < 1 || maxRecordBytes > maxRecordBytesFor(ringBytes)) {
    return `maxRecordBytes must be between 1 and ${maxRecordBytesFor(ringBytes)} for a ring of ${ringBytes} bytes`;
  }
  return null;
}

export function ringConfig(ringBytes = defaultRingBytes, maxRecordBytes = ringBytes / 4): RingConfig {
  const config = { ringBytes, maxRecordBytes };
  const problem = validateRingConfig(config);
  if (problem !== null) throw new RangeError(problem);
  return config;
}

/** A new ring's memory, with its size and record limit in the header for both ends to read. */
export function createRing(config: RingConfig = ringConfig()): SharedArrayBuffer {
  const problem = validateRingConfig(config);
  if (problem !== null) throw new RangeError(problem);
  const buffer = new SharedArrayBuffer(ringHeaderBytes + config.ringBytes);
  const words = new Int32Array(buffer, 0, ringHeaderBytes / 4);
  words[ringBytesWord] = config.ringBytes;
  words[maxRecordBytesWord] = config.maxRecordBytes;
  // Published last: an end that sees the magic sees the sizes.
  Atomics.store(words, magicWord, ringMagic);
  return buffer;
}

/** What `tryWrite` did with a record. */
export type WriteOutcome =
  /** Published: the consumer may read it now. */
  | 'written'
  /** No room now; the caller keeps the record and tries again later (backpressure). */
  | 'full'
  /** Larger than `maxRecordBytes`: it will never fit; send it another way. */
  | 'too_large'
  /** The ring was abandoned by one of its ends; nothing will read it. */
  | 'closed';

/** A record read from the ring: its payload is copied out of the shared memory. */
export type RingRecord = { readonly tag: number; readonly payload: Uint8Array };

/** The two ends' shared view of one ring's memory. */
class RingMemory {
  readonly words: Int32Array;
  readonly bytes: Uint8Array;
  readonly data: DataView;
  readonly ringBytes: number;
  readonly mask: number;
  readonly maxRecordBytes: number;

  constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength < ringHeaderBytes + ringBytesMin) throw new RangeError('not a ring: too small');
    this.words = new Int32Array(buffer, 0, ringHeaderBytes / 4);
    if (Atomics.load(this.words, magicWord) !== ringMagic) throw new RangeError('not a ring: no magic');
    this.ringBytes = this.words[ringBytesWord] as number;
    this.maxRecordBytes = this.words[maxRecordBytesWord] as number;
    const problem = validateRingConfig({ ringBytes: this.ringBytes, maxRecordBytes: this.maxRecordBytes });
    if (problem !== null || buffer.byteLength !== ringHeaderBytes + this.ringBytes) throw new RangeError(`not a ring: ${problem ?? 'size mismatch'}`);
    this.mask = this.ringBytes - 1;
    this.bytes = new Uint8Array(buffer, ringHeaderBytes, this.ringBytes);
    this.data = new DataView(buffer, ringHeaderBytes, this.ringBytes);
  }

  get closed(): boolean {
    return Atomics.load(this.words, closedWord) !== 0;
  }

  /** Marks the ring abandoned and wakes whoever sleeps on it, on either end. */
  close(): void {
    Atomics.store(this.words, closedWord, 1);
    Atomics.notify(this.words, headWord);
    Atomics.notify(this.words, tailWord);
  }
}

function padded(payloadBytes: number): number {
  return (recordHeaderBytes + payloadBytes + 7) & ~7;
}

/** Atomics.waitAsync (Node 16+; the es2023 lib this project compiles against does not declare it). */
type WaitAsync = (words: Int32Array, index: number, value: number) => { readonly async: false; readonly value: string } | { readonly async: true; readonly value: Promise<string> };
const waitAsync = (Atomics as unknown as { readonly waitAsync: WaitAsync }).waitAsync.bind(Atomics);

/**
 * A wait that ends when `word` may no longer hold `expected` (or the ring closes). Null when it
 * already differs: the caller re-checks at once instead of sleeping.
 */
function waitWhile(words: Int32Array, word: number, expected: number): Promise<unknown> | null {
  const result = waitAsync(words, word, expected);
  return result.async ? result.value : null;
}

/** Where a record is being assembled in place (`claim`), before `publish`. */
type Claim = { readonly head: number; readonly at: number; readonly room: number };

export class RingWriter {
  readonly #memory: RingMemory;
  /** Our copy of `head`: only this end writes it. */
  #head: number;
  #claim: Claim | null = null;
  /** The consumer's tail when we last looked: a wait for space waits for it to move. */
  #seenTail = 0;
  #notifies = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.#memory = new RingMemory(buffer);
    this.#head = Atomics.load(this.#memory.words, headWord);
    this.#seenTail = Atomics.load(this.#memory.words, tailWord);
  }

  get maxRecordBytes(): number {
    return this.#memory.maxRecordBytes;
  }

  get closed(): boolean {
    return this.#memory.closed;
  }

  /** Times the producer rang the doorbell (the consumer was asleep). */
  get notifies(): number {
    return this.#notifies;
  }

  /** Copies a record in and publishes it, or says why not (nothing is written then). */
  tryWrite(payload: Uint8Array, tag = 0): WriteOutcome {
    this.#claim = null;
    if (this.#memory.closed) return 'closed';
    if (payload.byteLength > this.#memory.maxRecordBytes) return 'too_large';
    const at = this.#place(payload.byteLength);
    if (at === null) return 'full';
    this.#memory.bytes.set(payload, at + recordHeaderBytes);
    this.#commit(at, payload.byteLength, tag);
    return 'written';
  }

  /**
   * The largest contiguous room for the next record's payload (at least `minBytes`, at most
   * `maxRecordBytes`), as a view to encode into; null if there is none now. Nothing is visible
   * to the consumer until `publish`; a later `tryWrite` or `claim` discards the claim.
   */
  claim(minBytes: number): Uint8Array | null {
    this.#claim = null;
    if (this.#memory.closed) return null;
    const { ringBytes, mask, maxRecordBytes } = this.#memory;
    const tail = Atomics.load(this.#memory.words, tailWord);
    this.#seenTail = tail;
    const free = ringBytes - ((this.#head - tail) >>> 0);
    const pos = this.#head & mask;
    const toEnd = ringBytes - pos;
    // Here, before the end of the lap; or at 0, after a wrap marker, when that room is larger.
    const here = Math.min(toEnd, free) - recordHeaderBytes;
    const afterWrap = free - toEnd - recordHeaderBytes;
    let head = this.#head;
    let at = pos;
    let room = here;
    if (afterWrap > here) {
      head = (this.#head + toEnd) | 0;
      at = 0;
      room = afterWrap;
    }
    room = Math.min(room, maxRecordBytes);
    if (room < minBytes) return null;
    this.#claim = { head, at, room };
    return this.#memory.bytes.subarray(at + recordHeaderBytes, at + recordHeaderBytes + room);
  }

  /** Publishes the record whose payload was written into the last claim's view. */
  publish(payloadBytes: number, tag = 0): WriteOutcome {
    const claim = this.#claim;
    this.#claim = null;
    if (claim === null || !Number.isSafeInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > claim.room) throw new RangeError('publish without a claim that holds the payload');
    if (this.#memory.closed) return 'closed';
    if (claim.head !== this.#head) this.#memory.data.setInt32(this.#head & this.#memory.mask, wrapLength, true);
    this.#head = claim.head;
    this.#commit(claim.at, payloadBytes, tag);
    return 'written';
  }

  /**
   * A wait that ends when the consumer has freed some space since the last write or claim
   * found the ring full (or the ring closed); null if it already has, so the caller retries at
   * once.
   */
  waitForSpace(): Promise<unknown> | null {
    const words = this.#memory.words;
    // Dekker with the consumer's store of tail then load of the flag (waitAsync compares after).
    Atomics.store(words, writerWaitingWord, 1);
    if (this.#memory.closed) return null;
    const wait = waitWhile(words, tailWord, this.#seenTail);
    if (wait === null) Atomics.store(words, writerWaitingWord, 0);
    return wait;
  }

  close(): void {
    this.#memory.close();
  }

  /** Where a record of this payload goes (writing a wrap marker first if needed), or null when full. */
  #place(payloadBytes: number): number | null {
    const { ringBytes, mask } = this.#memory;
    const total = padded(payloadBytes);
    const tail = Atomics.load(this.#memory.words, tailWord);
    this.#seenTail = tail;
    const free = ringBytes - ((this.#head - tail) >>> 0);
    const pos = this.#head & mask;
    const toEnd = ringBytes - pos;
    if (total <= toEnd) return total <= free ? pos : null;
    if (toEnd + total > free) return null;
    this.#memory.data.setInt32(pos, wrapLength, true);
    this.#head = (this.#head + toEnd) | 0;
    return 0;
  }

  /** Writes the record header and publishes head: the one store that makes the record visible. */
  #commit(at: number, payloadBytes: number, tag: number): void {
    const { data, words } = this.#memory;
    data.setInt32(at, payloadBytes, true);
    data.setInt32(at + 4, tag, true);
    // `#head` already stands at `at` (past any wrap marker).
    this.#head = (this.#head + padded(payloadBytes)) | 0;
    Atomics.store(words, headWord, this.#head);
    if (Atomics.load(words, readerSleepingWord) !== 0) {
      this.#notifies += 1;
      Atomics.notify(words, headWord);
    }
  }
}

export class RingReader {
  readonly #memory: RingMemory;
  /** Our copy of `tail`: only this end writes it. */
  #tail: number;
  #wakeups = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.#memory = new RingMemory(buffer);
    this.#tail = Atomics.load(this.#memory.words, tailWord);
  }

  get closed(): boolean {
    return this.#memory.closed;
  }

  /** Times the consumer was woken by the producer's doorbell. */
  get wakeups(): number {
    return this.#wakeups;
  }

  /** True when a published record waits. */
  get ready(): boolean {
    return Atomics.load(this.#memory.words, headWord) !== this.#tail;
  }

  /**
   * The next published record, copied out of shared memory (unpacking straight from a shared
   * view is far slower; research/limits.md §2), or null when there is none. Its space is
   * handed back to the producer at once.
   */
  next(): RingRecord | null {
    const { words, data, bytes, mask, ringBytes } = this.#memory;
    const head = Atomics.load(words, headWord);
    for (;;) {
      if (head === this.#tail) return null;
      const pos = this.#tail & mask;
      const length = data.getInt32(pos, true);
      if (length === wrapLength) {
        this.#tail = (this.#tail + (ringBytes - pos)) | 0;
        continue;
      }
      const used = (head - this.#tail) >>> 0;
      // Only our bug or a foreign writer gets here: the record would run past what is published.
      if (length < 0 || padded(length) > used || pos + padded(length) > ringBytes) throw new RangeError(`corrupt ring record: length ${length} with ${used} bytes published`);
      const tag = data.getInt32(pos + 4, true);
      const payload = bytes.slice(pos + recordHeaderBytes, pos + recordHeaderBytes + length);
      this.#tail = (this.#tail + padded(length)) | 0;
      this.#release();
      return { tag, payload };
    }
  }

  /**
   * Sleeps until the producer publishes (or the ring closes): a wait that ends then, or null
   * when a record is already there (or the ring is closed) and the caller should read at once.
   */
  sleep(): Promise<void> | null {
    const words = this.#memory.words;
    Atomics.store(words, readerSleepingWord, 1);
    // Dekker with the producer's store of head then load of the flag: one of us sees the other.
    if (this.#memory.closed || Atomics.load(words, headWord) !== this.#tail) {
      Atomics.store(words, readerSleepingWord, 0);
      return null;
    }
    const wait = waitWhile(words, headWord, this.#tail);
    if (wait === null) {
      Atomics.store(words, readerSleepingWord, 0);
      return null;
    }
    return wait.then(() => {
      this.#wakeups += 1;
      Atomics.store(words, readerSleepingWord, 0);
    });
  }

  close(): void {
    this.#memory.close();
  }

  #release(): void {
    const words = this.#memory.words;
    Atomics.store(words, tailWord, this.#tail);
    if (Atomics.load(words, writerWaitingWord) !== 0) {
      Atomics.store(words, writerWaitingWord, 0);
      Atomics.notify(words, tailWord);
    }
  }
}
