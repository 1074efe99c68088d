/**
 * Running the prompt's command lines against a namespace, one after another: the part of the
 * prompt that `haret cli -e` (lines from the command line), a pipe and a terminal share. Where
 * the lines come from and how the results look (the printer, src/cli/output.ts) are the
 * caller's.
 *
 * `watch`, `lock`, `elect` and `leader --watch` do not end by themselves: they run until
 * `stopHeld()` (a terminal's Ctrl-C or Ctrl-D) or the process's SIGINT, which stops them (a
 * lock is released, a leadership resigned) and lets the next line run.
 *
 * `lease grant` leases are kept alive by the client library while the session lasts; a lease
 * lost anyway is announced when it happens, and `close()` revokes them.
 */

import { assertNever } from '../base/assert.ts';
import type { CallResult } from '../client/io.ts';
import type { TreeOp } from '../tree/ops.ts';
import { helpText, parseCommand, type LeaseCommand, type ParsedLine, type WatchCommand } from './commands.ts';
import { holdElection, holdLock, PromptLeases, showLeader, type PromptCoordination } from './coordination.ts';
import { formatKeepAlive, formatLeaseGranted, formatLeaseList, formatLeaseRevoked } from './format.ts';
import type { HeldOutput, Printer } from './output.ts';
import { printWatch, type ReplWatch } from './watching.ts';

export type SessionOptions = {
  execute(op: TreeOp): Promise<CallResult>;
  status?(): Promise<string>;
  /** Opens a watch for the `watch` command; absent, `watch` says it is not available. */
  watch?(command: WatchCommand): ReplWatch;
  /** The client behind `lease grant`/`list`, `lock`, `elect` and `leader`; absent, they say they are not available. */
  readonly coord?: PromptCoordination;
  readonly printer: Printer;
  /**
   * Writes a line that comes by itself (a lease lost) through `write`; a terminal prompt wraps
   * it to keep the line being typed intact. Default: writes at once.
   */
  readonly announce?: (write: () => void) => void;
};

/** How long closing a session waits for its leases' revokes (an unreachable node must not hold it). */
const revokeAtExitMs = 3_000;

