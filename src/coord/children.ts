/**
 * The tickets of one kind under a directory, followed op by op: list once, then a recursive
 * watch of the directory from the listing's op, applying each committed op's events to the
 * set. So every intermediate state is seen (a barrier that was full for one op opens), and
 * nothing is read twice. Used where a waiter depends on the whole set (barrier, semaphore) or
 * reports every change (an election's observers). A watch that ends with an error that may
 * pass is replaced by a new listing and watch (bounded: `retriesMax` in a row).
 */

import { HaretError } from '../client/errors.ts';
import type { WatchBatch } from '../client/watch.ts';
import type { Bytes } from '../tree/ops.ts';
import type { WatchEvent } from '../watch/messages.ts';
import { asHaretError, backoffMs, retriesMax, transient } from './bound.ts';
import type { CoordContext, TrackedWatch } from './context.ts';
import { byQueueOrder, sequenceOf, ticketsIn, type Ticket, type TicketKind } from './ticket.ts';

/** A ticket and what is known of it: its version, and its value when the watch carried it (values on). */
export type Child = Ticket & { readonly version: number; readonly value: Bytes | undefined };

/** The tickets, in queue order, as of op `op`. */
export type ChildrenState = { readonly op: number; readonly children: readonly Child[] };

export type FeedOptions = {
  /** Carry the values of created and changed tickets. */
  readonly values: boolean;
  /** Create the directory when it does not exist (an observer that may come before any candidate). */
  readonly createDirectory: boolean;
};

export class ChildrenFeed {
  readonly #context: CoordContext;
  readonly #dir: string;
  readonly #kind: TicketKind;
  readonly #options: FeedOptions;
  readonly #children = new Map<string, Child>();
  #watch: TrackedWatch | null = null;
  #batches: AsyncIterator<WatchBatch, undefined> | null = null;
  #closed = false;
  #failures = 0;
  #endPause: (() => void) | null = null;

  constructor(context: CoordContext, dir: string, kind: TicketKind, options: FeedOptions) {
    this.#context = context;
    this.#dir = dir;
    this.#kind = kind;
    this.#options = options;
  }

  /** The first call lists; each later call resolves at the next op that changed the tickets. Rejects once closed. */
  async next(): Promise<ChildrenState> {
    for (;;) {
      if (this.#closed) throw closedError();
      if (this.#batches === null) {
        const state = await this.#listAndWatch();
        if (state !== null) return state;
        continue;
      }
      let next;
      try {
        next = await this.#batches.next();
      } catch (error) {
        await this.#failed(error);
        continue;
      }
      if (next.done === true) {
        await this.#failed(new HaretError('unavailable', `the watch of ${this.#dir} ended`, false));
        continue;
      }
      this.#failures = 0;
      if (next.value.kind === 'events' && this.#apply(next.value.events)) return this.#state(next.value.op);
    }
  }

  /** Ends the feed: closes its watch; a pending or later `next()` rejects. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatch();
    this.#endPause?.();
  }

  #state(op: number): ChildrenState {
    return { op, children: [...this.#children.values()].sort(byQueueOrder) };
  }

  /** Lists and opens the watch; null when a failure that may pass was waited out (call again). */
  async #listAndWatch(): Promise<ChildrenState | null> {
    let listing;
    try {
      listing = await this.#context.list(this.#dir);
    } catch (error) {
      if (this.#options.createDirectory && asHaretError(error).code === 'does_not_exist') {
        await this.#createDirectory();
        return null;
      }
      await this.#failed(error);
      return null;
    }
    if (this.#closed) throw closedError();
    this.#children.clear();
    for (const ticket of ticketsIn(listing.entries, this.#kind)) {
      const entry = listing.entries.find((candidate) => candidate.name === ticket.name);
      this.#children.set(ticket.name, { ...ticket, version: entry?.version ?? 0, value: undefined });
    }
    try {
      this.#watch = this.#context.watch(this.#dir, { recursive: true, fromOp: listing.op, values: this.#options.values }, 'directory');
      this.#batches = this.#watch.stream[Symbol.asyncIterator]();
    } catch (error) {
      await this.#failed(error);
      return null;
    }
    return this.#state(listing.op);
  }

  async #createDirectory(): Promise<void> {
    try {
      await this.#context.db.create(this.#dir, 'directory');
    } catch (error) {
      if (asHaretError(error).code !== 'already_exists') await this.#failed(error);
    }
  }

  /** Applies one op's events; true when the tickets changed. */
  #apply(events: readonly WatchEvent[]): boolean {
    let changed = false;
    for (const event of events) {
      if (event.path === this.#dir) {
        if (event.kind === 'deleted' && this.#children.size > 0) {
          this.#children.clear();
          changed = true;
        }
        continue;
      }
      const slash = event.path.lastIndexOf('/');
      const parent = slash === 0 ? '/' : event.path.slice(0, slash);
      const name = event.path.slice(slash + 1);
      if (parent !== this.#dir || event.nodeType !== 'blob') continue;
      const sequence = sequenceOf(name, this.#kind);
      if (sequence === null) continue;
      if (event.kind === 'deleted') {
        changed = this.#children.delete(name) || changed;
      } else {
        // A value over the watch's cap comes as null: unknown, like a listed ticket's.
        this.#children.set(name, { name, path: event.path, sequence, version: event.version, value: event.value ?? undefined });
        changed = true;
      }
    }
    return changed;
  }

  /** Counts a failure; throws when it cannot pass or too many came in a row; else pauses before the next listing. */
  async #failed(error: unknown): Promise<void> {
    this.#stopWatch();
    if (this.#closed) throw closedError();
    this.#failures += 1;
    if (!transient(error) || this.#failures > retriesMax) throw error;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, backoffMs(this.#failures));
      timer.unref();
      this.#endPause = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#endPause = null;
  }

  #stopWatch(): void {
    this.#watch?.close();
    this.#watch = null;
    this.#batches = null;
  }
}

function closedError(): HaretError {
  return new HaretError('stopped', 'the feed was closed', false);
}
