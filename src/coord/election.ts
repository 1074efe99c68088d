/**
 * Leader election (src/coord/README.md "Election"): candidates are tickets `${path}/cand-…`;
 * the lowest leads. A candidate's blob stays empty while it waits; once it sees itself lowest
 * it announces itself: it writes its token (the op of that listing, 8 bytes big-endian) and
 * then its value. Observers report the lowest candidate once announced, and null while there
 * is none (or the next one has not yet seen that it leads). Campaigners wait like lock
 * waiters (one watch on the predecessor); observers follow the directory op by op with values
 * (children.ts).
 */

import { HaretError } from '../client/errors.ts';
import type { Election, ElectionOptions, Leader, Leadership, Value } from '../client/namespace_client.ts';
import type { Bytes, Guard } from '../tree/ops.ts';
import { asHaretError, backoffMs, pause, retriesMax, transient, type Bound } from './bound.ts';
import { ChildrenFeed, type ChildrenState } from './children.ts';
import type { CoordContext } from './context.ts';
import type { HeldTicket } from './held.ts';
import type { LeaseKeeper } from './lease.ts';
import { checkQueueOptions, checkValue, invalid, type CheckedQueueOptions } from './options.ts';
import { enqueueAndWait } from './queue.ts';
import { ticketsIn, type Ticket } from './ticket.ts';
import { waitForTurn } from './turn.ts';

/** Bytes of the token header in front of a candidate's value. */
const headerBytes = 8;

export function encodeCandidate(token: number, value: Bytes): Bytes {
  const bytes = new Uint8Array(headerBytes + value.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.floor(token / 2 ** 32));
  view.setUint32(4, token >>> 0);
  bytes.set(value, headerBytes);
  return bytes;
}

/** The leader a candidate's blob announces, or null when it has not announced itself (yet). */
export function decodeCandidate(ticket: Ticket, blob: Bytes): Leader | null {
  if (blob.byteLength < headerBytes) return null;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const token = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
  return { value: blob.slice(headerBytes), token, path: ticket.path };
}

export function election(context: CoordContext, leases: LeaseKeeper, path: string, options: ElectionOptions | undefined): Election {
  return new ElectionParty(context, leases, path, checkQueueOptions(options, 'election'));
}

class LeadershipHandle implements Leadership {
  readonly value: Uint8Array;
  readonly #held: HeldTicket;
  readonly #onResign: () => void;

  constructor(held: HeldTicket, value: Uint8Array, onResign: () => void) {
    this.#held = held;
    this.value = value;
    this.#onResign = onResign;
  }
  get token(): number {
    return this.#held.token;
  }
  get path(): string {
    return this.#held.path;
  }
  get lost(): Promise<HaretError> {
    return this.#held.lost;
  }
  guard(): Guard {
    return this.#held.guard();
  }
  resign(): Promise<void> {
    this.#onResign();
    return this.#held.release();
  }
}

type Campaign = { bound: Bound | null; leadership: LeadershipHandle | null; failed: boolean };

class ElectionParty implements Election {
  readonly #context: CoordContext;
  readonly #leases: LeaseKeeper;
  readonly #path: string;
  readonly #options: CheckedQueueOptions;
  #campaign: Campaign | null = null;

  constructor(context: CoordContext, leases: LeaseKeeper, path: string, options: CheckedQueueOptions) {
    this.#context = context;
    this.#leases = leases;
    this.#path = path;
    this.#options = options;
  }

