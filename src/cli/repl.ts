/**
 * The prompt's read-eval-print loop over any pair of streams: stdin/stdout for `npm start`,
 * a TCP socket for `haret cli`.
 *
 * Commands run strictly one after another: a line is read only after the previous command's
 * result is printed, so piped scripts get their results in order and a transaction written
 * after a write sees it. The loop ends on end of input (Ctrl-D) or `quit`, and always closes
 * its readline interface so that no listener keeps the process alive afterwards.
 *
 * `watch`, `lock`, `elect` and `leader --watch` do not end by themselves: they run until Ctrl-C
 * (readline's SIGINT in a terminal, the process's SIGINT otherwise), which stops them (a lock
 * is released, a leadership resigned) and returns to the prompt. Lines typed or piped
 * meanwhile wait, as during any command.
 *
 * `lease grant` leases are kept alive by the client library while the prompt runs; a lease
 * lost anyway is announced with a line when it happens, and leaving the prompt revokes them.
 */

import * as readline from 'node:readline';
import type { CallResult } from '../client/io.ts';
import { HaretError } from '../client/errors.ts';
import type { Coordination, KeptLease } from '../client/namespace_client.ts';
import { assertNever } from '../base/assert.ts';
import { defaultTtlMs } from '../coord/options.ts';
import type { TreeOp } from '../tree/ops.ts';
import type { WatchBatch } from '../client/watch.ts';
import { commandNames, helpText, parseCommand, type ElectCommand, type LeaderCommand, type LeaseCommand, type LockCommand, type WatchCommand } from './commands.ts';
import {
  formatCampaigning,
  formatElected,
  formatError,
  formatKeepAlive,
  formatLeader,
  formatLeadershipLost,
  formatLeaseGranted,
  formatLeaseList,
  formatLeaseLost,
  formatLeaseRevoked,
  formatLockHeld,
  formatLockLost,
  formatLockWaiting,
  formatResult,
  formatWatchError,
  formatWatchEvent,
  formatWatchProgress,
  formatWatchStart,
  formatWatchStopped,
  type KeptLeaseLine,
} from './format.ts';

/** What the prompt needs of a watch (the client's WatchStream is one). */
export type ReplWatch = AsyncIterable<WatchBatch> & { cancel(): void };

/** The client method behind `watch` (NamespaceClient.watch has this shape). */
export type WatchOpener = {
  watch(path: string, options: { recursive?: boolean; fromOp?: number; values?: boolean }): ReplWatch;
};

/** `ReplOptions.watch` for a namespace client: the command's flags as the client's options. */
export function watchWith(client: WatchOpener): (command: WatchCommand) => ReplWatch {
  return (command) =>
    client.watch(command.path, { recursive: command.recursive, values: command.values, ...(command.fromOp === null ? {} : { fromOp: command.fromOp }) });
}

/**
 * Prints a watch until `stop` resolves or the watch ends; true when it ended without an
 * error. Cancels the watch on every way out, so nothing keeps running after the prompt
 * moved on. Shared by the prompt and `haret cli -e 'watch ...'`.
 */
export async function printWatch(command: WatchCommand, stream: ReplWatch, print: (text: string) => void, stop: Promise<void>): Promise<boolean> {
  const iterator = stream[Symbol.asyncIterator]();
  const stopped = stop.then(() => 'stopped' as const);
  let last: number | null = null;
  try {
    for (;;) {
      // A race rather than relying on cancel to end a pending next(): Ctrl-C must answer at
      // once even if the watch is stuck waiting for a replica.
      const next = await Promise.race([iterator.next(), stopped]);
      if (next === 'stopped') {
        print(formatWatchStopped(last));
        return true;
      }
      if (next.done === true) {
        print(last === null ? 'watch ended' : `watch ended after op ${last}`);
        return true;
      }
      const batch = next.value;
      switch (batch.kind) {
        case 'start':
          print(formatWatchStart(command, batch.op));
          break;
        case 'events':
          for (const event of batch.events) print(formatWatchEvent(batch.op, event));
          break;
        case 'progress':
          if (command.progress) print(formatWatchProgress(batch.op));
          break;
        default:
          assertNever(batch.kind, 'watch batch kind');
      }
      last = batch.op;
    }
  } catch (error) {
    print(formatWatchError(error));
    return false;
  } finally {
    stream.cancel();
  }
}

