/**
 * The client table (src/vr/client_table.ts) as the state machine drives it
 * (src/vr/state_machine.ts `applyEntry`, `expireAtCheckpoint`): a persistent LRU whose order
 * is "least recently active first, ties in the order the log applied them" (README
 * deviation 8). Checked by hand on small cases, against an array-based reference model on
 * random histories, and at the production size that wedged replicas when every registration
 * sorted the whole table.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { isWriteOp, type TreeOp } from '../../src/tree/ops.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/vr/checkpoint.ts';
import { clientTableFromOrdered, clientTableStaleSlack, type ClientRecord, type ClientTable } from '../../src/vr/client_table.ts';
import type { LogEntry, ReplyBody, Request } from '../../src/vr/messages.ts';
import { applyEntry, defaultSessionPolicy, emptyMachine, expireAtCheckpoint, type AppliedReply, type Machine, type SessionPolicy } from '../../src/vr/state_machine.ts';

// ---- helpers -------------------------------------------------------------------------------

const register = (clientId: string): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
const treeRequest = (clientId: string, requestNum: number, op: TreeOp): Request => ({ type: 'request', clientId, requestNum, op: { type: 'tree', op } });
const write = (clientId: string, requestNum: number): Request => treeRequest(clientId, requestNum, { type: 'create', path: `/${clientId}-${requestNum}`, nodeType: 'blob' });
const read = (clientId: string, requestNum: number): Request => treeRequest(clientId, requestNum, { type: 'stat', path: '/' });

function policy(clientTableMax: number, sessionIdleOps = 1_000_000): SessionPolicy {
  return { ...defaultSessionPolicy, clientTableMax, sessionIdleOps };
}

/** Applies entries op 1.. onwards, one per request list; returns the machine and every reply. */
function run(batches: readonly (readonly Request[])[], sessions: SessionPolicy, from: Machine = emptyMachine()): { machine: Machine; replies: AppliedReply[] } {
  let machine = from;
  const replies: AppliedReply[] = [];
  for (const requests of batches) machine = applyEntry(machine, { op: machine.appliedOp + 1, view: 0, requests }, sessions, replies);
  return { machine, replies };
}

const ids = (table: ClientTable): string[] => table.ids();

// ---- by hand -------------------------------------------------------------------------------

