/**
 * The persistent queue behind queue nodes (src/tree/queue.ts) against an array model: pushes
 * and pops across chunk boundaries, old versions reused (they must not change), and
 * snapshots of long queues.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { applyOp, decodeSnapshot, emptyTree, encodeSnapshot, treesEqual, type Tree, type TreeOp } from '../../src/tree/index.ts';
import {
  emptyQueueState,
  queueFirst,
  queueLast,
  queueOf,
  queuePush,
  queueShift,
  queueToArray,
  type QueueState,
} from '../../src/tree/queue.ts';

type Version = { readonly queue: QueueState<number>; readonly model: readonly number[] };

function check(version: Version): void {
  expect(version.queue.size).to.equal(version.model.length);
  expect(queueToArray(version.queue)).to.deep.equal(version.model);
  expect(queueFirst(version.queue)).to.equal(version.model[0]);
  expect(queueLast(version.queue)).to.equal(version.model[version.model.length - 1]);
}

describe('tree queue (persistent FIFO)', () => {
  it('pushes and pops like an array, across many chunks, in any interleaving', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 400 }), (steps) => {
        let version: Version = { queue: emptyQueueState(), model: [] };
        let next = 0;
        for (const step of steps) {
          if (step < 6) {
            const value = next++;
            version = { queue: queuePush(version.queue, value), model: [...version.model, value] };
          } else {
            const rest = queueShift(version.queue);
            if (version.model.length === 0) expect(rest).to.equal(null);
            else version = { queue: rest as QueueState<number>, model: version.model.slice(1) };
          }
          check(version);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('old versions keep their contents when later versions are pushed to and popped', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 300 }),
        fc.integer({ min: 0, max: 120 }),
        (steps, prefill) => {
          const start = Array.from({ length: prefill }, (_, i) => 1000 + i);
          const versions: Version[] = [{ queue: queueOf(start), model: start }];
          let next = 0;
          for (const [pick, push] of steps) {
            // Any earlier version may be the base of the next one, as an aborted transaction's.
            const base = versions[pick % versions.length] as Version;
            if (push || base.model.length === 0) {
              const value = next++;
              versions.push({ queue: queuePush(base.queue, value), model: [...base.model, value] });
            } else {
              versions.push({ queue: queueShift(base.queue) as QueueState<number>, model: base.model.slice(1) });
            }
          }
          versions.forEach(check);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('queueOf builds a queue equal to pushing its elements one by one', () => {
    for (const length of [0, 1, 31, 32, 33, 64, 65, 200]) {
      const values = Array.from({ length }, (_, i) => i);
      let pushed = emptyQueueState<number>();
      for (const value of values) pushed = queuePush(pushed, value);
      expect(queueToArray(queueOf(values))).to.deep.equal(queueToArray(pushed));
      check({ queue: queueOf(values), model: values });
    }
  });

  it('a long queue node survives a snapshot round trip byte for byte, and pops in order after it', () => {
    let tree: Tree = applyOp(emptyTree(), { type: 'create', path: '/q', nodeType: 'queue' }).tree;
    for (let i = 0; i < 150; i++) tree = applyOp(tree, { type: 'queue_push', path: '/q', value: new Uint8Array([i]) }).tree;
    for (let i = 0; i < 40; i++) tree = applyOp(tree, { type: 'queue_pop', path: '/q' }).tree;
    const bytes = encodeSnapshot(tree);
    const decoded = decodeSnapshot(bytes);
    if (!decoded.ok) throw new Error(decoded.reason);
    expect(treesEqual(decoded.tree, tree)).to.equal(true);
    expect(encodeSnapshot(decoded.tree)).to.deep.equal(bytes);
    const pop: TreeOp = { type: 'queue_pop', path: '/q' };
    let a = tree;
    let b = decoded.tree;
    for (let i = 40; i < 150; i++) {
      const fromA = applyOp(a, pop);
      const fromB = applyOp(b, pop);
      expect(fromA.outcome).to.deep.equal({ type: 'element', value: new Uint8Array([i]), version: i + 151 });
      expect(fromB.outcome).to.deep.equal(fromA.outcome);
      a = fromA.tree;
      b = fromB.tree;
    }
    expect(applyOp(a, pop).outcome).to.deep.equal({ type: 'element', value: null, version: 150 + 150 });
  });
});
