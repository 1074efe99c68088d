/**
 * The prompt's read-eval-print loop over any pair of streams: stdin/stdout for `npm start`,
 * a TCP socket for `haret cli`.
 *
 * Commands run strictly one after another: a line is read only after the previous command's
 * result is printed, so piped scripts get their results in order and a transaction written
 * after a write sees it. The loop ends on end of input (Ctrl-D) or `quit`, and always closes
 * its readline interface so that no listener keeps the process alive afterwards.
 */

import * as readline from 'node:readline';
import type { CallResult } from '../client/io.ts';
import { assertNever } from '../base/assert.ts';
import type { TreeOp } from '../tree/ops.ts';
import { commandNames, helpText, parseCommand } from './commands.ts';
import { formatError, formatResult } from './format.ts';

export type ReplOptions = {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  execute(op: TreeOp): Promise<CallResult>;
  status?(): Promise<string>;
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
  if (terminal) {
    // Ctrl-C clears the line being typed, like a shell; on an empty line it leaves, since
    // readline's default (pausing the input) would leave the prompt stuck.
    rl.on('SIGINT', () => {
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