describe('client table: LRU order (src/vr/client_table.ts)', () => {
  it('orders sessions least recently active first after mixed activity; ties in the order the log applied them', () => {
    const { machine } = run(
      [
        [register('zed'), register('amy'), register('mia')], // op 1: ties, log order (not id order)
        [register('bob')], // op 2
        [write('amy', 1)], // op 3: amy moves to the tail
        [register('zed')], // op 4: re-registering activates too
        [read('mia', 1), write('bob', 1)], // op 5: bob's write, then mia's read (an entry's reads apply after its writes)
      ],
      policy(100),
    );
    expect(ids(machine.clients)).to.deep.equal(['amy', 'zed', 'bob', 'mia']);
    expect(machine.clients.head).to.equal('amy');
    expect(machine.clients.tail).to.equal('mia');
    expect(machine.clients.get('amy')).to.deep.include({ requestNum: 1, lastActiveOp: 3 });
  });

  it('what does not execute does not activate: a cached write retry, a stale request, an unknown session', () => {
    const before = run([[register('a'), register('b')], [write('a', 1)], [write('a', 2)], [write('b', 1)]], policy(100)).machine;
    expect(ids(before.clients)).to.deep.equal(['a', 'b']);
    const { machine, replies } = run([[write('a', 2)], [write('a', 1)], [write('ghost', 1)]], policy(100), before);
    expect(replies.map((r) => r.body.type)).to.deep.equal(['tree', 'stale_request', 'session_expired']);
    expect(ids(machine.clients)).to.deep.equal(['a', 'b']);
    expect(machine.clients.get('a')).to.deep.equal(before.clients.get('a'));
  });

  it('at capacity a registration evicts exactly the least recently active session (ties: the first applied)', () => {
    // ids registered in descending order in ONE entry: by id, 'a' would go first; by the log, 'e'
    const filled = run([[register('e'), register('d'), register('c'), register('b'), register('a')]], policy(5)).machine;
    expect(ids(filled.clients)).to.deep.equal(['e', 'd', 'c', 'b', 'a']);
    const touched = run([[write('d', 1)]], policy(5), filled).machine;
    const { machine, replies } = run([[register('new1'), register('new2')]], policy(5), touched);
    expect(ids(machine.clients)).to.deep.equal(['b', 'a', 'd', 'new1', 'new2']);
    expect(replies.map((r) => r.body)).to.deep.equal([
      { type: 'registered', isNew: true, lastRequestNum: 0 },
      { type: 'registered', isNew: true, lastRequestNum: 0 },
    ]);
    // an evicted session's request is answered session_expired and runs nothing
    const after = run([[write('e', 1), write('c', 1), write('a', 1)]], policy(5), machine);
    expect(after.replies.map((r) => [r.clientId, r.body.type])).to.deep.equal([
      ['e', 'session_expired'],
      ['c', 'session_expired'],
      ['a', 'tree'],
    ]);
  });

  it('idle sessions expire at checkpoints, from the least recently active end, and only those', () => {
    const sessions = policy(100, 5);
    const { machine } = run([[register('old')], [register('a')], [register('b')], [], [], [], [write('a', 1)], [register('c')]].map((r) => (r.length === 0 ? [register('filler')] : r)), sessions);
    // op 8: old (op 1) idle 7 > 5, b (op 3) idle 5: kept; filler active at op 6
    const expired = expireAtCheckpoint(machine, sessions);
    expect(ids(expired.clients)).to.deep.equal(['b', 'filler', 'a', 'c']);
    expect(expired.appliedOp).to.equal(machine.appliedOp);
    // nothing to expire: the very same machine
    expect(expireAtCheckpoint(expired, sessions)).to.equal(expired);
    // the input machine is unchanged (persistent)
    expect(ids(machine.clients)).to.deep.equal(['old', 'b', 'filler', 'a', 'c']);
  });

  it('a checkpoint also trims the table to clientTableMax (a smaller configured bound), least recently active first', () => {
    const { machine } = run([[register('a'), register('b'), register('c'), register('d')]], policy(10));
    expect(ids(expireAtCheckpoint(machine, policy(2)).clients)).to.deep.equal(['c', 'd']);
  });

  it('the table is frozen and every change returns a new one', () => {
    const one = run([[register('a')]], policy(10)).machine;
    const two = run([[register('b')]], policy(10), one).machine;
    expect(Object.isFrozen(one.clients)).to.equal(true);
    expect(ids(one.clients)).to.deep.equal(['a']);
    expect(ids(two.clients)).to.deep.equal(['a', 'b']);
  });

  it('clientTableFromOrdered refuses a duplicate id or an order that is not by last activity', () => {
    const rec = (lastActiveOp: number): ClientRecord => ({ requestNum: 0, reply: null, replyOp: lastActiveOp, lastActiveOp });
    expect(clientTableFromOrdered([['a', rec(1)], ['a', rec(2)]])).to.deep.include({ ok: false });
    const broken = clientTableFromOrdered([['a', rec(2)], ['b', rec(1)]]);
    expect(broken.ok).to.equal(false);
    if (!broken.ok) expect(broken.reason).to.match(/out of order at position 1/);
    const fine = clientTableFromOrdered([['b', rec(1)], ['a', rec(1)], ['c', rec(4)]]);
    if (!fine.ok) throw new Error(fine.reason);
    expect(fine.table.ids()).to.deep.equal(['b', 'a', 'c']);
  });
});

// ---- against a reference model ----------------------------------------------------------------

/** The obvious LRU: an array, least recently active first; O(n) everything. */
class ModelTable {
  sessions: { id: string; record: ClientRecord }[] = [];

