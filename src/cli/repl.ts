/**
 * The prompt's read-eval-print loop over any pair of streams: stdin/stdout for `npm start`,
 * a TCP socket for `haret cli`.
 *
 * Commands run strictly one after another: a line is read only after the previous command's
 * result is printed, so piped scripts get their results in order and a transaction written
 * after a write sees it. The loop ends on end of input (Ctrl-D) or `quit`, and always closes
 * its readline interface so that no listener keeps the process alive afterwards.
 *
 * `watch` is the one command that does not end by itself: it prints events until Ctrl-C
 * (readline's SIGINT in a terminal, the process's SIGINT otherwise), which stops the watch
 * and returns to the prompt. Lines typed or piped meanwhile wait, as during any command.
 */

import * as readline from 'node:readline';
import type { CallResult } from '../client/io.ts';
import { assertNever } from '../base/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import type { WatchBatch } from '../client/watch.ts';
import { commandNames, helpText, parseCommand, type WatchCommand } from './commands.ts';
import { formatError, formatResult, formatWatchError, formatWatchEvent, formatWatchProgress, formatWatchStart, formatWatchStopped } from './format.ts';

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

export type ReplOptions = {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  execute(op: TreeOp): Promise<CallResult>;
  status?(): Promise<string>;
  /** Opens a watch for the `watch` command; absent, `watch` says it is not available. */
  watch?(command: WatchCommand): ReplWatch;
  readonly prompt?: string;
  /** Interactive mode (prompt, line editing, history); defaults to whether input is a TTY. */
  readonly terminal?: boolean;
};

const defaultPrompt = 'haret> ';
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
  /** Stops the running watch (Ctrl-C); null when no watch runs. */
  let stopWatch: (() => void) | null = null;
  if (terminal) {
    // Ctrl-C clears the line being typed, like a shell; on an empty line it leaves, since
    // readline's default (pausing the input) would leave the prompt stuck. During a watch it
    // stops the watch only (and drops what was typed meanwhile).
    rl.on('SIGINT', () => {
      if (stopWatch !== null) {
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
        output.write('^C\n');
        stopWatch();
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
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    // Without a terminal (a pipe), Ctrl-C is a signal to the process; in a terminal it is
    // readline's, but once the input closed it is a signal again. Either stops the watch only.
    const onSignal = (): void => stop();
    // In a terminal, end of input (Ctrl-D) means the user is done: stop the watch and leave.
    // From a pipe, the script's end must not cut a watch short (`tail -f` behaviour).
    const onClose = (): void => {
      if (terminal) stop();
    };
    stopWatch = stop;
    process.on('SIGINT', onSignal);
    rl.on('close', onClose);
    try {
      await printWatch(command, stream, print, stopped);
    } finally {
      stopWatch = null;
      process.off('SIGINT', onSignal);
      rl.off('close', onClose);
    }
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
      case 'op':
        try {
          print(formatResult(await options.execute(parsed.op)));
        } catch (error) {
          // A failed call (a dropped connection, a bug) is reported and the prompt goes on:
          // the next command may well succeed.
          print(formatError(error));
        }
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
      if (!(await handle(line))) {
        quit = true;
        break;
      }
      if (terminal) rl.prompt();
    }
    // Ctrl-D leaves the cursor after the prompt; end the line so the shell starts clean.
    if (terminal && !quit) output.write('\n');
  } finally {
    rl.close();
  }
}