// ---- coordination: leases, locks, elections -----------------------------------------------------

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
export async function holdLock(coord: PromptCoordination, command: LockCommand, print: (text: string) => void, stop: Promise<void>): Promise<boolean> {
  const { path, timeoutMs } = command;
  let lease: KeptLease;
  try {
    lease = await coord.grantLease({ ttlMs: command.ttlMs ?? defaultTtlMs });
  } catch (error) {
    print(formatError(error));
    return false;
  }
  try {
    print(formatLockWaiting(path));
    const pending = coord.lock(path, { lease, ...(timeoutMs === null ? {} : { timeoutMs }) });
    const waited = await race(pending, stop);
    switch (waited.kind) {
      case 'stopped':
        // Revoking the lease (finally) deletes our queue node; a grant racing it is let go.
        quietly(pending.then((held) => held.release()));
        print(`gave up waiting for the lock ${path}`);
        return true;
      case 'failed':
        print(waited.error instanceof HaretError && waited.error.code === 'timeout' && timeoutMs !== null ? `timed out waiting for the lock ${path} (--timeout ${timeoutMs})` : formatError(waited.error));
        return false;
      case 'value': {
        const held = waited.value;
        print(formatLockHeld(path, held.token));
        const holding = await race(held.lost, stop);
        if (holding.kind === 'value') {
          quietly(held.release());
          print(formatLockLost(path, holding.value));
          return false;
        }
        await held.release();
        print('released');
        return holding.kind === 'stopped';
      }
      default:
        return assertNever(waited, 'raced');
    }
  } catch (error) {
    print(formatError(error));
    return false;
  } finally {
    await lease.revoke().catch(() => undefined);
  }
}

/** `elect PATH VALUE`: campaigns, prints when elected, leads until `stop` (then resigns) or loss. */
export async function holdElection(coord: PromptCoordination, command: ElectCommand, print: (text: string) => void, stop: Promise<void>): Promise<boolean> {
  const { path } = command;
  try {
    const election = coord.election(path, command.ttlMs === null ? {} : { ttlMs: command.ttlMs });
    print(formatCampaigning(path, command.value));
    const pending = election.campaign(command.value);
    const waited = await race(pending, stop);
    switch (waited.kind) {
      case 'stopped':
        quietly(pending);
        await election.resign();
        print(`withdrew from the election ${path}`);
        return true;
      case 'failed':
        print(formatError(waited.error));
        return false;
      case 'value': {
        const leadership = waited.value;
        print(formatElected(path, leadership.token));
        const leading = await race(leadership.lost, stop);
        if (leading.kind === 'value') {
          quietly(leadership.resign());
          print(formatLeadershipLost(path, leading.value));
          return false;
        }
        await leadership.resign();
        print('resigned');
        return leading.kind === 'stopped';
      }
      default:
        return assertNever(waited, 'raced');
    }
  } catch (error) {
    print(formatError(error));
    return false;
  }
}

