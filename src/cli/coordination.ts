/**
 * The prompt's coordination commands: the leases a prompt keeps alive (`lease grant`), and
 * `lock`, `elect` and `leader`, which run until Ctrl-C. Shared by the prompt and
 * `haret cli -e`.
 */

import { assertNever } from '../base/assert.ts';
import { HaretError } from '../client/errors.ts';
import type { Coordination, KeptLease } from '../client/namespace_client.ts';
import { defaultTtlMs } from '../coord/options.ts';
import type { ElectCommand, LeaderCommand, LeaseCommand, LockCommand } from './commands.ts';
import {
  formatCampaigning,
  formatElected,
  formatError,
  formatLeader,
  formatLeadershipLost,
  formatLeaseLost,
  formatLockHeld,
  formatLockLost,
  formatLockWaiting,
  type KeptLeaseLine,
} from './format.ts';
import type { HeldOutput } from './output.ts';

/** What the coordination commands need of a client (a NamespaceClient has it). */
export type PromptCoordination = Pick<Coordination, 'grantLease' | 'lock' | 'election'>;

/** Settles with the first of `promise` and `stop`: its value, its failure, or 'stopped'. */
type Raced<T> = { readonly kind: 'value'; readonly value: T } | { readonly kind: 'failed'; readonly error: unknown } | { readonly kind: 'stopped' };

function race<T>(promise: Promise<T>, stop: Promise<void>): Promise<Raced<T>> {
  return Promise.race([
    promise.then(
      (value): Raced<T> => ({ kind: 'value', value }),
      (error: unknown): Raced<T> => ({ kind: 'failed', error }),
    ),
    stop.then((): Raced<T> => ({ kind: 'stopped' })),
  ]);
}

/** Swallows a promise's failure: for cleanups whose outcome nobody is left to hear. */
function quietly(promise: Promise<unknown>): void {
  promise.catch(() => undefined);
}

/**
 * The leases a prompt keeps alive (`lease grant`), until `lease revoke` or `revokeAll` when the
 * prompt ends. A lease lost meanwhile is announced through `notify` and stays listed as lost.
 */
export class PromptLeases {
  readonly #coord: PromptCoordination;
  readonly #notify: (line: string) => void;
  readonly #kept = new Map<number, { readonly lease: KeptLease; lost: HaretError | null; revoking: boolean }>();

  constructor(coord: PromptCoordination, notify: (line: string) => void) {
    this.#coord = coord;
    this.#notify = notify;
  }

  async grant(ttlMs: number): Promise<KeptLease> {
    const lease = await this.#coord.grantLease({ ttlMs });
    const entry = { lease, lost: null as HaretError | null, revoking: false };
    this.#kept.set(lease.id, entry);
    void lease.lost.then((error) => {
      entry.lost = error;
      // Our own revoke ends it too (code `stopped`): that is not news.
      if (!entry.revoking) this.#notify(formatLeaseLost(lease.id, error));
    });
    return lease;
  }

  /** True when this prompt keeps lease `id` alive (it is not lost). */
  keeps(id: number): boolean {
    const entry = this.#kept.get(id);
    return entry !== undefined && entry.lost === null;
  }

  /** Forgets lease `id`; revokes it when it was still alive here. */
  async revoke(id: number): Promise<void> {
    const entry = this.#kept.get(id);
    if (entry === undefined) return;
    this.#kept.delete(id);
    entry.revoking = true;
    if (entry.lost === null) await entry.lease.revoke();
  }

