/**
 * src/vr/checkpoint_writer.ts: a checkpoint image written a slice at a time is byte for byte the
 * image written in one go, whatever the slices, and reads the checkpoint's machine as it was
 * even when later entries are applied while the write is paused.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/vr/checkpoint.ts';
import { CheckpointWriter } from '../../src/vr/checkpoint_writer.ts';
import type { Request } from '../../src/vr/messages.ts';
import { applyEntry, defaultSessionPolicy, emptyMachine, type Machine } from '../../src/vr/state_machine.ts';
import type { TreeOp } from '../../src/tree/ops.ts';

/** Applies `requests` as one entry. */
function apply(machine: Machine, requests: readonly Request[]): Machine {
  return applyEntry(machine, { op: machine.appliedOp + 1, view: 0, requests }, defaultSessionPolicy, []);
}

const register = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
const tree = (clientId: string, requestNum: number, op: TreeOp): Request => ({ type: 'request', clientId, requestNum, op: { type: 'tree', op } });

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 31) & 0xff;
  return out;
}

/** Writes `machine`'s image taking `units` steps per call; also counts the calls. */
function writeInSlices(machine: Machine, units: number): { image: ReturnType<typeof encodeCheckpoint>; calls: number } {
  const writer = new CheckpointWriter(machine);
  let calls = 0;
  for (;;) {
    calls += 1;
    const image = writer.advance(units);
    if (image !== null) return { image, calls };
    expect(writer.image).to.equal(null);
  }
}

type Shape = {
  readonly sessions: number;
  readonly directories: number;
  readonly blobsPerDirectory: number;
  readonly valueBytes: readonly number[];
  readonly queueElements: number;
  readonly setMembers: number;
  readonly leases: number;
  readonly activations: readonly number[];
};

/** A machine with sessions (some active again since, so the table's queue holds stale records), directories, blobs, a queue and a set. */
function machineOf(shape: Shape): Machine {
  let machine = emptyMachine();
  const ids = Array.from({ length: shape.sessions }, (_, i) => `client-${i}`);
  if (ids.length > 0) machine = apply(machine, ids.map(register));
  const writer = ids[0] ?? 'writer';
  if (ids.length === 0) machine = apply(machine, [register(writer)]);
  let requestNum = 0;
  const run = (op: TreeOp): void => {
    requestNum += 1;
    machine = apply(machine, [tree(writer, requestNum, op)]);
  };
  for (let d = 0; d < shape.directories; d++) {
    run({ type: 'create', path: `/d${d}`, nodeType: 'directory' });
    for (let b = 0; b < shape.blobsPerDirectory; b++) {
      run({ type: 'create', path: `/d${d}/b${b}`, nodeType: 'blob' });
      const length = shape.valueBytes[(d + b) % Math.max(1, shape.valueBytes.length)] ?? 0;
      run({ type: 'blob_put', path: `/d${d}/b${b}`, value: bytes(length, d * 7 + b) });
    }
  }
  run({ type: 'create', path: '/q', nodeType: 'queue' });
  for (let i = 0; i < shape.queueElements; i++) run({ type: 'queue_push', path: '/q', value: bytes(i % 5, i) });
  // Leases, one holding an ephemeral node: the image's lease table and the node in the tree.
  for (let i = 0; i < shape.leases; i++) run({ type: 'lease_grant', ttlMs: 10_000 + i });
  if (shape.leases > 0) run({ type: 'create', path: '/e', nodeType: 'blob', lease: 1 });
  run({ type: 'create', path: '/s', nodeType: 'set' });
  for (let i = 0; i < shape.setMembers; i++) run({ type: 'set_insert', path: '/s', value: bytes(1 + (i % 3), i * 13) });
  // Sessions active again, in the order given: each leaves a stale record behind in the queue.
  const again = new Map<string, number>();
  for (const index of shape.activations) {
    const id = ids[index % Math.max(1, ids.length)];
    if (id === undefined || id === writer) continue;
    const next = (again.get(id) ?? 0) + 1;
    again.set(id, next);
    machine = apply(machine, [tree(id, next, { type: 'blob_get', path: '/q' })]);
  }
  return machine;
}

const shapes = fc.record({
  sessions: fc.integer({ min: 0, max: 300 }),
  directories: fc.integer({ min: 0, max: 4 }),
  blobsPerDirectory: fc.integer({ min: 0, max: 20 }),
  valueBytes: fc.array(fc.constantFrom(0, 1, 255, 256, 4000), { maxLength: 4 }),
  queueElements: fc.integer({ min: 0, max: 80 }),
  setMembers: fc.integer({ min: 0, max: 40 }),
  leases: fc.integer({ min: 0, max: 3 }),
  activations: fc.array(fc.nat(400), { maxLength: 200 }),
});

