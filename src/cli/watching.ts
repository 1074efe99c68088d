/**
 * `watch PATH`: printing a watch until Ctrl-C or its end, shared by the prompt and
 * `haret cli -e 'watch ...'`.
 */

import { assertNever } from '../base/assert.ts';
import type { WatchBatch } from '../client/watch.ts';
import type { WatchCommand } from './commands.ts';
import type { WatchSink } from './output.ts';

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
 * Reports a watch until `stop` resolves or the watch ends; true when it ended without an
 * error. Cancels the watch on every way out, so nothing keeps running after the prompt
 * moved on.
 */
export async function printWatch(command: WatchCommand, stream: ReplWatch, sink: WatchSink, stop: Promise<void>): Promise<boolean> {
  const iterator = stream[Symbol.asyncIterator]();
  const stopped = stop.then(() => 'stopped' as const);
  let last: number | null = null;
  try {
    for (;;) {
      // A race rather than relying on cancel to end a pending next(): Ctrl-C must answer at
      // once even if the watch is stuck waiting for a replica.
      const next = await Promise.race([iterator.next(), stopped]);
      if (next === 'stopped') {
        sink.stopped(last);
        return true;
      }
      if (next.done === true) {
        sink.ended(last);
        return true;
      }
      const batch = next.value;
      switch (batch.kind) {
        case 'start':
          sink.start(batch.op);
          break;
        case 'events':
          sink.events(batch.op, batch.events);
          break;
        case 'progress':
          if (command.progress) sink.progress(batch.op);
          break;
        default:
          assertNever(batch.kind, 'watch batch kind');
      }
      last = batch.op;
    }
  } catch (error) {
    sink.failed(error);
    return false;
  } finally {
    stream.cancel();
  }
}