  get(id: string): ClientRecord | undefined {
    return this.sessions.find((s) => s.id === id)?.record;
  }

  activate(id: string, record: ClientRecord): void {
    this.sessions = this.sessions.filter((s) => s.id !== id);
    this.sessions.push({ id, record });
  }

  evictBeyond(max: number): void {
    while (this.sessions.length > max) this.sessions.shift();
  }

  expireIdle(atOp: number, idleOps: number): void {
    // not assuming the order: every idle session goes
    this.sessions = this.sessions.filter((s) => atOp - s.record.lastActiveOp <= idleOps);
  }

  /** The reply the model expects for `request` at `op` (`executed`: the body the tree produced, if it ran). */
  apply(request: Request, op: number, max: number, executed: ReplyBody | undefined): ReplyBody | null | 'executes' {
    const record = this.get(request.clientId);
    if (request.op.type === 'register') {
      this.activate(request.clientId, record === undefined ? { requestNum: 0, reply: null, replyOp: op, lastActiveOp: op } : { ...record, lastActiveOp: op });
      this.evictBeyond(max);
      return { type: 'registered', isNew: record === undefined, lastRequestNum: record?.requestNum ?? 0 };
    }
    if (record === undefined) return { type: 'session_expired' };
    if (request.requestNum < record.requestNum) return { type: 'stale_request', lastRequestNum: record.requestNum };
    if (request.op.type !== 'tree') return null;
    const readOnly = !isWriteOp(request.op.op);
    if (request.requestNum === record.requestNum) {
      if (record.reply !== null) return record.reply;
      if (!readOnly) return null;
      this.activate(request.clientId, { ...record, lastActiveOp: op });
      return 'executes';
    }
    if (executed === undefined) throw new Error('the machine did not answer a request the model runs');
    this.activate(request.clientId, { requestNum: request.requestNum, reply: readOnly ? null : executed, replyOp: op, lastActiveOp: op });
    return 'executes';
  }
}

type Command =
  | { readonly kind: 'register'; readonly client: number }
  | { readonly kind: 'next'; readonly client: number; readonly readOnly: boolean }
  | { readonly kind: 'retry'; readonly client: number; readonly readOnly: boolean }
  | { readonly kind: 'stale'; readonly client: number }
  | { readonly kind: 'checkpoint' };

const clientCount = 7;
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('register' as const), client: fc.nat(clientCount - 1) }),
  fc.record({ kind: fc.constant('next' as const), client: fc.nat(clientCount - 1), readOnly: fc.boolean() }),
  fc.record({ kind: fc.constant('retry' as const), client: fc.nat(clientCount - 1), readOnly: fc.boolean() }),
  fc.record({ kind: fc.constant('stale' as const), client: fc.nat(clientCount - 1) }),
  fc.constant({ kind: 'checkpoint' as const }),
);

/** A tree op of each kind: a read-only multi_cas counts as a read, one with a write as a write. */
function opFor(readOnly: boolean, salt: number): TreeOp {
  switch (salt % 3) {
    case 0:
      return readOnly ? { type: 'stat', path: '/' } : { type: 'create', path: `/n${salt}`, nodeType: 'blob' };
    case 1:
      return readOnly ? { type: 'list', path: '/', recursive: false } : { type: 'delete', path: `/n${salt - 1}` };
    default:
      return {
        type: 'multi_cas',
        guards: [],
        ops: readOnly ? [{ type: 'stat', path: '/' }] : [{ type: 'stat', path: '/' }, { type: 'create', path: `/m${salt}`, nodeType: 'queue' }],
      };
  }
}

/**
 * Applies `batches` to a machine and the model side by side, checking every reply, and the
 * table's records and order after every entry and through a checkpoint image. `afterEntry`
 * sees the machine after each entry.
 */