describe('vr: checkpoint images written in slices', () => {
  it('gives the bytes of encodeCheckpoint whatever the steps per slice (property)', () => {
    fc.assert(
      fc.property(shapes, fc.constantFrom(1, 2, 7, 64, 1_000_000), (shape, units) => {
        const machine = machineOf(shape);
        const { image } = writeInSlices(machine, units);
        expect(image).to.deep.equal(encodeCheckpoint(machine));
        const decoded = decodeCheckpoint(image);
        expect(decoded.ok).to.equal(true);
        if (decoded.ok) expect(decoded.machine.leases.size).to.equal(machine.leases.size);
      }),
      { numRuns: 40 },
    );
  });

  it('takes one short step at a time: a step is at most 64 sessions, a node, 64 elements or 16 KiB', () => {
    const machine = machineOf({ sessions: 2000, directories: 3, blobsPerDirectory: 10, valueBytes: [100], queueElements: 300, setMembers: 0, leases: 0, activations: [] });
    const { image, calls } = writeInSlices(machine, 1);
    expect(image).to.deep.equal(encodeCheckpoint(machine));
    // 2,001 sessions in groups of 64 alone need 32 steps; the tree 1 + 3 x 11 + 1 + 300/64 more.
    expect(calls).to.be.greaterThan(32 + 35);
  });

  it('uses the long headers past 15, 65,535 and 255 elements or bytes (array16, array32, bin16, bin32)', function () {
    this.timeout(60_000);
    // 66,000 sessions: the client list's header is array32; a 70,000-byte blob makes the tree's
    // snapshot a bin32 inside the image, a 300-byte one a bin16; 20 queue elements an array16.
    const machine = machineOf({ sessions: 66_000, directories: 1, blobsPerDirectory: 2, valueBytes: [70_000, 300], queueElements: 20, setMembers: 17, leases: 2, activations: [1, 2, 3] });
    const { image, calls } = writeInSlices(machine, 50);
    expect(image).to.deep.equal(encodeCheckpoint(machine));
    expect(calls).to.be.greaterThan(66_000 / 64 / 50);
    expect(decodeCheckpoint(image).ok).to.equal(true);
  });

  it('sorts a large directory\'s names and a large set\'s members in steps, to the order of one sort', function () {
    this.timeout(60_000);
    // 3,000 children and 2,500 members: several sorted runs of 1,024 keys, merged twice over.
    let machine = machineOf({ sessions: 1, directories: 0, blobsPerDirectory: 0, valueBytes: [], queueElements: 0, setMembers: 0, leases: 0, activations: [] });
    let requestNum = 10_000;
    machine = apply(machine, [tree('client-0', requestNum++, { type: 'create', path: '/members', nodeType: 'set' })]);
    for (let i = 0; i < 2500; i++) {
      const member = new Uint8Array([(i * 40503) >>> 24, ((i * 40503) >>> 16) & 0xff, ((i * 40503) >>> 8) & 0xff, (i * 40503) & 0xff]);
      machine = apply(machine, [tree('client-0', requestNum++, { type: 'set_insert', path: '/members', value: member })]);
    }
    machine = apply(machine, [tree('client-0', requestNum++, { type: 'create', path: '/wide', nodeType: 'directory' })]);
    for (let i = 0; i < 3000; i++) {
      // Names in no particular order, some longer than others, a queue and a directory among the blobs.
      const name = `n${(i * 7919) % 10007}${i % 3 === 0 ? '-x' : ''}`;
      const nodeType = i === 5 ? 'queue' : i === 6 ? 'directory' : 'blob';
      machine = apply(machine, [tree('client-0', requestNum++, { type: 'create', path: `/wide/${name}`, nodeType })]);
    }
    const { image, calls } = writeInSlices(machine, 1);
    expect(image).to.deep.equal(encodeCheckpoint(machine));
    // Each child is a step; the sorts and the set's 2,500 elements add more.
    expect(calls).to.be.greaterThan(3000 + 2500 / 64);
  });

  it('reads the checkpoint\'s machine as it was while later entries change the live one', () => {
    const before = machineOf({ sessions: 500, directories: 2, blobsPerDirectory: 5, valueBytes: [10], queueElements: 30, setMembers: 5, leases: 1, activations: [3, 4, 5, 6] });
    const expected = encodeCheckpoint(before);
    const writer = new CheckpointWriter(before);
    expect(writer.advance(3)).to.equal(null);
    // The replica moves on: new sessions, writes, sessions active again.
    let after = before;
    for (let i = 0; i < 50; i++) after = apply(after, [register(`late-${i}`), tree('client-7', 100 + i, { type: 'queue_pop', path: '/q' })]);
    after = apply(after, [tree('client-0', 10_000, { type: 'blob_put', path: '/d0/b0', value: bytes(64, 1) })]);
    let image = null;
    while (image === null) image = writer.advance(5);
    expect(image).to.deep.equal(expected);
    expect(encodeCheckpoint(after)).to.not.deep.equal(expected);
    // Done is done: more advancing returns the same image and takes no step.
    const steps = writer.stepsTaken;
    expect(writer.advance(10)).to.equal(image);
    expect(writer.stepsTaken).to.equal(steps);
  });
});
