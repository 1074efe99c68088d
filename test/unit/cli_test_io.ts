/**
 * What the prompt tests share: a prompt's in-memory input and captured output, and the small
 * helpers every CLI test file used to write again.
 */

import { PassThrough, Writable } from 'node:stream';
import { parseCommand } from '../../src/cli/commands.ts';

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The message of the parse error `line` gives (throws when it parses). */
export function errorOf(line: string): string {
  const parsed = parseCommand(line);
  if (parsed.type !== 'error') throw new Error(`expected an error from ${JSON.stringify(line)}, got ${JSON.stringify(parsed)}`);
  return parsed.message;
}

/** A prompt's streams in memory: write lines to `input`; `text()` is everything written to `output`. */
export function promptStreams(): { readonly input: PassThrough; readonly output: Writable; text(): string } {
  const input = new PassThrough();
  let written = '';
  const output = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      written += chunk.toString();
      callback();
    },
  });
  return { input, output, text: () => written };
}