function checkAgainstModel(batches: readonly (readonly Command[])[], clientTableMax: number, sessionIdleOps: number, afterEntry: (machine: Machine) => void = () => {}): void {
  const sessions = policy(clientTableMax, sessionIdleOps);
  const model = new ModelTable();
  let machine = emptyMachine();
  let salt = 0;
  for (const batch of batches) {
    const op = machine.appliedOp + 1;
    // Requests are built from the model's view before the entry (as a client would send them).
    const requests: Request[] = [];
    let checkpoint = false;
    for (const c of batch) {
      if (c.kind === 'checkpoint') {
        checkpoint = true;
        continue;
      }
      const id = `c${c.client}`;
      const known = model.get(id)?.requestNum ?? 0;
      salt += 1;
      if (c.kind === 'register') requests.push(register(id));
      else if (c.kind === 'next') requests.push(treeRequest(id, known + 1, opFor(c.readOnly, salt)));
      else if (c.kind === 'retry') requests.push(treeRequest(id, Math.max(1, known), opFor(c.readOnly, salt)));
      else requests.push(treeRequest(id, Math.max(1, known - 1), opFor(false, salt)));
    }
    if (requests.length > 0) {
      const entry: LogEntry = { op, view: 0, requests };
      const replies: AppliedReply[] = [];
      machine = applyEntry(machine, entry, sessions, replies);
      const answered = [...replies];
      // The machine applies an entry's registrations and writes first, then its reads
      // (src/vr/state_machine.ts applyEntry); the model follows the same order, and
      // replies still come in request order.
      const isRead = (request: Request): boolean => request.op.type === 'tree' && !isWriteOp(request.op.op);
      const order = [...requests.keys()].sort((a, b) => Number(isRead(requests[a] as Request)) - Number(isRead(requests[b] as Request)) || a - b);
      const replyOf = (request: Request): AppliedReply | undefined => {
        // The model reads the body only of a request it executes, whose reply is the
        // entry's one tree answer with this key (a key executes at most once).
        return answered.find((reply) => reply.clientId === request.clientId && reply.requestNum === request.requestNum && reply.body.type === 'tree');
      };
      const expectations = new Map<number, ReturnType<ModelTable['apply']>>();
      for (const index of order) {
        const request = requests[index] as Request;
        expectations.set(index, model.apply(request, op, clientTableMax, replyOf(request)?.body));
      }
      for (const [index, request] of requests.entries()) {
        const next = answered[0];
        const mine = next !== undefined && next.clientId === request.clientId && next.requestNum === request.requestNum ? next : undefined;
        const expected = expectations.get(index) ?? null;
        // No reply for this one. (A reply with its key may still be next: a later request of
        // the entry with the same key takes it; a reply to this one would be left over below.)
        if (expected === null) continue;
        if (mine === undefined) throw new Error(`missing reply for ${request.clientId}#${request.requestNum}`);
        answered.shift();
        if (expected === 'executes') {
          expect(mine.op, 'an executed request names its entry').to.equal(op);
          expect(mine.body.type).to.equal('tree');
        } else {
          expect(mine.body, `${request.clientId}#${request.requestNum}`).to.deep.equal(expected);
        }
      }
      expect(answered, 'no extra replies').to.deep.equal([]);
    }
    if (checkpoint) {
      machine = expireAtCheckpoint(machine, sessions);
      model.expireIdle(machine.appliedOp, sessionIdleOps);
      model.evictBeyond(clientTableMax);
    }
    expect(Array.from(machine.clients.entries())).to.deep.equal(model.sessions.map((s) => [s.id, s.record]));
    expect(machine.clients.size).to.equal(model.sessions.length);
    afterEntry(machine);
  }
  // and a checkpoint image carries the same table, order included
  const decoded = decodeCheckpoint(encodeCheckpoint(machine));
  if (!decoded.ok) throw new Error(decoded.reason);
  expect(Array.from(decoded.machine.clients.entries())).to.deep.equal(Array.from(machine.clients.entries()));
}