  list(): KeptLeaseLine[] {
    return [...this.#kept.values()].map(({ lease, lost }) => ({ id: lease.id, ttlMs: lease.ttlMs, lost }));
  }

  async revokeAll(): Promise<void> {
    await Promise.allSettled([...this.#kept.keys()].map((id) => this.revoke(id)));
  }
}

/**
 * `lock PATH`: waits for the lock, prints when held, holds it until `stop` (then releases) or
 * until it is lost; true when it ended by `stop` without an error. The lock rides on a lease of
 * its own, so that giving up while waiting (Ctrl-C) removes our place in the queue at once.
 */
export async function holdLock(coord: PromptCoordination, command: LockCommand, out: HeldOutput, stop: Promise<void>): Promise<boolean> {
  const { path, timeoutMs } = command;
  let lease: KeptLease;
  try {
    lease = await coord.grantLease({ ttlMs: command.ttlMs ?? defaultTtlMs });
  } catch (error) {
    out.problem(formatError(error), error);
    return false;
  }
  try {
    out.note(formatLockWaiting(path));
    const pending = coord.lock(path, { lease, ...(timeoutMs === null ? {} : { timeoutMs }) });
    const waited = await race(pending, stop);
    switch (waited.kind) {
      case 'stopped':
        // Revoking the lease (finally) deletes our queue node; a grant racing it is let go.
        quietly(pending.then((held) => held.release()));
        out.note(`gave up waiting for the lock ${path}`);
        return true;
      case 'failed':
        out.problem(
          waited.error instanceof HaretError && waited.error.code === 'timeout' && timeoutMs !== null ? `timed out waiting for the lock ${path} (--timeout ${timeoutMs})` : formatError(waited.error),
          waited.error,
        );
        return false;
      case 'value': {
        const held = waited.value;
        out.note(formatLockHeld(path, held.token), held.token);
        const holding = await race(held.lost, stop);
        if (holding.kind === 'value') {
          quietly(held.release());
          out.problem(formatLockLost(path, holding.value), holding.value);
          return false;
        }
        await held.release();
        out.note('released');
        return holding.kind === 'stopped';
      }
      default:
        return assertNever(waited, 'raced');
    }
  } catch (error) {
    out.problem(formatError(error), error);
    return false;
  } finally {
    await lease.revoke().catch(() => undefined);
  }
}

/** `elect PATH VALUE`: campaigns, prints when elected, leads until `stop` (then resigns) or loss. */
export async function holdElection(coord: PromptCoordination, command: ElectCommand, out: HeldOutput, stop: Promise<void>): Promise<boolean> {
  const { path } = command;
  try {
    const election = coord.election(path, command.ttlMs === null ? {} : { ttlMs: command.ttlMs });
    out.note(formatCampaigning(path, command.value));
    const pending = election.campaign(command.value);
    const waited = await race(pending, stop);
    switch (waited.kind) {
      case 'stopped':
        quietly(pending);
        await election.resign();
        out.note(`withdrew from the election ${path}`);
        return true;
      case 'failed':
        out.problem(formatError(waited.error), waited.error);
        return false;
      case 'value': {
        const leadership = waited.value;
        out.note(formatElected(path, leadership.token), leadership.token);
        const leading = await race(leadership.lost, stop);
        if (leading.kind === 'value') {
          quietly(leadership.resign());
          out.problem(formatLeadershipLost(path, leading.value), leading.value);
          return false;
        }
        await leadership.resign();
        out.note('resigned');
        return leading.kind === 'stopped';
      }
      default:
        return assertNever(waited, 'raced');
    }
  } catch (error) {
    out.problem(formatError(error), error);
    return false;
  }
}

/** `leader PATH [--watch]`: the current leader; with --watch every change until `stop`. */
export async function showLeader(coord: PromptCoordination, command: LeaderCommand, out: HeldOutput, stop: Promise<void>): Promise<boolean> {
  try {
    const election = coord.election(command.path);
    if (!command.watch) {
      const leader = await election.leader();
      out.note(formatLeader(leader), leader?.value ?? null);
      return true;
    }
    const iterator = election.observe()[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await race(iterator.next(), stop);
        if (next.kind === 'stopped') {
          out.note(`stopped watching the leader of ${command.path}`);
          return true;
        }
        if (next.kind === 'failed') {
          out.problem(formatError(next.error), next.error);
          return false;
        }
        if (next.value.done === true) return true;
        out.note(formatLeader(next.value.value), next.value.value?.value ?? null);
      }
    } finally {
      quietly(iterator.return?.() ?? Promise.resolve());
    }
  } catch (error) {
    out.problem(formatError(error), error);
    return false;
  }
}

/** Whether a one-shot command line (`haret cli -e`) can run a lease command, and why not. */
export function oneShotLeaseRefusal(command: LeaseCommand): string | null {
  switch (command.action) {
    case 'grant':
      return 'lease grant keeps the lease alive only while the prompt runs: with -e it would end when the command does. Use the interactive prompt (haret cli ADDRESS), or a program (db.grantLease)';
    case 'list':
      return 'lease list shows the leases an interactive prompt keeps alive: a one-shot command has none';
    case 'revoke':
    case 'keepalive':
      return null;
    default:
      return assertNever(command, 'lease command');
  }
}
