/**
 * Simulated durable storage of one replica: what its `persist` effects wrote. It survives a
 * crash (the replica's memory does not), and a restarted durable replica is started with it
 * (`start.stored`). Records follow the contract of src/vr/io.ts: a checkpoint drops the
 * entries it covers, truncate_after discards a suffix, entries append contiguously.
 */

import { assertNever } from '../../src/base/assert.ts';
import type { PersistRecord, StoredState } from '../../src/vr/io.ts';
import type { LogEntry } from '../../src/vr/messages.ts';
import type { Machine } from '../../src/vr/state_machine.ts';

export type StorageDamageKind = 'missing' | 'corrupt';

export class SimStore {
  #checkpoint: Machine | null = null;
  #entries: LogEntry[] = [];
  #promise: { view: number; lastNormalView: number } | null = null;
  /** Contract breaches (a gap or overlap in appended entries): a bug in the core's persist effects. */
  readonly anomalies: string[] = [];
  writes = 0;

  apply(record: PersistRecord): void {
    this.writes += 1;
    switch (record.kind) {
      case 'checkpoint':
        this.#checkpoint = record.machine;
        this.#entries = this.#entries.filter((entry) => entry.op > record.machine.appliedOp);
        return;
      case 'truncate_after':
        this.#entries = this.#entries.filter((entry) => entry.op <= record.op);
        return;
      case 'entries':
        for (const entry of record.entries) this.#append(entry);
        return;
      case 'promise':
        // README rule 18: the superblock; its view never moves backwards. (lastNormalView is
        // not checked here: the view-change checkers judge it, and a mutant test expects them to.)
        if (this.#promise !== null && record.view < this.#promise.view) {
          this.anomalies.push(`promise (${record.view}, ${record.lastNormalView}) after (${this.#promise.view}, ${this.#promise.lastNormalView})`);
        }
        this.#promise = { view: record.view, lastNormalView: record.lastNormalView };
        return;
      default:
        assertNever(record, 'persist record');
    }
  }

  #append(entry: LogEntry): void {
    const base = this.#checkpoint?.appliedOp ?? 0;
    const last = this.#entries.at(-1)?.op ?? base;
    if (entry.op <= base) return; // already inside the checkpoint
    if (entry.op !== last + 1) {
      this.anomalies.push(`entry ${entry.op} appended after ${last}`);
      this.#entries = this.#entries.filter((stored) => stored.op < entry.op);
    }
    this.#entries.push(entry);
  }

  /** The last op the store holds (its last entry, else its checkpoint's op). */
  get lastOp(): number {
    return this.#entries.at(-1)?.op ?? this.#checkpoint?.appliedOp ?? 0;
  }

  /** The stored promise (README rule 18), or null before the first. */
  get promise(): { readonly view: number; readonly lastNormalView: number } | null {
    return this.#promise;
  }

  /**
   * Issue 13: storage damaged at a crash, as the shell finds it on restart. 'missing': the files
   * are gone, nothing is trusted. 'corrupt': a record in the middle fails its checksum, so only
   * the checkpoint and the entries before it are trusted (`at` in [0, 1) picks the record). In
   * both the promise is not trusted (README rule 18), so the restart takes the 'recovering' mode
   * with the trusted prefix only. Lost unsynced and torn last writes need nothing here: writes
   * not yet finished never reached this store (Cluster.crash drops them).
   */
  damage(kind: StorageDamageKind, at: number): void {
    this.damaged += 1;
    this.#promise = null;
    switch (kind) {
      case 'missing':
        this.#checkpoint = null;
        this.#entries = [];
        return;
      case 'corrupt':
        this.#entries = this.#entries.slice(0, Math.floor(Math.min(Math.max(at, 0), 0.999_999) * this.#entries.length));
        return;
      default:
        assertNever(kind, 'storage damage');
    }
  }

  /** How many times this store was damaged. */
  damaged = 0;

  stored(): StoredState {
    return { checkpoint: this.#checkpoint, entries: [...this.#entries], ...(this.#promise === null ? {} : { promise: { ...this.#promise } }) };
  }
}
