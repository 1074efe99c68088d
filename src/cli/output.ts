/**
 * Where the prompt's and `haret cli`'s results go, in the three forms of `-o`:
 *
 * - `human` (the default): the prompt's lines (src/cli/format.ts);
 * - `json`: one JSON object per line (src/cli/result_forms.ts);
 * - `value`: only the value (a blob's bytes, a count, ...), one per line.
 *
 * In every form a failure (an error result, a line that does not parse, a lost lock, a watch
 * ended by an error) goes to the error stream and is counted, so that a script's exit status
 * can say whether everything succeeded. The prompt at a terminal passes the same stream twice.
 */

import type { CallResult } from '../client/io.ts';
import { assertNever } from '../base/assert.ts';
import type { Bytes } from '../tree/ops.ts';
import type { WatchEvent } from '../watch/messages.ts';
import type { WatchCommand } from './commands.ts';
import { formatError, formatResult, formatWatchError, formatWatchEvent, formatWatchProgress, formatWatchStart, formatWatchStopped } from './format.ts';
import { base64, callResultJson, errorJson, resultValueLines, watchEventJson, type JsonObject } from './result_forms.ts';

export const outputModes = ['human', 'json', 'value'] as const;
export type OutputMode = (typeof outputModes)[number];

export function isOutputMode(text: string): text is OutputMode {
  return (outputModes as readonly string[]).includes(text);
}

/** How a running watch reports, whatever the form. */
export type WatchSink = {
  start(op: number): void;
  events(op: number, events: readonly WatchEvent[]): void;
  progress(op: number): void;
  /** Stopped by Ctrl-C (or the end of a terminal's input). */
  stopped(lastOp: number | null): void;
  /** Ended by itself without an error. */
  ended(lastOp: number | null): void;
  failed(error: unknown): void;
};

/** What a long-running command (lock, elect, leader) reports, bound to its command line. */
export type HeldOutput = {
  /** A line about progress; `value` is what `-o value` prints (a token, a leader's value). */
  note(line: string, value?: Bytes | number | null): void;
  /** A line saying the command failed (counted as a failure). */
  problem(line: string, error?: unknown): void;
};

export interface Printer {
  /** An op's result; true when it succeeded. `human` renders it in the human form. */
  result(command: string, result: CallResult, human?: (result: CallResult) => string): boolean;
  /** A call that failed without a result (a lost connection, a refusal thrown by the client). */
  failure(command: string, error: unknown): void;
  /** A line that cannot run (it does not parse, or not here). */
  refusal(command: string, message: string): void;
  /** Text asked for: help, status. */
  text(command: string, text: string): void;
  held(command: string): HeldOutput;
  watch(command: string, watch: WatchCommand): WatchSink;
  /** Failures printed so far. */
  readonly failures: number;
}

type Streams = { readonly out: NodeJS.WritableStream; readonly err: NodeJS.WritableStream };

export function createPrinter(mode: OutputMode, streams: Streams): Printer {
  switch (mode) {
    case 'human':
      return new HumanPrinter(streams);
    case 'json':
      return new JsonPrinter(streams);
    case 'value':
      return new ValuePrinter(streams);
    default:
      return assertNever(mode, 'output mode');
  }
}

function watchEnded(lastOp: number | null): string {
  return lastOp === null ? 'watch ended' : `watch ended after op ${lastOp}`;
}

/** The human form; subclasses change how each kind of line is written. */
class HumanPrinter implements Printer {
  protected readonly streams: Streams;
  failures = 0;

  constructor(streams: Streams) {
    this.streams = streams;
  }

  protected line(stream: NodeJS.WritableStream, text: string): void {
    stream.write(`${text}\n`);
  }

  /** A failure's line to the error stream, counted. */
  protected fail(text: string): void {
    this.failures += 1;
    this.line(this.streams.err, text);
  }

  result(_command: string, result: CallResult, human: (result: CallResult) => string = formatResult): boolean {
    const ok = result.type === 'done' && result.outcome.type !== 'error';
    if (ok) this.line(this.streams.out, human(result));
    else this.fail(human(result));
    return ok;
  }

