/**
 * A checkpoint image (src/vr/checkpoint.ts) written a slice at a time on the replica's own
 * thread, so that a large machine never stops the replica for the whole encoding.
 *
 * Why: with the image built in one go (the walk of the tree and the client table on the
 * replica's thread, then the structured clone of that walk to a pool thread for packing), a
 * replica with 100,000 sessions stopped for 100-200 ms per image (measured: walk 46-78 ms,
 * clone 46-126 ms), and in a worker of several replicas (`single`, a durable node's default)
 * so did every other replica. Here each `advance(units)` does at most `units` steps (a tree
 * node, 64 queue or set elements, 1,024 keys of a sort, 64 sessions' records, 16 KiB of
 * checksum or copy) and returns; the caller decides how many steps fit its thread's budget.
 *
 * The machine is persistent (the tree, the client table and the lease table are never changed
 * in place), so the walk reads the checkpoint's machine as it was however many turns it takes.
 * The bytes are exactly `encodeCheckpoint(machine)`'s (test/unit/checkpoint_writer.test.ts):
 * the same msgpack pieces joined with the same headers, checksums run over the same bytes.
 *
 * Pure: no clock, no I/O. A step's cost is bounded (a large directory's names and a large
 * set's members are listed and sorted 1,024 keys a step) except for the last step's copy of
 * the image into a buffer of its size (7.5 MB at 100,000 sessions: a few ms).
 */

import CRC32 from 'crc-32';
import { ByteSink } from '../base/byte_sink.ts';
import { snapshotHeaderBytes, writeSnapshotBody, writeSnapshotHeader } from '../tree/snapshot.ts';
import { leaseTerms } from '../tree/leases.ts';
import { checkpointPackr } from './checkpoint.ts';
import type { CheckpointImage } from './messages.ts';
import type { Machine } from './state_machine.ts';

const packr = checkpointPackr;

/** Client records packed per step (one msgpackr call). */
const recordsPerStep = 64;

/** Bytes checksummed or copied per step. */
const bytesPerStep = 16 * 1024;

/** Bytes of the image's own checksum, before its body. */
const imageCrcBytes = 4;

export class CheckpointWriter {
  readonly machine: Machine;
  readonly #steps: Generator<void, CheckpointImage, void>;
  #image: CheckpointImage | null = null;
  #stepsTaken = 0;

  constructor(machine: Machine) {
    this.machine = machine;
    this.#steps = writeImage(machine);
  }

  /** Steps taken so far (for status and tests). */
  get stepsTaken(): number {
    return this.#stepsTaken;
  }

  /** The finished image, or null while steps remain. */
  get image(): CheckpointImage | null {
    return this.#image;
  }

  /** Takes at most `units` steps (at least one); the image once the last step is taken, else null. */
  advance(units: number): CheckpointImage | null {
    if (this.#image !== null) return this.#image;
    const limit = Math.max(1, Math.floor(units));
    for (let i = 0; i < limit; i++) {
      const next = this.#steps.next();
      this.#stepsTaken += 1;
      if (next.done === true) {
        this.#image = next.value;
        return next.value;
      }
    }
    return null;
  }
}

/** Writes all of `machine`'s image, yielding between steps; returns it. */
function* writeImage(machine: Machine): Generator<void, CheckpointImage, void> {
  // The tree's snapshot first, on its own: its header carries its body's checksum.
  const tree = new ByteSink();
  yield* writeSnapshotBody(machine.tree, tree);
  const treeCrc = yield* checksum(tree, 0);

  // The image: [crc][msgpack [appliedOp, bin(tree snapshot), [[id, record]...], leases]].
  const out = new ByteSink(imageCrcBytes + snapshotHeaderBytes + tree.length + 64 * 1024 + 80 * machine.clients.size);
  out.writeUint32(0);
  out.writeArrayHeader(4);
  out.write(packr.pack(machine.appliedOp));
  out.writeBinHeader(snapshotHeaderBytes + tree.length);
  writeSnapshotHeader(out, treeCrc);
  for (let at = 0; at < tree.length; at += bytesPerStep) {
    out.write(tree.view(at, Math.min(tree.length, at + bytesPerStep)));
    yield;
  }
  out.writeArrayHeader(machine.clients.size);
  let group: (readonly [string, unknown])[] = [];
  for (const pair of machine.clients.recordsInOrder()) {
    group.push(pair);
    if (group.length < recordsPerStep) continue;
    writeElementsOf(out, group);
    group = [];
    yield;
  }
  writeElementsOf(out, group);
  out.write(packr.pack(leaseTerms(machine.leases)));
  yield;
  const imageCrc = yield* checksum(out, imageCrcBytes);
  out.setUint32(0, imageCrc >>> 0);
  return { op: machine.appliedOp, snapshot: out.toBytes() };
}

/**
 * Writes the elements of `values` as they sit inside a msgpack array: packed as one array (one
 * msgpackr call, not one per record; each call has a fixed cost) without its header, which
 * `writeArrayHeader` wrote once for the whole list.
 */
function writeElementsOf(out: ByteSink, values: readonly unknown[]): void {
  if (values.length === 0) return;
  const packed = packr.pack(values);
  out.write(packed.subarray(ByteSink.arrayHeaderBytes(values.length)));
}

/** CRC-32 of `sink`'s bytes from `start` on, `bytesPerStep` a step. */
function* checksum(sink: ByteSink, start: number): Generator<void, number, void> {
  let crc = 0;
  for (let at = start; at < sink.length; at += bytesPerStep) {
    crc = CRC32.buf(sink.view(at, Math.min(sink.length, at + bytesPerStep)), crc);
    yield;
  }
  return crc >>> 0;
}