/** `leader PATH [--watch]`: the current leader; with --watch every change until `stop`. */
export async function showLeader(coord: PromptCoordination, command: LeaderCommand, print: (text: string) => void, stop: Promise<void>): Promise<boolean> {
  try {
    const election = coord.election(command.path);
    if (!command.watch) {
      print(formatLeader(await election.leader()));
      return true;
    }
    const iterator = election.observe()[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await race(iterator.next(), stop);
        if (next.kind === 'stopped') {
          print(`stopped watching the leader of ${command.path}`);
          return true;
        }
        if (next.kind === 'failed') {
          print(formatError(next.error));
          return false;
        }
        if (next.value.done === true) return true;
        print(formatLeader(next.value.value));
      }
    } finally {
      quietly(iterator.return?.() ?? Promise.resolve());
    }
  } catch (error) {
    print(formatError(error));
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

export type ReplOptions = {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  execute(op: TreeOp): Promise<CallResult>;
  status?(): Promise<string>;
  /** Opens a watch for the `watch` command; absent, `watch` says it is not available. */
  watch?(command: WatchCommand): ReplWatch;
  /** The client behind `lease grant`/`list`, `lock`, `elect` and `leader`; absent, they say they are not available. */
  readonly coord?: PromptCoordination;
  readonly prompt?: string;
  /** Interactive mode (prompt, line editing, history); defaults to whether input is a TTY. */
  readonly terminal?: boolean;
};

const defaultPrompt = 'haret> ';
/** How long leaving the prompt waits for its leases' revokes (an unreachable node must not hold it). */
const revokeAtExitMs = 3_000;

async function revokeWithin(leases: PromptLeases, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([leases.revokeAll(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
const historySize = 1000;

/** Completes the command word only: paths would need a round trip to the service. */
function complete(line: string): [string[], string] {
  const word = line.trimStart();
  if (/\s/.test(word)) return [[], line];
  const hits = commandNames.filter((name) => name.startsWith(word.toLowerCase()));
  return [hits.length > 0 ? hits : [...commandNames], word];
}

export async function runRepl(options: ReplOptions): Promise<void> {
  const { input, output } = options;
  const terminal = options.terminal ?? (input as { isTTY?: boolean }).isTTY === true;
  const prompt = options.prompt ?? defaultPrompt;

  // Without a terminal readline gets no output stream: it then never writes (no prompt, no
  // echo), and everything printed comes from `print` in command order.
  const rl = terminal
    ? readline.createInterface({ input, output, terminal: true, prompt, historySize, removeHistoryDuplicates: true, completer: complete })
    : readline.createInterface({ input, terminal: false, crlfDelay: Infinity });

  const print = (text: string): void => {
    output.write(`${text}\n`);
  };

  let quit = false;
  /** True while a command runs (the prompt is not showing). */
  let busy = false;
  /** Stops the running watch, lock, election or leader watch (Ctrl-C); null when none runs. */
  let stopHeld: (() => void) | null = null;

  /** A line that comes by itself (a lease lost): at an idle terminal prompt, above it. */
  const notify = (text: string): void => {
    if (!terminal || busy || quit) {
      print(text);
      return;
    }
    readline.clearLine(output, 0);
    readline.cursorTo(output, 0);
    print(text);
    rl.prompt(true);
  };
  const leases = options.coord === undefined ? null : new PromptLeases(options.coord, notify);

  if (terminal) {
    // Ctrl-C clears the line being typed, like a shell; on an empty line it leaves, since
    // readline's default (pausing the input) would leave the prompt stuck. During a watch,
    // lock, election or leader watch it stops that only (and drops what was typed meanwhile).
    rl.on('SIGINT', () => {
      if (stopHeld !== null) {
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
        output.write('^C\n');
        stopHeld();
        return;
      }
      if (rl.line.length === 0) {
        quit = true;
        output.write('\n');
        rl.close();
        return;
      }
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
      output.write('^C\n');
      rl.prompt();
    });
  }

  /** Runs a command that ends only when stopped (Ctrl-C), or by itself. */
  const untilStopped = async (task: (stopped: Promise<void>) => Promise<unknown>): Promise<void> => {
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    // Without a terminal (a pipe), Ctrl-C is a signal to the process; in a terminal it is
    // readline's, but once the input closed it is a signal again. Either stops the command only.
    const onSignal = (): void => stop();
    // In a terminal, end of input (Ctrl-D) means the user is done: stop the command and leave.
    // From a pipe, the script's end must not cut it short (`tail -f` behaviour).
    const onClose = (): void => {
      if (terminal) stop();
    };
    stopHeld = stop;
    process.on('SIGINT', onSignal);
    rl.on('close', onClose);
    try {
      await task(stopped);
    } finally {
      stopHeld = null;
      process.off('SIGINT', onSignal);
      rl.off('close', onClose);
    }
  };

  const runWatch = async (command: WatchCommand): Promise<void> => {
    if (options.watch === undefined) {
      print('watch is not available here');
      return;
    }
    let stream: ReplWatch;
    try {
      stream = options.watch(command);
    } catch (error) {
      // Refused at once (a malformed path, too many watches): nothing to stop.
      print(formatWatchError(error));
      return;
    }
    await untilStopped((stopped) => printWatch(command, stream, print, stopped));
  };

  /** Runs one op and prints its result (or the failure of the call). */
  const runOp = async (op: TreeOp, show: (result: CallResult) => string = formatResult): Promise<void> => {
    try {
      print(show(await options.execute(op)));
    } catch (error) {
      // A failed call (a dropped connection, a bug) is reported and the prompt goes on:
      // the next command may well succeed.
      print(formatError(error));
    }
  };

  const runLease = async (command: LeaseCommand): Promise<void> => {
    switch (command.action) {
      case 'grant':
        if (leases === null) {
          print('lease grant is not available here');
          return;
        }
        try {
          const lease = await leases.grant(command.ttlMs);
          print(formatLeaseGranted(lease.id, lease.ttlMs));
        } catch (error) {
          print(formatError(error));
        }
        return;
      case 'revoke':
        // One of ours: its keep-alives must stop too, so the kept lease revokes itself.
        if (leases?.keeps(command.id) === true) {
          try {
            await leases.revoke(command.id);
            print(formatLeaseRevoked(command.id));
          } catch (error) {
            print(formatError(error));
          }
          return;
        }
        await leases?.revoke(command.id); // a lost one: forget it; the op below says it is gone
        await runOp({ type: 'lease_revoke', id: command.id });
        return;
      case 'keepalive':
        await runOp({ type: 'lease_keepalive', ids: command.ids }, (result) => formatKeepAlive(command.ids, result));
        return;
      case 'list':
        print(leases === null ? 'lease list is not available here' : formatLeaseList(leases.list()));
        return;
      default:
        assertNever(command, 'lease command');
    }
  };

  /** lock, elect and leader: through the coordination client, when there is one. */
  const runRecipe = async (name: string, task: (coord: PromptCoordination, stopped: Promise<void>) => Promise<unknown>): Promise<void> => {
    const coord = options.coord;
    if (coord === undefined) {
      print(`${name} is not available here`);
      return;
    }
    await untilStopped((stopped) => task(coord, stopped));
  };

  /** Runs one line; false when the loop should end. */
  const handle = async (line: string): Promise<boolean> => {
    const parsed = parseCommand(line);
    switch (parsed.type) {
      case 'empty':
        return true;
      case 'quit':
        return false;
      case 'help':
        print(helpText(parsed.topic));
        return true;
      case 'status':
        if (options.status === undefined) {
          print('status is not available here');
          return true;
        }
        try {
          print(await options.status());
        } catch (error) {
          print(formatError(error));
        }
        return true;
      case 'error':
        print(`error: ${parsed.message}`);
        return true;
      case 'watch':
        await runWatch(parsed.watch);
        return true;
      case 'lease':
        await runLease(parsed.lease);
        return true;
      case 'lock':
        await runRecipe('lock', (coord, stopped) => holdLock(coord, parsed.lock, print, stopped));
        return true;
      case 'elect':
        await runRecipe('elect', (coord, stopped) => holdElection(coord, parsed.elect, print, stopped));
        return true;
      case 'leader':
        await runRecipe('leader', (coord, stopped) => showLeader(coord, parsed.leader, print, stopped));
        return true;
      case 'op':
        await runOp(parsed.op);
        return true;
      default:
        return assertNever(parsed, 'parsed line');
    }
  };

  try {
    if (terminal) rl.prompt();
    // The async iterator buffers lines that arrive while a command runs and yields them one
    // at a time, which is what keeps execution sequential and output in order.
    for await (const line of rl) {
      busy = true;
      const goOn = await handle(line);
      busy = false;
      if (!goOn) {
        quit = true;
        break;
      }
      if (terminal) rl.prompt();
    }
    // Ctrl-D leaves the cursor after the prompt; end the line so the shell starts clean.
    if (terminal && !quit) output.write('\n');
  } finally {
    quit = true;
    rl.close();
    // The prompt's leases end with it: their ephemeral nodes go now rather than a TTL later.
    if (leases !== null) await revokeWithin(leases, revokeAtExitMs);
  }
}