  async campaign(value: Value): Promise<Leadership> {
    const bytes = checkValue(value, 'campaign value');
    const previous = this.#campaign;
    if (previous !== null && !previous.failed) throw invalid(`election ${this.#path}: already campaigning or leading (resign first)`);
    const campaign: Campaign = { bound: null, leadership: null, failed: false };
    this.#campaign = campaign;
    try {
      const held = await enqueueAndWait({
        context: this.#context,
        leases: this.#leases,
        dir: this.#path,
        kind: 'cand',
        options: this.#options,
        what: `election ${this.#path}`,
        noun: 'leadership',
        wait: (ticket, bound) => waitForTurn(this.#context, this.#path, 'cand', ticket, bound),
        onHeld: async (ticket, token) => ({ ...ticket, version: (await this.#context.db.blobPut(ticket.path, encodeCandidate(token, bytes))).version }),
        onBound: (bound) => {
          campaign.bound = bound;
        },
      });
      if (this.#campaign !== campaign) {
        // resign() came while the campaign was finishing: step down at once.
        await held.release().catch(() => {});
        throw withdrawn(this.#path);
      }
      const leadership = new LeadershipHandle(held, bytes, () => {
        if (this.#campaign === campaign) this.#campaign = null;
      });
      campaign.leadership = leadership;
      // A lost leadership lets this party campaign again (after resign() or not).
      void held.lost.then(() => {
        campaign.failed = true;
      });
      return leadership;
    } catch (error) {
      campaign.failed = true;
      if (this.#campaign === campaign) this.#campaign = null;
      throw error;
    }
  }

  async resign(): Promise<void> {
    const campaign = this.#campaign;
    if (campaign === null) return;
    this.#campaign = null;
    if (campaign.leadership !== null) {
      await campaign.leadership.resign();
      return;
    }
    // Still waiting: the campaign rejects with `stopped` and removes its ticket.
    campaign.bound?.cancel(withdrawn(this.#path));
  }

  async leader(): Promise<Leader | null> {
    let failures = 0;
    for (;;) {
      let first: Ticket | undefined;
      try {
        first = ticketsIn((await this.#context.list(this.#path)).entries, 'cand')[0];
        if (first === undefined) return null;
        return decodeCandidate(first, (await this.#context.db.blobGet(first.path)).value);
      } catch (error) {
        const failure = asHaretError(error);
        // No election directory: no candidate.
        if (first === undefined && failure.code === 'does_not_exist') return null;
        failures += 1;
        // The first candidate left between the list and the read: look again.
        if ((failure.code !== 'does_not_exist' && !transient(failure)) || failures > retriesMax) throw failure;
        if (failure.code !== 'does_not_exist') await pause(backoffMs(failures));
      }
    }
  }

  observe(): AsyncIterable<Leader | null> {
    return { [Symbol.asyncIterator]: () => this.#observe() };
  }

  async *#observe(): AsyncGenerator<Leader | null, undefined> {
    const feed = new ChildrenFeed(this.#context, this.#path, 'cand', { values: true, createDirectory: true });
    const announced = new Map<string, Leader>();
    let last: string | null | undefined;
    try {
      for (;;) {
        const leader = await this.#leaderIn(await feed.next(), announced);
        if (leader === undefined) continue;
        const key = leader?.path ?? null;
        if (key !== last) {
          last = key;
          yield leader;
        }
      }
    } finally {
      feed.close();
    }
  }

  /**
   * The lowest candidate if announced, null if none or not announced yet, undefined when it is
   * unknown until a later op (it was deleted before its value could be read). A listed
   * candidate's value is read once: it never changes after its first write.
   */
  async #leaderIn(state: ChildrenState, announced: Map<string, Leader>): Promise<Leader | null | undefined> {
    const first = state.children[0];
    if (first === undefined) return null;
    const known = announced.get(first.path);
    if (known !== undefined) return known;
    let value = first.value;
    if (value === undefined) {
      try {
        value = (await this.#context.db.blobGet(first.path)).value;
      } catch (error) {
        // Deleted meanwhile: a later op of the feed says so.
        if (asHaretError(error).code === 'does_not_exist') return undefined;
        throw error;
      }
    }
    const leader = decodeCandidate(first, value);
    announced.clear();
    if (leader !== null) announced.set(first.path, leader);
    return leader;
  }
}

function withdrawn(path: string): HaretError {
  return new HaretError('stopped', `election ${path}: the campaign was withdrawn by resign()`, false);
}
