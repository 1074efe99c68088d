/**
 * The building blocks under the replica: the truncatable log (src/vr/log.ts), checkpoint
 * images (src/vr/checkpoint.ts) and the seeded PRNG (src/vr/prng.ts). The client table has its
 * own file (test/unit/client_table.test.ts).
 */

import { expect } from 'chai';
import CRC32 from 'crc-32';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { InvariantViolation } from '../../src/base/assert.ts';
import { encodeSnapshot, treesEqual } from '../../src/tree/index.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/vr/checkpoint.ts';
import { clientTableFromOrdered, type ClientRecord, type ClientTable } from '../../src/vr/client_table.ts';
import { append, dropThrough, emptyLog, entriesAfter, entryAt, lastOp, truncateAfter, type Log } from '../../src/vr/log.ts';
import type { CheckpointImage, LogEntry, Request } from '../../src/vr/messages.ts';
import { makePrng, nextFloat, nextInt, type Prng } from '../../src/base/prng.ts';
import { applyEntry, defaultSessionPolicy, emptyMachine, type AppliedReply, type Machine } from '../../src/vr/state_machine.ts';

// ---- helpers -------------------------------------------------------------------------------

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function entry(op: number, view = 0, clientId = `c${op}`): LogEntry {
  return { op, view, requests: [{ type: 'request', clientId, requestNum: 0, op: { type: 'register' } }] };
}

/** A log holding ops start+1 .. start+count. */
function logOf(count: number, start = 0): Log {
  let log = emptyLog(start);
  for (let op = start + 1; op <= start + count; op++) log = append(log, entry(op));
  return log;
}

const ops = (entries: readonly LogEntry[]): number[] => entries.map((e) => e.op);

/** A table holding `ordered` (least recently active first), or a failed test. */
function tableOf(ordered: readonly (readonly [string, ClientRecord])[]): ClientTable {
  const built = clientTableFromOrdered(ordered);
  if (!built.ok) throw new Error(built.reason);
  return built.table;
}

const register = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
const treeRequest = (clientId: string, requestNum: number, op: TreeOp): Request => ({ type: 'request', clientId, requestNum, op: { type: 'tree', op } });

/** Applies one entry per request list, ops 1.. in order. */
function machineFrom(batches: readonly (readonly Request[])[]): Machine {
  let machine = emptyMachine();
  batches.forEach((requests, i) => {
    const replies: AppliedReply[] = [];
    machine = applyEntry(machine, { op: i + 1, view: 0, requests }, defaultSessionPolicy, replies);
  });
  return machine;
}

/**
 * A machine with a directory, a blob, a queue, a set and two sessions: alice's last request
 * popped an element (a write: its reply, bytes included, is kept), her read before it is not.
 */
function richMachine(): Machine {
  return machineFrom([
    [register('alice'), register('bob')],
    [treeRequest('alice', 1, { type: 'create', path: '/dir', nodeType: 'directory' })],
    [treeRequest('alice', 2, { type: 'create', path: '/dir/blob', nodeType: 'blob' }), treeRequest('bob', 1, { type: 'create', path: '/q', nodeType: 'queue' })],
    [treeRequest('alice', 3, { type: 'blob_put', path: '/dir/blob', value: utf8('hello') }), treeRequest('bob', 2, { type: 'queue_push', path: '/q', value: Uint8Array.of(0, 255, 7) })],
    [treeRequest('bob', 3, { type: 'create', path: '/s', nodeType: 'set' }), treeRequest('alice', 4, { type: 'blob_get', path: '/dir/blob' })],
    [treeRequest('bob', 4, { type: 'set_insert', path: '/s', value: utf8('m') }), treeRequest('alice', 5, { type: 'queue_pop', path: '/q' })],
  ]);
}

/** The table's sessions in its order (least recently active first). */
function clientsAsArray(table: ClientTable): [string, ClientRecord][] {
  return Array.from(table.entries());
}

function withSnapshot(image: CheckpointImage, snapshot: Uint8Array): CheckpointImage {
  return { op: image.op, snapshot };
}

/** A checkpoint image whose checksum is right but whose body is `body` packed as msgpack. */
function imageWithBody(op: number, body: unknown): CheckpointImage {
  const packed = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false }).pack(body);
  const snapshot = new Uint8Array(4 + packed.length);
  new DataView(snapshot.buffer).setUint32(0, CRC32.buf(packed) >>> 0);
  snapshot.set(packed, 4);
  return { op, snapshot };
}

