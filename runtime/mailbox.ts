/**
 * A bounded FIFO mailbox (DESIGN.md convention 8).
 *
 * Overflow policy: when `capacity` envelopes are waiting, an ordinary envelope is dropped and
 * counted (for a protocol actor that is a lost message, which VR and the client sessions
 * already survive by retrying); a control envelope is always queued, so start/stop and
 * configuration can never be lost to load.
 */

import type { Envelope } from './envelope.ts';

export type MailboxStats = {
  readonly depth: number;
  readonly capacity: number;
  readonly accepted: number;
  readonly dropped: number;
  readonly highWater: number;
};

export class Mailbox {
  readonly #capacity: number;
  #items: Envelope[] = [];
  /** Index of the first unread item; the array is compacted when it is drained. */
  #head = 0;
  #accepted = 0;
  #dropped = 0;
  #highWater = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('mailbox capacity must be a positive integer');
    this.#capacity = capacity;
  }

  get depth(): number {
    return this.#items.length - this.#head;
  }

  /** Queues the envelope; false when it was dropped (full, and not a control envelope). */
  push(envelope: Envelope): boolean {
    if (this.depth >= this.#capacity && envelope.control !== true) {
      this.#dropped += 1;
      return false;
    }
    this.#items.push(envelope);
    this.#accepted += 1;
    if (this.depth > this.#highWater) this.#highWater = this.depth;
    return true;
  }

  /** Removes and returns up to `max` envelopes, oldest first. */
  take(max: number): Envelope[] {
    const end = Math.min(this.#items.length, this.#head + max);
    const out = this.#items.slice(this.#head, end);
    this.#head = end;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  stats(): MailboxStats {
    return { depth: this.depth, capacity: this.#capacity, accepted: this.#accepted, dropped: this.#dropped, highWater: this.#highWater };
  }
}
