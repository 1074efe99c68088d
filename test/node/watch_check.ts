/**
 * What the real-worker and multi-process watch tests share (test/node/watch_faults.test.ts,
 * test/net/watch_cluster.test.ts): a recorder that reads a watch to its end, a closed-loop
 * writer of one path that keeps every acknowledged result, and the checks of a recorded stream
 * against them (one start, ops increasing; each path's versions exactly 0..final at the ops the
 * writer's results report, with the values written).
 */

import { HaretError } from '../../src/client/errors.ts';
import type { NamespaceClient } from '../../src/client/namespace_client.ts';
import type { WatchBatch } from '../../src/client/watch.ts';
import type { WatchStream } from '../../src/client/watch_stream.ts';
import type { WatchEvent } from '../../src/watch/messages.ts';

const decoder = new TextDecoder();

/** A watch read to its end by a loop of its own: every batch, when it arrived, and how it ended. */
export class Recorder {
  readonly name: string;
  readonly stream: WatchStream;
  readonly batches: WatchBatch[] = [];
  readonly arrivedMs: number[] = [];
  error: unknown = null;
  ended = false;
  readonly done: Promise<void>;

  constructor(name: string, stream: WatchStream) {
    this.name = name;
    this.stream = stream;
    this.done = (async () => {
      try {
        for await (const batch of stream) {
          this.batches.push(batch);
          this.arrivedMs.push(performance.now());
        }
      } catch (error) {
        this.error = error;
      } finally {
        this.ended = true;
      }
    })();
  }

  /** The op delivered through (the last batch's), or null before the start. */
  get position(): number | null {
    return this.batches.at(-1)?.op ?? null;
  }

  /** The longest wait between two batches (ms): how long a failover left the watcher without news. */
  get longestGapMs(): number {
    let gap = 0;
    for (let i = 1; i < this.arrivedMs.length; i++) gap = Math.max(gap, (this.arrivedMs[i] as number) - (this.arrivedMs[i - 1] as number));
    return Math.round(gap);
  }

  /** Every event of `path`, with the op of its batch, in delivery order. */
  eventsOf(path: string): { readonly op: number; readonly event: WatchEvent }[] {
    const out: { op: number; event: WatchEvent }[] = [];
    for (const batch of this.batches) for (const event of batch.events) if (event.path === path) out.push({ op: batch.op, event });
    return out;
  }

  async stop(): Promise<void> {
    this.stream.cancel();
    await this.done;
  }
}

/** Problems with the shape of a watcher's stream: one start first, event ops strictly increasing, no op going back. */
export function streamProblems(recorder: Recorder, fromOp: number | null = null): string[] {
  const problems: string[] = [];
  const [first, ...rest] = recorder.batches;
  if (first === undefined) return [`${recorder.name}: no batch at all`];
  if (first.kind !== 'start') problems.push(`${recorder.name}: first batch is ${first.kind}`);
  if (fromOp !== null && first.op !== fromOp) problems.push(`${recorder.name}: starts at ${first.op}, asked ${fromOp}`);
  let position = first.op;
  for (const batch of rest) {
    if (batch.kind === 'start') problems.push(`${recorder.name}: a second start at ${batch.op}`);
    if (batch.kind === 'events' && (batch.op <= position || batch.events.length === 0)) problems.push(`${recorder.name}: events batch at ${batch.op} after position ${position} (${batch.events.length} events)`);
    if (batch.kind === 'progress' && (batch.op < position || batch.events.length > 0)) problems.push(`${recorder.name}: progress ${batch.op} after position ${position}`);
    position = Math.max(position, batch.op);
  }
  return problems;
}

export type Put = { readonly op: number; readonly version: number; readonly value: string };

/**
 * A closed-loop writer of one path: creates it, then puts distinct values until stopped. Every
 * acknowledged result is kept (its op and version); a call that may have run without an answer
 * is counted as ambiguous (it may account for one version nobody acknowledged).
 */
export class PathWriter {
  readonly path: string;
  readonly acked: Put[] = [];
  ambiguous = 0;
  notExecuted = 0;
  readonly unexpected: string[] = [];
  #stop = false;
  #loop: Promise<void> | null = null;

  constructor(path: string) {
    this.path = path;
  }

  start(client: NamespaceClient): void {
    this.#loop = (async () => {
      try {
        const created = await client.create(this.path, 'blob');
        this.acked.push({ op: created.op, version: created.version, value: '' });
      } catch (error) {
        this.unexpected.push(`create: ${String(error)}`);
        return;
      }
      for (let n = 1; !this.#stop; n++) {
        const value = `${this.path}#${n}`;
        try {
          const result = await client.blobPut(this.path, value);
          this.acked.push({ op: result.op, version: result.version, value });
        } catch (error) {
          if (!(error instanceof HaretError)) {
            this.unexpected.push(String(error));
            return;
          }
          if (error.executed === false) this.notExecuted += 1;
          else if (error.executed === 'maybe') this.ambiguous += 1;
          else this.unexpected.push(`${error.code}: ${error.message}`);
        }
      }
    })();
  }

  stop(): Promise<void> {
    this.#stop = true;
    return this.#loop ?? Promise.resolve();
  }
}