// ---- log -----------------------------------------------------------------------------------

describe('vr log (src/vr/log.ts)', () => {
  it('an empty log holds nothing: lastOp is its start and entryAt is undefined everywhere', () => {
    const log = emptyLog();
    expect(lastOp(log)).to.equal(0);
    expect(entryAt(log, 0)).to.equal(undefined);
    expect(entryAt(log, 1)).to.equal(undefined);
    const later = emptyLog(7);
    expect(lastOp(later)).to.equal(7);
    expect(entryAt(later, 7)).to.equal(undefined);
    expect(entryAt(later, 8)).to.equal(undefined);
  });

  it('append accepts exactly op = lastOp + 1 and keeps entries in op order', () => {
    const log = logOf(3);
    expect(lastOp(log)).to.equal(3);
    expect(ops(log.entries.toArray())).to.deep.equal([1, 2, 3]);
    expect(entryAt(log, 2)).to.deep.equal(entry(2));
  });

  it('append asserts on a gap, a repeat or a step back (an InvariantViolation, our bug)', () => {
    const log = logOf(2);
    expect(() => append(log, entry(4))).to.throw(InvariantViolation, /out of order/);
    expect(() => append(log, entry(2))).to.throw(InvariantViolation, /out of order/);
    expect(() => append(log, entry(1))).to.throw(InvariantViolation, /out of order/);
    expect(() => append(emptyLog(5), entry(5))).to.throw(InvariantViolation);
    expect(lastOp(append(emptyLog(5), entry(6)))).to.equal(6);
  });

  it('append is persistent: the original log is unchanged', () => {
    const log = logOf(2);
    const longer = append(log, entry(3));
    expect(lastOp(log)).to.equal(2);
    expect(lastOp(longer)).to.equal(3);
    expect(entryAt(log, 3)).to.equal(undefined);
  });

  it('entryAt returns the entry at an op, undefined at or below start and beyond the end', () => {
    const log = logOf(3, 10);
    expect(entryAt(log, 10)).to.equal(undefined);
    expect(entryAt(log, 9)).to.equal(undefined);
    expect(entryAt(log, 11)?.op).to.equal(11);
    expect(entryAt(log, 13)?.op).to.equal(13);
    expect(entryAt(log, 14)).to.equal(undefined);
    expect(entryAt(log, -1)).to.equal(undefined);
  });

  it('truncateAfter keeps entries up to and including op', () => {
    const log = logOf(5);
    const cut = truncateAfter(log, 3);
    expect(lastOp(cut)).to.equal(3);
    expect(ops(cut.entries.toArray())).to.deep.equal([1, 2, 3]);
    expect(entryAt(cut, 4)).to.equal(undefined);
    expect(lastOp(log), 'persistent').to.equal(5);
    // and the log can grow again from there, with a different entry 4
    const regrown = append(cut, entry(4, 1, 'other'));
    expect(entryAt(regrown, 4)?.requests[0]?.clientId).to.equal('other');
  });

  it('truncateAfter at or beyond the end returns the same log; to its start empties it', () => {
    const log = logOf(3, 2);
    expect(truncateAfter(log, 5)).to.equal(log);
    expect(truncateAfter(log, 99)).to.equal(log);
    const empty = truncateAfter(log, 2);
    expect(lastOp(empty)).to.equal(2);
    expect(empty.entries.size).to.equal(0);
    expect(empty.start).to.equal(2);
  });

  it('truncateAfter below the log start asserts (committed entries already dropped)', () => {
    const log = logOf(3, 2);
    expect(() => truncateAfter(log, 1)).to.throw(InvariantViolation, /below its start/);
  });

  it('dropThrough drops a prefix: start moves, lastOp stays, dropped ops read as undefined', () => {
    const log = logOf(6);
    const dropped = dropThrough(log, 4);
    expect(dropped.start).to.equal(4);
    expect(lastOp(dropped)).to.equal(6);
    expect(ops(dropped.entries.toArray())).to.deep.equal([5, 6]);
    expect(entryAt(dropped, 4)).to.equal(undefined);
    expect(entryAt(dropped, 5)?.op).to.equal(5);
    expect(lastOp(log), 'persistent').to.equal(6);
    // appending continues after the last op
    expect(lastOp(append(dropped, entry(7)))).to.equal(7);
  });

  it('dropThrough at or below start returns the same log; through the end empties it', () => {
    const log = logOf(3, 2);
    expect(dropThrough(log, 2)).to.equal(log);
    expect(dropThrough(log, 0)).to.equal(log);
    const all = dropThrough(log, 5);
    expect(all.start).to.equal(5);
    expect(lastOp(all)).to.equal(5);
    expect(all.entries.size).to.equal(0);
  });

  it('dropThrough past the end asserts', () => {
    expect(() => dropThrough(logOf(3), 4)).to.throw(InvariantViolation, /past the log's end/);
  });

  it('entriesAfter returns the entries after op, at most max of them', () => {
    const log = logOf(5);
    expect(ops(entriesAfter(log, 0, 100))).to.deep.equal([1, 2, 3, 4, 5]);
    expect(ops(entriesAfter(log, 2, 100))).to.deep.equal([3, 4, 5]);
    expect(ops(entriesAfter(log, 2, 2))).to.deep.equal([3, 4]);
    expect(ops(entriesAfter(log, 1, 1))).to.deep.equal([2]);
    expect(entriesAfter(log, 1, 0)).to.deep.equal([]);
    expect(entriesAfter(log, 5, 10), 'at the end').to.deep.equal([]);
    expect(entriesAfter(log, 9, 10), 'beyond the end').to.deep.equal([]);
  });

  it('entriesAfter works on a truncated log from its start, and asserts below it', () => {
    const log = dropThrough(logOf(6), 3);
    expect(ops(entriesAfter(log, 3, 10))).to.deep.equal([4, 5, 6]);
    expect(ops(entriesAfter(log, 4, 1))).to.deep.equal([5]);
    expect(() => entriesAfter(log, 2, 10)).to.throw(InvariantViolation, /below the log's start/);
  });
});

// ---- checkpoints ---------------------------------------------------------------------------

describe('checkpoint images (src/vr/checkpoint.ts)', () => {
  it('round-trips a machine with a non-empty tree and client table', () => {
    const machine = richMachine();
    expect(machine.clients.size).to.equal(2);
    expect(machine.appliedOp).to.equal(6);
    const image = encodeCheckpoint(machine);
    expect(image.op).to.equal(6);
    expect(image.snapshot).to.be.instanceOf(Uint8Array);
    const decoded = decodeCheckpoint(image);
    if (!decoded.ok) throw new Error(`decode failed: ${decoded.reason}`);
    expect(decoded.machine.appliedOp).to.equal(6);
    expect(treesEqual(decoded.machine.tree, machine.tree)).to.equal(true);
    expect(encodeSnapshot(decoded.machine.tree)).to.deep.equal(encodeSnapshot(machine.tree));
    expect(clientsAsArray(decoded.machine.clients)).to.deep.equal(clientsAsArray(machine.clients));
    expect(decoded.machine.clients.ids(), 'the LRU order survives').to.deep.equal(machine.clients.ids());
    // the cached reply of alice's queue_pop carries the bytes back as a plain Uint8Array
    const alice = decoded.machine.clients.get('alice');
    expect(alice?.requestNum).to.equal(5);
    const body = alice?.reply;
    if (body?.type !== 'tree' || body.outcome.type !== 'element' || body.outcome.value === null) throw new Error(`unexpected cached reply ${JSON.stringify(body)}`);
    expect(body.outcome.value.constructor).to.equal(Uint8Array);
    expect(Array.from(body.outcome.value)).to.deep.equal([0, 255, 7]);
    // and re-encoding the decoded machine gives the same bytes
    expect(encodeCheckpoint(decoded.machine).snapshot).to.deep.equal(image.snapshot);
  });

  it('round-trips the empty machine', () => {
    const image = encodeCheckpoint(emptyMachine());
    expect(image.op).to.equal(0);
    const decoded = decodeCheckpoint(image);
    expect(decoded.ok).to.equal(true);
    if (decoded.ok) expect(decoded.machine.clients.size).to.equal(0);
  });

  it('equal machines give equal bytes; the client table goes in its LRU order, which is part of the state', () => {
    const a = richMachine();
    const b = richMachine();
    expect(encodeCheckpoint(a).snapshot).to.deep.equal(encodeCheckpoint(b).snapshot);
    // alice was active last (op 6, after bob in the same entry): bob is the older one
    expect(a.clients.ids()).to.deep.equal(['bob', 'alice']);
    // the same records in another order are another table (another eviction order): other bytes
    const swapped = clientTableFromOrdered(clientsAsArray(a.clients).reverse());
    // both were active at op 6, so the reversed order is still by last activity
    if (!swapped.ok) throw new Error(swapped.reason);
    const c: Machine = { ...a, clients: swapped.table };
    expect(encodeCheckpoint(c).snapshot).to.not.deep.equal(encodeCheckpoint(a).snapshot);
  });

  it('different machines give different bytes', () => {
    const a = richMachine();
    const b: Machine = { ...a, clients: tableOf(clientsAsArray(a.clients).filter(([id]) => id !== 'bob')) };
    expect(encodeCheckpoint(b).snapshot).to.not.deep.equal(encodeCheckpoint(a).snapshot);
  });

  it('a corrupted byte anywhere gives ok:false, never a throw', () => {
    const image = encodeCheckpoint(richMachine());
    for (let i = 0; i < image.snapshot.length; i++) {
      const bytes = new Uint8Array(image.snapshot);
      bytes[i] = (bytes[i] as number) ^ 0x5a;
      const result = decodeCheckpoint(withSnapshot(image, bytes));
      expect(result.ok, `byte ${i} flipped`).to.equal(false);
    }
  });

  it('a truncated image gives ok:false, never a throw', () => {
    const image = encodeCheckpoint(richMachine());
    for (const length of [0, 1, 3, 4, 5, Math.floor(image.snapshot.length / 2), image.snapshot.length - 1]) {
      const result = decodeCheckpoint(withSnapshot(image, image.snapshot.slice(0, length)));
      expect(result.ok, `truncated to ${length}`).to.equal(false);
    }
  });

  it('an image whose op does not match its body gives ok:false', () => {
    const image = encodeCheckpoint(richMachine());
    const result = decodeCheckpoint({ op: image.op + 1, snapshot: image.snapshot });
    expect(result).to.deep.include({ ok: false });
  });

  it('a correctly checksummed but malformed body gives ok:false', () => {
    const treeBytes = encodeSnapshot(richMachine().tree);
    const cases: [string, unknown][] = [
      ['not an array', { a: 1 }],
      ['wrong arity', [3, treeBytes]],
      ['tree not bytes', [3, 'tree', []]],
      ['clients not an array', [3, treeBytes, {}]],
      ['tree bytes garbage', [3, Uint8Array.of(1, 2, 3), []]],
      ['client pair malformed', [3, treeBytes, [['alice']]]],
      ['client record malformed', [3, treeBytes, [['alice', { requestNum: 'x', reply: null, replyOp: 1, lastActiveOp: 1 }]]]],
      ['client id not a string', [3, treeBytes, [[7, { requestNum: 1, reply: null, replyOp: 1, lastActiveOp: 1 }]]]],
    ];
    for (const [label, body] of cases) {
      let result: ReturnType<typeof decodeCheckpoint> | undefined;
      expect(() => (result = decodeCheckpoint(imageWithBody(3, body))), label).to.not.throw();
      expect(result?.ok, label).to.equal(false);
    }
  });

  it('a client table that is not a replicated LRU is refused with a reason, never a throw', () => {
    const treeBytes = encodeSnapshot(emptyMachine().tree);
    const rec = (lastActiveOp: number, requestNum = 1, reply: unknown = null): Record<string, unknown> => ({ requestNum, reply, replyOp: lastActiveOp, lastActiveOp });
    const write = { type: 'tree', outcome: { type: 'ok', version: 1 } };
    const cases: [string, unknown[], RegExp][] = [
      ['a duplicate client id', [['a', rec(2)], ['b', rec(3)], ['a', rec(4)]], /twice/],
      ['order broken (lastActiveOp decreasing)', [['a', rec(2)], ['b', rec(5)], ['c', rec(3)]], /out of order at position 2/],
      ['lastActiveOp beyond the checkpoint op', [['a', rec(2)], ['b', rec(9)]], /beyond the checkpoint op/],
      ['replyOp beyond lastActiveOp', [['a', { requestNum: 1, reply: null, replyOp: 4, lastActiveOp: 3 }]], /replyOp beyond lastActiveOp/],
      ['a negative request number', [['a', rec(2, -1)]], /requestNum/],
      ['a fractional op', [['a', rec(2.5)]], /must be a non-negative integer/],
      ['a registration with a reply', [['a', rec(2, 0, write)]], /registration with a reply/],
      ['a reply that is not a tree reply', [['a', rec(2, 1, { type: 'registered', isNew: true, lastRequestNum: 0 })]], /tree reply/],
      ['a pair with a third element', [['a', rec(2), 'x']], /malformed at position 0/],
    ];
    for (const [label, clients, reason] of cases) {
      let result: ReturnType<typeof decodeCheckpoint> | undefined;
      expect(() => (result = decodeCheckpoint(imageWithBody(5, [5, treeBytes, clients]))), label).to.not.throw();
      expect(result?.ok, label).to.equal(false);
      if (result !== undefined && !result.ok) expect(result.reason, label).to.match(reason);
    }
    // the same records in an order by last activity, ties in any order, decode in that order
    const fine = decodeCheckpoint(imageWithBody(5, [5, treeBytes, [['c', rec(2)], ['a', rec(3, 2, write)], ['b', rec(3)]]]));
    if (!fine.ok) throw new Error(fine.reason);
    expect(fine.machine.clients.ids()).to.deep.equal(['c', 'a', 'b']);
    expect(fine.machine.clients.get('a')?.reply).to.deep.equal(write);
  });

  it('a well-formed body with the right checksum decodes (the helper above builds valid images)', () => {
    const machine = richMachine();
    const clients = clientsAsArray(machine.clients);
    const result = decodeCheckpoint(imageWithBody(machine.appliedOp, [machine.appliedOp, encodeSnapshot(machine.tree), clients]));
    expect(result.ok).to.equal(true);
  });

  it('property: decodeCheckpoint never throws on arbitrary bytes, nor on arbitrary checksummed msgpack', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(10), (bytes, op) => {
        const result = decodeCheckpoint({ op, snapshot: bytes });
        return result.ok === false;
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withNullPrototype: true }), fc.nat(10), (body, op) => {
        decodeCheckpoint(imageWithBody(op, body));
        return true;
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.nat(10), fc.array(fc.tuple(fc.anything(), fc.anything()), { maxLength: 4 }), (op, clients) => {
        decodeCheckpoint(imageWithBody(op, [op, encodeSnapshot(emptyMachine().tree), clients]));
        return true;
      }),
      { numRuns: 300 },
    );
  });
});

