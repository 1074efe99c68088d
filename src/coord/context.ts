/**
 * What every recipe shares over one client: the calls it makes (a subset of NamespaceClient,
 * so a test can wrap it) and the counters and open watches the tests and operators inspect.
 */

import type { NamespaceClient, WatchOptions } from '../client/namespace_client.ts';
import type { WatchStream } from '../client/watch_stream.ts';

/** The NamespaceClient methods the recipes use. */
export type CoordClient = Pick<
  NamespaceClient,
  'leaseGrant' | 'leaseKeepAlive' | 'leaseRevoke' | 'create' | 'delete' | 'list' | 'stat' | 'blobGet' | 'blobPut' | 'watch' | 'multiCas'
>;

/** Why a recipe watches a path: its predecessor (lock, election), its own held node, or a whole directory (barrier, semaphore, observe). */
export type WatchPurpose = 'predecessor' | 'held' | 'directory';

export type OpenWatch = { readonly path: string; readonly recursive: boolean; readonly purpose: WatchPurpose };

export type CoordStats = {
  /** Leases kept alive now for callers and their tickets. */
  readonly leases: number;
  /** Leases granted ahead of time for the next lock's ticket (src/coord/spare_leases.ts). */
  readonly spareLeases: number;
  /** lease_keepalive ops sent, and the lease ids they carried (batching: ids / ops). */
  readonly keepAliveOps: number;
  readonly keepAliveIds: number;
  /** Directory listings made (a herd shows as many listings per change). */
  readonly lists: number;
  readonly watchesOpen: number;
  readonly watchesOpened: number;
};

/** A watch the context tracks until `close()` (idempotent; also cancels the stream). */
export type TrackedWatch = { readonly stream: WatchStream; close(): void };

export class CoordContext {
  readonly db: CoordClient;
  readonly counters = { keepAliveOps: 0, keepAliveIds: 0, lists: 0, watchesOpened: 0 };
  readonly #open = new Set<OpenWatch>();

  constructor(db: CoordClient) {
    this.db = db;
  }

  list(path: string): ReturnType<CoordClient['list']> {
    this.counters.lists += 1;
    return this.db.list(path);
  }

  /** Opens a watch (throws a HaretError when it cannot) and tracks it until closed. */
  watch(path: string, options: WatchOptions, purpose: WatchPurpose): TrackedWatch {
    const stream = this.db.watch(path, options);
    const entry: OpenWatch = { path, recursive: options.recursive === true, purpose };
    this.#open.add(entry);
    this.counters.watchesOpened += 1;
    let closed = false;
    return {
      stream,
      close: () => {
        if (closed) return;
        closed = true;
        this.#open.delete(entry);
        stream.cancel();
      },
    };
  }

  get openWatches(): readonly OpenWatch[] {
    return [...this.#open];
  }
}