export class CommandSession {
  readonly #options: SessionOptions;
  readonly #printer: Printer;
  readonly #leases: PromptLeases | null;
  /** Stops the running watch, lock, election or leader watch; null when none runs. */
  #stopHeld: (() => void) | null = null;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#printer = options.printer;
    const announce = options.announce ?? ((write) => write());
    this.#leases = options.coord === undefined ? null : new PromptLeases(options.coord, (line) => announce(() => this.#printer.held('lease').problem(line)));
  }

  /** True while a watch, lock, election or leader watch runs. */
  get holding(): boolean {
    return this.#stopHeld !== null;
  }

  /** Stops what `holding` says runs; false when nothing did. */
  stopHeld(): boolean {
    const stop = this.#stopHeld;
    if (stop === null) return false;
    stop();
    return true;
  }

  /** Runs one line; false when the session should end (`quit`). */
  async run(line: string): Promise<boolean> {
    return this.runParsed(line, parseCommand(line));
  }

  async runParsed(line: string, parsed: ParsedLine): Promise<boolean> {
    const command = line.trim();
    const printer = this.#printer;
    switch (parsed.type) {
      case 'empty':
        return true;
      case 'quit':
        return false;
      case 'help':
        printer.text(command, helpText(parsed.topic));
        return true;
      case 'status':
        if (this.#options.status === undefined) {
          printer.held(command).problem('status is not available here');
          return true;
        }
        try {
          printer.text(command, await this.#options.status());
        } catch (error) {
          printer.failure(command, error);
        }
        return true;
      case 'error':
        printer.refusal(command, parsed.message);
        return true;
      case 'watch':
        await this.#runWatch(command, parsed.watch);
        return true;
      case 'lease':
        await this.#runLease(command, parsed.lease);
        return true;
      case 'lock':
        await this.#runRecipe(command, 'lock', (coord, out, stopped) => holdLock(coord, parsed.lock, out, stopped));
        return true;
      case 'elect':
        await this.#runRecipe(command, 'elect', (coord, out, stopped) => holdElection(coord, parsed.elect, out, stopped));
        return true;
      case 'leader':
        await this.#runRecipe(command, 'leader', (coord, out, stopped) => showLeader(coord, parsed.leader, out, stopped));
        return true;
      case 'op':
        await this.#runOp(command, parsed.op);
        return true;
      default:
        return assertNever(parsed, 'parsed line');
    }
  }

  /** Revokes the session's leases (their ephemeral nodes go now rather than a TTL later), waiting at most a few seconds. */
  async close(): Promise<void> {
    const leases = this.#leases;
    if (leases === null) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, revokeAtExitMs);
    });
    try {
      await Promise.race([leases.revokeAll(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command that ends only when stopped (stopHeld, SIGINT), or by itself. */
  async #untilStopped(task: (stopped: Promise<void>) => Promise<unknown>): Promise<void> {
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    // Without a terminal (a pipe, -e) Ctrl-C is a signal to the process; in a terminal it is
    // readline's, but once the input closed it is a signal again. Either stops the command only.
    const onSignal = (): void => stop();
    this.#stopHeld = stop;
    process.on('SIGINT', onSignal);
    try {
      await task(stopped);
    } finally {
      this.#stopHeld = null;
      process.off('SIGINT', onSignal);
    }
  }

  async #runWatch(command: string, watch: WatchCommand): Promise<void> {
    const printer = this.#printer;
    if (this.#options.watch === undefined) {
      printer.held(command).problem('watch is not available here');
      return;
    }
    const sink = printer.watch(command, watch);
    let stream: ReplWatch;
    try {
      stream = this.#options.watch(watch);
    } catch (error) {
      // Refused at once (a malformed path, too many watches): nothing to stop.
      sink.failed(error);
      return;
    }
    await this.#untilStopped((stopped) => printWatch(watch, stream, sink, stopped));
  }

  /** Runs one op and prints its result (or the failure of the call). */
  async #runOp(command: string, op: TreeOp, human?: (result: CallResult) => string): Promise<void> {
    try {
      this.#printer.result(command, await this.#options.execute(op), human);
    } catch (error) {
      // A failed call (a dropped connection, a bug) is reported and the session goes on:
      // the next command may well succeed.
      this.#printer.failure(command, error);
    }
  }

  async #runLease(command: string, lease: LeaseCommand): Promise<void> {
    const printer = this.#printer;
    const leases = this.#leases;
    switch (lease.action) {
      case 'grant':
        if (leases === null) {
          printer.held(command).problem('lease grant is not available here');
          return;
        }
        try {
          const kept = await leases.grant(lease.ttlMs);
          printer.held(command).note(formatLeaseGranted(kept.id, kept.ttlMs), kept.id);
        } catch (error) {
          printer.failure(command, error);
        }
        return;
      case 'revoke':
        // One of ours: its keep-alives must stop too, so the kept lease revokes itself.
        if (leases?.keeps(lease.id) === true) {
          try {
            await leases.revoke(lease.id);
            printer.held(command).note(formatLeaseRevoked(lease.id), lease.id);
          } catch (error) {
            printer.failure(command, error);
          }
          return;
        }
        await leases?.revoke(lease.id); // a lost one: forget it; the op below says it is gone
        await this.#runOp(command, { type: 'lease_revoke', id: lease.id });
        return;
      case 'keepalive':
        await this.#runOp(command, { type: 'lease_keepalive', ids: lease.ids }, (result) => formatKeepAlive(lease.ids, result));
        return;
      case 'list':
        if (leases === null) printer.held(command).problem('lease list is not available here');
        else printer.text(command, formatLeaseList(leases.list()));
        return;
      default:
        assertNever(lease, 'lease command');
    }
  }

  /** lock, elect and leader: through the coordination client, when there is one. */
  async #runRecipe(command: string, name: string, task: (coord: PromptCoordination, out: HeldOutput, stopped: Promise<void>) => Promise<unknown>): Promise<void> {
    const coord = this.#options.coord;
    const out = this.#printer.held(command);
    if (coord === undefined) {
      out.problem(`${name} is not available here`);
      return;
    }
    await this.#untilStopped((stopped) => task(coord, out, stopped));
  }
}
