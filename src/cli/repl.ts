/**
 * The prompt's read-eval-print loop over any pair of streams: stdin/stdout for `npm start` and
 * `haret cli`, in-memory streams in the tests. What a line does is src/cli/session.ts.
 *
 * Commands run strictly one after another: a line is read only after the previous command's
 * result is printed, so piped scripts get their results in order and a transaction written
 * after a write sees it. The loop ends on end of input (Ctrl-D), `quit` or the abort signal,
 * and always closes its readline interface so that no listener keeps the process alive
 * afterwards. It resolves with the number of failures printed, for an exit status.
 *
 * At a terminal: a prompt, line editing, TAB completion of commands and paths
 * (src/cli/completion.ts), and a history kept across sessions in a file
 * (src/cli/history.ts). Ctrl-C clears the line, leaves on an empty one, and stops a running
 * watch, lock, election or leader watch (as SIGINT does without a terminal).
 */

import * as readline from 'node:readline';
import type { CallResult } from '../client/io.ts';
import type { TreeOp } from '../tree/ops.ts';
import { commandNames, type WatchCommand } from './commands.ts';
import { completeLine } from './completion.ts';
import type { PromptCoordination } from './coordination.ts';
import { historyLinesMax, loadHistory, saveHistory } from './history.ts';
import { createPrinter, type OutputMode } from './output.ts';
import { CommandSession } from './session.ts';
import type { ReplWatch } from './watching.ts';

export { holdElection, holdLock, oneShotLeaseRefusal, PromptLeases, showLeader, type PromptCoordination } from './coordination.ts';
export { printWatch, watchWith, type ReplWatch, type WatchOpener } from './watching.ts';

export type ReplOptions = {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  /** Where failures go (error results, bad lines); default `output`. */
  readonly errorOutput?: NodeJS.WritableStream;
  /** How results look: human (default), json or value (src/cli/output.ts). */
  readonly mode?: OutputMode;
  execute(op: TreeOp): Promise<CallResult>;
  status?(): Promise<string>;
  /** Opens a watch for the `watch` command; absent, `watch` says it is not available. */
  watch?(command: WatchCommand): ReplWatch;
  /** The client behind `lease grant`/`list`, `lock`, `elect` and `leader`; absent, they say they are not available. */
  readonly coord?: PromptCoordination;
  readonly prompt?: string;
  /** Interactive mode (prompt, line editing, history); defaults to whether input is a TTY. */
  readonly terminal?: boolean;
  /** The history file of an interactive prompt; absent or null: history for this session only. */
  readonly historyFile?: string | null;
  /** Lines the history keeps. Default 1000. */
  readonly historySize?: number;
  /** Ends the prompt (the process is stopping): a running watch or lock stops, leases are revoked. */
  readonly signal?: AbortSignal;
  /**
   * SIGINT while no watch, lock, election or leader watch runs ends the prompt, as the end of
   * input would (a process manager's stop); while one runs it stops that one only.
   */
  readonly endOnSigint?: boolean;
};

export type ReplSummary = {
  /** Failures printed: error results, lines that did not parse, lost locks, ... */
  readonly failures: number;
};

const defaultPrompt = 'haret> ';