// ---- prng ----------------------------------------------------------------------------------

describe('seeded PRNG (src/vr/prng.ts)', () => {
  function floats(prng: Prng, count: number): number[] {
    const out: number[] = [];
    let p = prng;
    for (let i = 0; i < count; i++) {
      const next = nextFloat(p);
      out.push(next.value);
      p = next.prng;
    }
    return out;
  }

  it('the same seed gives the same sequence', () => {
    expect(floats(makePrng(42), 50)).to.deep.equal(floats(makePrng(42), 50));
  });

  it('different seeds give different sequences', () => {
    expect(floats(makePrng(1), 10)).to.not.deep.equal(floats(makePrng(2), 10));
  });

  it('is pure: stepping does not change the generator it was given', () => {
    const prng = makePrng(7);
    const first = nextFloat(prng);
    const again = nextFloat(prng);
    expect(again.value).to.equal(first.value);
    expect(prng.seed).to.equal(7);
    expect(first.prng.seed).to.not.equal(prng.seed);
  });

  it('seeds are reduced to uint32 (a negative or oversized seed still replays exactly)', () => {
    expect(makePrng(-1).seed).to.equal(0xffffffff);
    expect(makePrng(2 ** 32 + 5).seed).to.equal(5);
    expect(floats(makePrng(-1), 5)).to.deep.equal(floats(makePrng(0xffffffff), 5));
  });

  it('nextFloat stays in [0, 1)', () => {
    const values = floats(makePrng(123), 5000);
    for (const value of values) {
      expect(value).to.be.at.least(0);
      expect(value).to.be.below(1);
    }
    // not degenerate
    expect(new Set(values).size).to.be.above(4900);
  });

  it('nextInt gives integers in [0, bound) and covers the range', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, bound) => {
        const { value } = nextInt(makePrng(seed), bound);
        return Number.isInteger(value) && value >= 0 && value < bound;
      }),
    );
    let p = makePrng(9);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const next = nextInt(p, 5);
      seen.add(next.value);
      p = next.prng;
    }
    expect(Array.from(seen).sort()).to.deep.equal([0, 1, 2, 3, 4]);
    expect(nextInt(makePrng(5), 1).value).to.equal(0);
  });

  it('nextInt advances the generator exactly like nextFloat', () => {
    const prng = makePrng(77);
    expect(nextInt(prng, 10).prng).to.deep.equal(nextFloat(prng).prng);
  });
});