  failure(_command: string, error: unknown): void {
    this.fail(formatError(error));
  }

  refusal(_command: string, message: string): void {
    this.fail(`error: ${message}`);
  }

  text(_command: string, text: string): void {
    this.line(this.streams.out, text);
  }

  held(_command: string): HeldOutput {
    return {
      note: (line) => this.line(this.streams.out, line),
      problem: (line) => this.fail(line),
    };
  }

  watch(command: string, watch: WatchCommand): WatchSink {
    const held = this.held(command);
    return {
      start: (op) => held.note(formatWatchStart(watch, op)),
      events: (op, events) => {
        for (const event of events) held.note(formatWatchEvent(op, event));
      },
      progress: (op) => held.note(formatWatchProgress(op)),
      stopped: (lastOp) => held.note(formatWatchStopped(lastOp)),
      ended: (lastOp) => held.note(watchEnded(lastOp)),
      failed: (error) => held.problem(formatWatchError(error)),
    };
  }
}

/** One JSON object per line; failures (`ok: false`) on the error stream. */
class JsonPrinter implements Printer {
  readonly #streams: Streams;
  failures = 0;

  constructor(streams: Streams) {
    this.#streams = streams;
  }

  #emit(object: JsonObject): void {
    const ok = object['ok'] === true;
    if (!ok) this.failures += 1;
    (ok ? this.#streams.out : this.#streams.err).write(`${JSON.stringify(object)}\n`);
  }

  result(command: string, result: CallResult): boolean {
    const object = callResultJson(command, result);
    this.#emit(object);
    return object['ok'] === true;
  }

  failure(command: string, error: unknown): void {
    this.#emit({ ok: false, command, error: errorJson(error) });
  }

  refusal(command: string, message: string): void {
    this.#emit({ ok: false, command, error: { code: 'usage', message } });
  }

  text(command: string, text: string): void {
    this.#emit({ ok: true, command, text });
  }

  held(command: string): HeldOutput {
    return {
      note: (line, value) => this.#emit({ ok: true, command, message: line, ...(value === undefined ? {} : { value: value instanceof Uint8Array ? base64(value) : value }) }),
      problem: (line, error) => this.#emit({ ok: false, command, error: error === undefined ? { code: 'error', message: line } : { ...errorJson(error), message: line } }),
    };
  }

  watch(command: string): WatchSink {
    return {
      start: (op) => this.#emit({ ok: true, command, watch: 'start', op }),
      events: (op, events) => {
        for (const event of events) this.#emit({ ok: true, command, watch: 'event', ...watchEventJson(op, event) });
      },
      progress: (op) => this.#emit({ ok: true, command, watch: 'progress', op }),
      stopped: (lastOp) => this.#emit({ ok: true, command, watch: 'stopped', op: lastOp }),
      ended: (lastOp) => this.#emit({ ok: true, command, watch: 'ended', op: lastOp }),
      failed: (error) => this.#emit({ ok: false, command, error: errorJson(error) }),
    };
  }
}

/** Only values on the output stream, one per line; everything else goes to the error stream. */
class ValuePrinter extends HumanPrinter {
  #value(bytes: Bytes | string): void {
    this.streams.out.write(typeof bytes === 'string' ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.streams.out.write('\n');
  }

  override result(command: string, result: CallResult, human: (result: CallResult) => string = formatResult): boolean {
    const lines = resultValueLines(result);
    if (lines === null) return super.result(command, result, human);
    for (const line of lines) this.#value(line);
    return true;
  }

  override held(_command: string): HeldOutput {
    return {
      note: (line, value) => {
        if (value === undefined) this.line(this.streams.err, line);
        else this.#value(value === null ? '' : typeof value === 'number' ? String(value) : value);
      },
      problem: (line) => this.fail(line),
    };
  }

  /** Each event's value when the watch carries values, else its path; the other lines to the error stream. */
  override watch(command: string, watch: WatchCommand): WatchSink {
    const human = super.watch(command, watch);
    return {
      ...human,
      events: (_op, events) => {
        for (const event of events) this.#value(event.value instanceof Uint8Array ? event.value : event.path);
      },
    };
  }
}