/**
 * What a watcher saw of one written path, against the writer's results and the final state:
 * versions exactly 0..final, each acknowledged put at its own op (and with its value when the
 * watch carries values), at most `ambiguous` versions nobody acknowledged.
 */
export function pathProblems(recorder: Recorder, writer: PathWriter, finalVersion: number, values: boolean): string[] {
  const problems: string[] = [];
  const seen = recorder.eventsOf(writer.path);
  const where = `${recorder.name} ${writer.path}`;
  const versions = seen.map(({ event }) => event.version);
  const expected = Array.from({ length: finalVersion + 1 }, (_, v) => v);
  if (versions.join(',') !== expected.join(',')) {
    const missing = expected.filter((v) => !versions.includes(v));
    const doubled = versions.filter((v, i) => versions.indexOf(v) !== i);
    problems.push(`${where}: ${versions.length} events for versions 0..${finalVersion}; missing [${missing.slice(0, 10).join(',')}] doubled [${doubled.slice(0, 10).join(',')}] first out of order at ${versions.findIndex((v, i) => v !== i)}`);
  }
  for (let i = 1; i < seen.length; i++) if ((seen[i] as { op: number }).op <= (seen[i - 1] as { op: number }).op) problems.push(`${where}: op ${(seen[i] as { op: number }).op} after ${(seen[i - 1] as { op: number }).op}`);
  const byVersion = new Map(seen.map((entry) => [entry.event.version, entry]));
  for (const put of writer.acked) {
    const entry = byVersion.get(put.version);
    if (entry === undefined) {
      problems.push(`${where}: acknowledged version ${put.version} (op ${put.op}) never seen`);
      continue;
    }
    if (entry.op !== put.op) problems.push(`${where}: version ${put.version} seen at op ${entry.op}, committed at op ${put.op}`);
    const kind = put.version === 0 ? 'created' : 'changed';
    if (entry.event.kind !== kind || entry.event.nodeType !== 'blob') problems.push(`${where}: version ${put.version} is ${entry.event.kind} ${entry.event.nodeType}`);
    if (values) {
      const value = entry.event.value;
      if (!(value instanceof Uint8Array) || decoder.decode(value) !== put.value) problems.push(`${where}: version ${put.version} carries ${value === undefined ? 'no value' : JSON.stringify(value === null ? null : decoder.decode(value))}, wrote ${JSON.stringify(put.value)}`);
    } else if (entry.event.value !== undefined) {
      problems.push(`${where}: a value on a watch without values`);
    }
  }
  const unacknowledged = seen.length - writer.acked.filter((put) => byVersion.has(put.version)).length;
  if (unacknowledged > writer.ambiguous) problems.push(`${where}: ${unacknowledged} versions seen that no put acknowledged, but only ${writer.ambiguous} puts may have run unanswered`);
  return problems;
}

/** A watch a test opened: its name, path and options, in the order of the recorders. */
export type WatchedSpec = { readonly name: string; readonly path: string; readonly recursive: boolean; readonly values: boolean };

/**
 * Every problem of a run: the writers' unexpected errors; each recorder's stream shape; for each
 * written path a recorder watches, `pathProblems` against its final version; and events of a
 * path a recorder does not watch. `recorders[i]` records `specs[i]`.
 */
export function runProblems(specs: readonly WatchedSpec[], recorders: readonly Recorder[], writers: readonly PathWriter[], finals: ReadonlyMap<string, { readonly version: number }>): string[] {
  const problems: string[] = [];
  for (const writer of writers) problems.push(...writer.unexpected.map((line) => `${writer.path} writer: ${line}`));
  for (const [i, spec] of specs.entries()) {
    const recorder = recorders[i] as Recorder;
    problems.push(...streamProblems(recorder));
    for (const writer of writers) {
      const watched = spec.recursive ? writer.path.startsWith(spec.path === '/' ? '/' : `${spec.path}/`) : writer.path === spec.path;
      const final = finals.get(writer.path) as { version: number };
      if (watched) problems.push(...pathProblems(recorder, writer, final.version, spec.values));
      else if (recorder.eventsOf(writer.path).length > 0) problems.push(`${recorder.name}: events of ${writer.path}, which it does not watch`);
    }
  }
  return problems;
}