describe('client table: against an array-based reference model (property)', () => {
  it('random register / request / retry / stale / checkpoint histories give the same records in the same order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(command, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 8 }),
        (batches, clientTableMax, sessionIdleOps) => checkAgainstModel(batches, clientTableMax, sessionIdleOps),
      ),
      { numRuns: 300 },
    );
  });

  it('long histories past the stale-record bound: a session idle at the front while others run on; sweeps drop the stale records, records and order unchanged', () => {
    // c0 registers first and then sleeps (at the front of the order) while c1..c6 activate
    // thousands of times: every activation leaves a stale record behind c0, so the queue
    // reaches its bound and is swept, many times per history.
    const busy: fc.Arbitrary<Command> = command.map((c) => (c.kind === 'checkpoint' ? c : { ...c, client: 1 + (c.client % (clientCount - 1)) }));
    fc.assert(
      fc.property(fc.array(fc.array(busy, { minLength: 2, maxLength: 6 }), { minLength: 1200, maxLength: 1400 }), fc.integer({ min: 900, max: 5000 }), (batches, sessionIdleOps) => {
        let sweeps = 0;
        let sweeping = false;
        let peak = 0;
        let sessionsMax = 0;
        checkAgainstModel([[{ kind: 'register', client: 0 }], ...batches], clientCount, sessionIdleOps, (machine) => {
          const now = machine.clients.recordsQueued;
          sessionsMax = Math.max(sessionsMax, machine.clients.size);
          // The documented bound, (8/3)n + 2 * slack, with n the most sessions so far (an eviction can shrink n mid-sweep) and one entry's pushes.
          expect(now, 'stale records stay bounded').to.be.at.most(Math.ceil((8 / 3) * sessionsMax) + 2 * clientTableStaleSlack + 6);
          if (sweeping && !machine.clients.sweeping) sweeps += 1;
          sweeping = machine.clients.sweeping;
          peak = Math.max(peak, now);
        });
        expect(sweeps, `a sweep ran to its end (peak ${peak} records)`).to.be.greaterThan(0);
      }),
      { numRuns: 6, endOnFailure: true }, // no shrinking: a 1,400-entry history shrinks for minutes
    );
  });
});

// ---- at size ---------------------------------------------------------------------------------

describe('client table: a full production-size table (clientTableMax 100,000)', () => {
  it('~130,000 registrations applied in entries of 256 complete, evicting exactly the least recently active', () => {
    const total = 130_000;
    const max = defaultSessionPolicy.clientTableMax;
    let machine = emptyMachine();
    let registered = 0;
    let answered = 0;
    while (registered < total) {
      const requests: Request[] = [];
      for (let i = 0; i < 256 && registered < total; i++) requests.push(register(`s${registered++}`));
      const replies: AppliedReply[] = [];
      machine = applyEntry(machine, { op: machine.appliedOp + 1, view: 0, requests }, defaultSessionPolicy, replies);
      answered += replies.filter((r) => r.body.type === 'registered').length;
    }
    expect(answered).to.equal(total);
    expect(machine.clients.size).to.equal(max);
    // the first 30,000 (least recently active) went, the last 100,000 stayed, in order
    expect(machine.clients.has(`s${total - max - 1}`)).to.equal(false);
    expect(machine.clients.head).to.equal(`s${total - max}`);
    expect(machine.clients.tail).to.equal(`s${total - 1}`);
    // a checkpoint at this size touches nothing (nobody idle, nobody beyond capacity)
    expect(expireAtCheckpoint(machine, defaultSessionPolicy)).to.equal(machine);
    // activity moves a session off the eviction end
    const oldest = machine.clients.head as string;
    const touched = run([[write(oldest, 1)], [register('late')]], defaultSessionPolicy, machine).machine;
    expect(touched.clients.has(oldest), 'the active session stays').to.equal(true);
    expect(touched.clients.has(`s${total - max + 1}`), 'the next least recently active goes instead').to.equal(false);
    expect(touched.clients.tail).to.equal('late');
  });
});