/** The terminal's readline interface, with completion and the history file. */
function terminalInterface(options: ReplOptions, prompt: string, warn: (line: string) => void): readline.Interface {
  const historySize = options.historySize ?? historyLinesMax;
  const historyFile = options.historyFile ?? null;
  let history: string[] = [];
  if (historyFile !== null) {
    try {
      history = loadHistory(historyFile, historySize);
    } catch (error) {
      warn(`haret: cannot read the history ${historyFile}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const rl = readline.createInterface({
    input: options.input,
    output: options.output,
    terminal: true,
    prompt,
    history,
    historySize,
    removeHistoryDuplicates: true,
    completer: (line: string, callback: (error: Error | null, result: [string[], string]) => void) => {
      completeLine(line, { names: commandNames, execute: (op) => options.execute(op) }).then(
        (result) => callback(null, result),
        () => callback(null, [[], line]),
      );
    },
  });
  if (historyFile !== null) {
    let warned = false;
    rl.on('history', (lines: string[]) => {
      try {
        saveHistory(historyFile, lines, historySize);
      } catch (error) {
        if (!warned) warn(`haret: cannot write the history ${historyFile}: ${error instanceof Error ? error.message : String(error)}`);
        warned = true;
      }
    });
  }
  return rl;
}

export async function runRepl(options: ReplOptions): Promise<ReplSummary> {
  const { input, output } = options;
  const terminal = options.terminal ?? (input as { isTTY?: boolean }).isTTY === true;
  const prompt = options.prompt ?? defaultPrompt;
  const errorOutput = options.errorOutput ?? output;
  const printer = createPrinter(options.mode ?? 'human', { out: output, err: errorOutput });

  // Without a terminal readline gets no output stream: it then never writes (no prompt, no
  // echo), and everything printed comes from the printer in command order.
  const rl = terminal
    ? terminalInterface(options, prompt, (line) => errorOutput.write(`${line}\n`))
    : readline.createInterface({ input, terminal: false, crlfDelay: Infinity });

  let quit = false;
  /** True while a command runs (the prompt is not showing). */
  let busy = false;

  /** A line that comes by itself (a lease lost): at an idle terminal prompt, above it. */
  const announce = (write: () => void): void => {
    if (!terminal || busy || quit) {
      write();
      return;
    }
    readline.clearLine(output, 0);
    readline.cursorTo(output, 0);
    write();
    rl.prompt(true);
  };

  const session = new CommandSession({
    execute: (op) => options.execute(op),
    ...(options.status === undefined ? {} : { status: () => options.status!() }),
    ...(options.watch === undefined ? {} : { watch: (command: WatchCommand) => options.watch!(command) }),
    ...(options.coord === undefined ? {} : { coord: options.coord }),
    printer,
    announce,
  });

  if (terminal) {
    // Ctrl-C clears the line being typed, like a shell; on an empty line it leaves, since
    // readline's default (pausing the input) would leave the prompt stuck. During a watch,
    // lock, election or leader watch it stops that only (and drops what was typed meanwhile).
    rl.on('SIGINT', () => {
      if (session.holding) {
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
        output.write('^C\n');
        session.stopHeld();
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
    // End of input (Ctrl-D) means the user is done: stop what runs and leave. From a pipe the
    // script's end must not cut a running watch short (`tail -f` behaviour).
    rl.on('close', () => session.stopHeld());
  }

  const stopping = (): void => {
    quit = true;
    session.stopHeld();
    rl.close();
  };
  if (options.signal?.aborted === true) stopping();
  options.signal?.addEventListener('abort', stopping, { once: true });
  // Registered before any held command's own SIGINT listener, so it runs first and leaves
  // the signal to that one.
  const onSigint = (): void => {
    if (!session.holding) stopping();
  };
  if (options.endOnSigint === true) process.on('SIGINT', onSigint);

  try {
    if (terminal && !quit) rl.prompt();
    // The async iterator buffers lines that arrive while a command runs and yields them one
    // at a time, which is what keeps execution sequential and output in order.
    for await (const line of rl) {
      if (quit) break;
      busy = true;
      const goOn = await session.run(line);
      busy = false;
      if (!goOn || quit) {
        quit = true;
        break;
      }
      if (terminal) rl.prompt();
    }
    // Ctrl-D leaves the cursor after the prompt; end the line so the shell starts clean.
    if (terminal && !quit) output.write('\n');
  } finally {
    quit = true;
    options.signal?.removeEventListener('abort', stopping);
    process.off('SIGINT', onSigint);
    rl.close();
    // The prompt's leases end with it: their ephemeral nodes go now rather than a TTL later.
    await session.close();
  }
  return { failures: printer.failures };
}
