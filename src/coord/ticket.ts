/**
 * Tickets: the sequential ephemeral blobs every recipe queues with. A ticket's name is
 * `${kind}-${tag}-${sequence}`: `sequence` is the 10-digit counter the service appends (the
 * parent's version: unique and increasing within the directory), so tickets sort by it, in
 * the order they were created. `tag` is unique per ticket (tagBase + a counter), so that after a create whose fate
 * is unknown (a timeout) the client can find the node it may have made and delete it: without
 * it such an orphan would sit in the queue until its lease ends, and if that lease is the
 * caller's, kept alive, it would block every later ticket.
 */

import { randomBytes } from 'node:crypto';
import { HaretError } from '../client/errors.ts';
import type { KeptLease } from '../client/namespace_client.ts';
import { treeErrors } from '../tree/errors.ts';
import type { Bytes, ListEntry } from '../tree/ops.ts';
import { asHaretError } from './bound.ts';
import type { CoordContext } from './context.ts';

export type TicketKind = 'lock' | 'cand' | 'member' | 'permit';

export type Ticket = { readonly name: string; readonly path: string; readonly sequence: number };

/**
 * The directory's children as one committed read saw them, and that read's op. `watchFrom`:
 * the op a watch must start after to miss no later change. A plain `list` sees its entry's
 * end state (reads apply after an entry's writes), so that is its own op; a list inside the
 * ticket's transaction sees the tree part-way through its entry (requests after it in the same
 * entry may still delete a predecessor), so a watch must start one op earlier.
 */
export type Listing = { readonly entries: readonly ListEntry[]; readonly op: number; readonly watchFrom: number };

/**
 * A ticket we made; `version`: the node's version after our writes (what a fencing guard
 * expects); `listing`: the directory as the create itself saw it (the same committed op), so
 * the first look at the queue costs no round trip of its own.
 */
export type OwnTicket = Ticket & { readonly version: number; readonly listing: Listing };

const ticketName = /^([a-z]+)-([0-9a-f]+)-(\d{10})$/;

/** The sequence of a ticket name of `kind`, or null for any other name. */
export function sequenceOf(name: string, kind: TicketKind): number | null {
  const match = ticketName.exec(name);
  if (match === null || match[1] !== kind) return null;
  return Number(match[3]);
}

/** The blobs among `entries` that are tickets of `kind`, in queue order. */
export function ticketsIn(entries: readonly ListEntry[], kind: TicketKind): Ticket[] {
  const tickets: Ticket[] = [];
  for (const entry of entries) {
    if (entry.nodeType !== 'blob') continue;
    const sequence = sequenceOf(entry.name, kind);
    if (sequence !== null) tickets.push({ name: entry.name, path: entry.path, sequence });
  }
  return tickets.sort(byQueueOrder);
}

export function byQueueOrder(a: Ticket, b: Ticket): number {
  return a.sequence - b.sequence || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Tags: a random base drawn once per process, then a counter. Unique among the tickets of
 * every client (48 random bits apart), as the orphan search needs, without drawing random
 * bytes on every lock (that was 3-6% of a lock cycle's CPU on the caller's thread).
 */
const tagBase = randomBytes(6).toString('hex');
let tagCount = 0;

function nextTag(): string {
  tagCount += 1;
  return `${tagBase}${tagCount.toString(16)}`;
}

/** `dir/name`, also for the root. */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/**
 * Creates our ticket under `dir`, held by `lease`; `value` (optional) is then written into it. A failure leaves nothing behind that we can find: an ambiguous create is looked up
 * by its tag and deleted, and a ticket whose value could not be written is deleted.
 */
export async function createTicket(
  context: CoordContext,
  dir: string,
  kind: TicketKind,
  lease: KeptLease,
  value?: Bytes,
): Promise<OwnTicket> {
  const prefix = `${kind}-${nextTag()}-`;
  // One transaction creates the ticket and lists the queue after it: an uncontended holder
  // learns it is first in the same commit that made its ticket.
  let created;
  let listing: Listing;
  try {
    context.counters.lists += 1;
    const txn = await context.db.multiCas([], [
      { type: 'create', path: childPath(dir, prefix), nodeType: 'blob', lease: lease.id, sequential: true },
      { type: 'list', path: dir, recursive: false },
    ]);
    const [made, listed] = txn.results;
    if (made?.type !== 'ok' || listed?.type !== 'list') throw new Error(`a ticket transaction answered ${made?.type ?? 'nothing'} and ${listed?.type ?? 'nothing'}`);
    created = made;
    listing = { entries: listed.entries, op: txn.op, watchFrom: txn.op - 1 };
  } catch (error) {
    if (asHaretError(error).executed !== false) await deleteOrphans(context, dir, prefix);
    throw error;
  }
  const path = created.path ?? '';
  const name = path.slice(path.lastIndexOf('/') + 1);
  const sequence = sequenceOf(name, kind);
  if (sequence === null) throw new Error(`a sequential create answered path ${path}, not a ${kind} ticket`);
  let version = created.version;
  if (value !== undefined) {
    try {
      version = (await context.db.blobPut(path, value)).version;
    } catch (error) {
      await deleteQuietly(context, path);
      throw error;
    }
  }
  return { name, path, sequence, version, listing };
}

/** Deletes the ticket; true when it is gone (deleted now or before), false when the delete failed. */
export async function deleteQuietly(context: CoordContext, path: string): Promise<boolean> {
  try {
    await context.db.delete(path);
    return true;
  } catch (error) {
    return asHaretError(error).code === 'does_not_exist';
  }
}

/** Best effort: the nodes under `dir` whose name starts with our tag's prefix (at most one). */
async function deleteOrphans(context: CoordContext, dir: string, prefix: string): Promise<void> {
  try {
    const listing = await context.list(dir);
    for (const entry of listing.entries) if (entry.name.startsWith(prefix)) await deleteQuietly(context, entry.path);
  } catch {
    // The directory is unreachable too: the orphan ends with its lease.
  }
}

/** Not found in its queue: gone (deleted by someone, or with its lease). */
export function ticketGone(ticket: Ticket, doing: string): HaretError {
  return new HaretError('does_not_exist', `${ticket.path} was deleted ${doing}`, true, treeErrors.doesNotExist(ticket.path));
}
