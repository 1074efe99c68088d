/**
 * Leases, ephemeral and sequential nodes in the store (src/tree/leases.ts, src/tree/store.ts):
 * ownership, limits, atomicity with the tree, the lease clock's counting rule, and the lease
 * table's checkpoint form against forged input.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { defaultTreeLimits, type TreeLimits } from '../../src/base/limits.ts';
import { advanceClock, emptyLeaseTable, leaseTableFromTerms, leaseTerms, ownerOf, ttlTicksOf, type LeaseTable } from '../../src/tree/leases.ts';
import { lookup } from '../../src/tree/lookup.ts';
import type { OpOutcome, TreeOp } from '../../src/tree/ops.ts';
import { applyLeaseClock, applyStoreOp } from '../../src/tree/store.ts';
import { emptyTree, type Tree } from '../../src/tree/tree.ts';
import { validateOp } from '../../src/tree/validate.ts';

type Store = { tree: Tree; leases: LeaseTable; op: number };

const limits: TreeLimits = { ...defaultTreeLimits, leaseTtlMinMs: 10, leaseNodesMax: 3, leasesPerClientMax: 2, leasesMax: 3, sequenceMax: 5 };

function fresh(): Store {
  return { tree: emptyTree(), leases: emptyLeaseTable(), op: 0 };
}

/** Applies `op` as client `owner` at the next op number; returns the outcome and the ops the watch hub would get. */
function run(store: Store, op: TreeOp, owner = 'alice'): { outcome: OpOutcome; changed: TreeOp[] } {
  const checked = validateOp(op, limits);
  if (!checked.ok) return { outcome: { type: 'error', error: checked.error }, changed: [] };
  store.op += 1;
  const changed: TreeOp[] = [];
  const applied = applyStoreOp(store.tree, store.leases, checked.op, { clientId: owner, op: store.op, limits, tickMs: 10 }, changed);
  store.tree = applied.tree;
  store.leases = applied.leases;
  return { outcome: applied.outcome, changed };
}

function grant(store: Store, ttlMs = 1000, owner = 'alice'): number {
  const { outcome } = run(store, { type: 'lease_grant', ttlMs }, owner);
  if (outcome.type !== 'lease') throw new Error(`grant failed: ${JSON.stringify(outcome)}`);
  return outcome.id;
}

function exists(store: Store, path: string): boolean {
  return lookup(store.tree, path).ok;
}

/** One lease_clock entry of `ticks`, covering every renewal up to `through` (default: all so far). */
function tick(store: Store, ticks: number, through = store.op): { expired: number[]; changed: TreeOp[] } {
  store.op += 1;
  const changed: TreeOp[] = [];
  const advanced = applyLeaseClock(store.tree, store.leases, ticks, through, changed);
  store.tree = advanced.tree;
  store.leases = advanced.leases;
  return { expired: advanced.expired, changed };
}

describe('leases in the store', () => {
  it('the owner is the client id up to its last dot', () => {
    expect(ownerOf('abc1234x.17')).to.equal('abc1234x');
    expect(ownerOf('a.b.c')).to.equal('a.b');
    expect(ownerOf('plain')).to.equal('plain');
    expect(ttlTicksOf(1001, 10)).to.equal(101);
    expect(ttlTicksOf(5, 10)).to.equal(1);
  });

  it('grant, keep-alive and revoke: ids increase, only the owner may keep alive or revoke', () => {
    const store = fresh();
    const first = grant(store);
    const second = grant(store, 2000, 'bob');
    expect(second).to.equal(first + 1);
    expect(run(store, { type: 'lease_keepalive', ids: [first, second, 99] }).outcome).to.deep.equal({ type: 'lease_kept', alive: [true, false, false] });
    expect(run(store, { type: 'lease_revoke', id: second }).outcome).to.deep.equal({ type: 'error', error: { code: 'lease_not_owned', id: second } });
    expect(run(store, { type: 'lease_revoke', id: 42 }).outcome).to.deep.equal({ type: 'error', error: { code: 'no_such_lease', id: 42 } });
    expect(run(store, { type: 'lease_revoke', id: first }).outcome).to.deep.equal({ type: 'lease', id: first, ttlMs: 1000, nodes: 0 });
    expect(run(store, { type: 'lease_keepalive', ids: [first] }).outcome).to.deep.equal({ type: 'lease_kept', alive: [false] });
    // A revoked id is never reused.
    expect(grant(store)).to.equal(second + 1);
  });

  it('limits: leases per client and per namespace, nodes per lease', () => {
    const store = fresh();
    grant(store, 1000, 'alice');
    const kept = grant(store, 1000, 'alice');
    expect(run(store, { type: 'lease_grant', ttlMs: 1000 }, 'alice').outcome).to.deep.equal({ type: 'error', error: { code: 'too_large', what: 'leases_per_client', limit: 2 } });
    grant(store, 1000, 'bob');
    expect(run(store, { type: 'lease_grant', ttlMs: 1000 }, 'carol').outcome).to.deep.equal({ type: 'error', error: { code: 'too_large', what: 'leases', limit: 3 } });
    for (const name of ['a', 'b', 'c']) expect(run(store, { type: 'create', path: `/e/${name}`, nodeType: 'blob', lease: kept }).outcome.type).to.equal('ok');
    expect(run(store, { type: 'create', path: '/e/d', nodeType: 'blob', lease: kept }).outcome).to.deep.equal({ type: 'error', error: { code: 'too_large', what: 'lease_nodes', limit: 3 } });
    // Deleting one frees room for another.
    expect(run(store, { type: 'delete', path: '/e/a' }).outcome.type).to.equal('ok');
    expect(run(store, { type: 'create', path: '/e/d', nodeType: 'blob', lease: kept }).outcome.type).to.equal('ok');
  });

  it('bad input is refused before it can become state', () => {
    const refusals: unknown[] = [
      { type: 'lease_grant', ttlMs: -1 },
      { type: 'lease_grant', ttlMs: 1e12 },
      { type: 'lease_grant', ttlMs: 0.5 },
      { type: 'lease_grant' },
      { type: 'lease_keepalive', ids: [] },
      { type: 'lease_keepalive', ids: [0] },
      { type: 'lease_keepalive', ids: [2 ** 53] },
      { type: 'lease_keepalive', ids: new Array(limits.keepAliveIdsMax + 1).fill(1) },
      { type: 'lease_revoke', id: 'x' },
      { type: 'create', path: '/d', nodeType: 'directory', lease: 1 },
      { type: 'create', path: '/', nodeType: 'blob', sequential: true },
      { type: 'create', path: '/x', nodeType: 'blob', sequential: 'yes' },
      { type: 'multi_cas', guards: [], ops: [{ type: 'lease_grant', ttlMs: 1000 }] },
    ];
    for (const op of refusals) {
      const checked = validateOp(op, limits);
      expect(checked.ok, JSON.stringify(op).slice(0, 80)).to.equal(false);
    }
    const canonical = validateOp({ type: 'create', path: '/x', nodeType: 'blob', lease: null, sequential: null }, limits);
    expect(canonical).to.deep.equal({ ok: true, op: { type: 'create', path: '/x', nodeType: 'blob' } });
  });

  it('ephemeral nodes: the lease must exist and be the requester\'s; revoke deletes them all in one op', () => {
    const store = fresh();
    const lease = grant(store);
    expect(run(store, { type: 'create', path: '/e/x', nodeType: 'blob', lease: 77 }).outcome).to.deep.equal({ type: 'error', error: { code: 'no_such_lease', id: 77 } });
    expect(run(store, { type: 'create', path: '/e/x', nodeType: 'blob', lease }, 'bob').outcome).to.deep.equal({ type: 'error', error: { code: 'lease_not_owned', id: lease } });
    expect(exists(store, '/e')).to.equal(false);
    run(store, { type: 'create', path: '/e/x', nodeType: 'blob', lease });
    run(store, { type: 'create', path: '/e/y', nodeType: 'queue', lease });
    run(store, { type: 'create', path: '/e/z', nodeType: 'blob' });
    // An ephemeral node is never a directory, so it has no children.
    expect(run(store, { type: 'create', path: '/e/x/child', nodeType: 'blob' }).outcome).to.deep.equal({ type: 'error', error: { code: 'not_a_directory', path: '/e/x' } });
    const revoked = run(store, { type: 'lease_revoke', id: lease });
    expect(revoked.outcome).to.deep.equal({ type: 'lease', id: lease, ttlMs: 1000, nodes: 2 });
    expect(revoked.changed).to.deep.equal([
      { type: 'delete', path: '/e/x' },
      { type: 'delete', path: '/e/y' },
    ]);
    expect(exists(store, '/e/x') || exists(store, '/e/y')).to.equal(false);
    expect(exists(store, '/e/z')).to.equal(true);
    expect(store.leases.ephemeral.size).to.equal(0);
  });

  it('deleting a directory detaches the ephemeral nodes under it; re-creating a path does not make it ephemeral again', () => {
    const store = fresh();
    const lease = grant(store);
    run(store, { type: 'create', path: '/d/a/x', nodeType: 'blob', lease });
    run(store, { type: 'create', path: '/d/b', nodeType: 'set', lease });
    run(store, { type: 'create', path: '/dd/c', nodeType: 'blob', lease });
    expect(run(store, { type: 'delete', path: '/d' }).outcome.type).to.equal('ok');
    expect([...store.leases.ephemeral.keys()]).to.deep.equal(['/dd/c']);
    run(store, { type: 'create', path: '/d/a/x', nodeType: 'blob' });
    expect(run(store, { type: 'lease_revoke', id: lease }).outcome).to.deep.equal({ type: 'lease', id: lease, ttlMs: 1000, nodes: 1 });
    expect(exists(store, '/d/a/x')).to.equal(true);
  });

  it('a transaction is atomic over the tree and the lease table', () => {
    const store = fresh();
    const lease = grant(store);
    const failed = run(store, {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'create', path: '/t/a', nodeType: 'blob', lease },
        { type: 'create', path: '/t/b', nodeType: 'blob', lease: 999 },
      ],
    });
    expect(failed.outcome).to.deep.equal({ type: 'error', error: { code: 'no_such_lease', id: 999 }, at: 1 });
    expect(exists(store, '/t/a')).to.equal(false);
    expect(store.leases.ephemeral.size).to.equal(0);
    // Nodes per lease counts the transaction's own earlier creates.
    const over = run(store, { type: 'multi_cas', guards: [], ops: ['a', 'b', 'c', 'd'].map((name) => ({ type: 'create' as const, path: `/t/${name}`, nodeType: 'blob' as const, lease })) });
    expect(over.outcome).to.deep.equal({ type: 'error', error: { code: 'too_large', what: 'lease_nodes', limit: 3 }, at: 3 });
    const swapped = run(store, {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'create', path: '/t/a', nodeType: 'blob', lease },
        { type: 'delete', path: '/t/a' },
        { type: 'create', path: '/t/a', nodeType: 'blob' },
        { type: 'create', path: '/t/s-', nodeType: 'blob', lease, sequential: true },
      ],
    });
    expect(swapped.outcome.type).to.equal('txn');
    expect([...store.leases.ephemeral.keys()]).to.deep.equal(['/t/s-0000000002']);
    // The hub gets the transaction with the name the sequential create made.
    const logged = swapped.changed[0];
    expect(logged?.type === 'multi_cas' ? logged.ops[3] : null).to.deep.equal({ type: 'create', path: '/t/s-0000000002', nodeType: 'blob' });
  });

  it('sequential names: the parent\'s version, 10 digits, unique and increasing, a missing parent made first', () => {
    const store = fresh();
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { outcome, changed } = run(store, { type: 'create', path: '/q/job-', nodeType: 'blob', sequential: true });
      if (outcome.type !== 'ok' || outcome.path === undefined) throw new Error(JSON.stringify(outcome));
      made.push(outcome.path);
      expect(changed).to.deep.equal([{ type: 'create', path: outcome.path, nodeType: 'blob' }]);
    }
    expect(made).to.deep.equal(['/q/job-0000000000', '/q/job-0000000001', '/q/job-0000000002']);
    // Other changes under the parent move the counter too: still unique and increasing.
    run(store, { type: 'blob_put', path: '/q/job-0000000000', value: new Uint8Array([1]) });
    const next = run(store, { type: 'create', path: '/q/job-', nodeType: 'blob', sequential: true }).outcome;
    expect(next.type === 'ok' ? next.path : null).to.equal('/q/job-0000000004');
    run(store, { type: 'create', path: '/q/other', nodeType: 'blob' });
    expect(run(store, { type: 'create', path: '/q/job-', nodeType: 'blob', sequential: true }).outcome).to.deep.equal({ type: 'error', error: { code: 'too_large', what: 'sequence', limit: 5 } });
    run(store, { type: 'create', path: '/file', nodeType: 'blob' });
    expect(run(store, { type: 'create', path: '/file/x-', nodeType: 'blob', sequential: true }).outcome).to.deep.equal({ type: 'error', error: { code: 'not_a_directory', path: '/file' } });
  });

  describe('the lease clock (src/vr/README.md rule 21)', () => {
    it('a lease counts only clock entries whose `through` covers its last renewal, and expires with its nodes in one entry', () => {
      const store = fresh();
      const lease = grant(store, 100); // 10 ticks
      const grantOp = store.op;
      run(store, { type: 'create', path: '/e/a', nodeType: 'blob', lease });
      run(store, { type: 'create', path: '/e/b', nodeType: 'blob', lease });
      // An entry measured from before the grant committed does not count for it.
      expect(tick(store, 50, grantOp - 1).expired).to.deep.equal([]);
      expect(store.leases.leases.get(lease)?.countFrom).to.equal(null);
      expect(tick(store, 9, grantOp).expired).to.deep.equal([]);
      // A keep-alive restarts the count; the next entry does not cover it.
      run(store, { type: 'lease_keepalive', ids: [lease] });
      const keptOp = store.op;
      expect(tick(store, 30, keptOp - 1).expired).to.deep.equal([]);
      expect(tick(store, 9, keptOp).expired).to.deep.equal([]);
      expect(exists(store, '/e/a')).to.equal(true);
      const last = tick(store, 1);
      expect(last.expired).to.deep.equal([lease]);
      expect(last.changed).to.deep.equal([
        { type: 'delete', path: '/e/a' },
        { type: 'delete', path: '/e/b' },
      ]);
      expect(exists(store, '/e/a') || exists(store, '/e/b')).to.equal(false);
      expect(store.leases.size).to.equal(0);
      expect(store.leases.owners.size).to.equal(0);
    });

    it('property: a lease never expires before ttlTicks counted after its last covered renewal, and always once they are', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 40 }),
          fc.array(fc.oneof(fc.record({ kind: fc.constant('keep' as const) }), fc.record({ kind: fc.constant('clock' as const), ticks: fc.integer({ min: 1, max: 15 }), lag: fc.integer({ min: 0, max: 3 }) })), { maxLength: 40 }),
          (ttlTicks, steps) => {
            // Granted through the store at op 1; then keep-alives and clock entries in any order.
            const store = fresh();
            const id = grant(store, ttlTicks * 10);
            let table = store.leases;
            let op = store.op;
            let renewedOp = op;
            let counted: number | null = null;
            for (const step of steps) {
              op += 1;
              if (step.kind === 'keep') {
                if (!table.leases.has(id)) continue;
                const kept = applyStoreOp(emptyTree(), table, { type: 'lease_keepalive', ids: [id] }, { clientId: 'alice', op, limits, tickMs: 10 });
                table = kept.leases;
                renewedOp = op;
                counted = null;
                continue;
              }
              const through = Math.max(0, op - 1 - step.lag);
              const alive = table.leases.has(id);
              const advanced = advanceClock(table, step.ticks, through);
              table = advanced.table;
              if (!alive) continue;
              if (counted === null && renewedOp <= through) counted = 0;
              if (counted !== null) counted += step.ticks;
              const shouldExpire = counted !== null && counted >= ttlTicks;
              expect(advanced.expired.includes(id)).to.equal(shouldExpire);
              if (shouldExpire) table = table.with({ leases: table.leases.delete(id) });
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('the lease table in a checkpoint', () => {
    it('round-trips, and equal tables give equal terms', () => {
      const store = fresh();
      const a = grant(store, 1000);
      grant(store, 2000, 'bob');
      run(store, { type: 'create', path: '/e/a', nodeType: 'blob', lease: a });
      tick(store, 3);
      run(store, { type: 'lease_keepalive', ids: [a] });
      const terms = leaseTerms(store.leases);
      const decoded = leaseTableFromTerms(JSON.parse(JSON.stringify(terms)) as unknown, store.op);
      if (!decoded.ok) throw new Error(decoded.reason);
      expect(leaseTerms(decoded.table)).to.deep.equal(terms);
      expect([...decoded.table.ephemeral.entries()]).to.deep.equal([...store.leases.ephemeral.entries()]);
      expect([...decoded.table.pending]).to.deep.equal([a]);
      expect(decoded.table.owners.get('alice')).to.equal(1);
    });

    it('refuses forged terms: ids at or past nextId, repeated ids, a node on two leases, renewals beyond the op, counts beyond the clock', () => {
      const good: unknown[] = [10, 3, [[1, 'alice', 1000, 100, 5, 4, ['/a']], [2, 'bob', 1000, 100, 6, -1, ['/b']]]];
      expect(leaseTableFromTerms(good, 6).ok).to.equal(true);
      const forged: [unknown, RegExp][] = [
        [[10, 2, [[2, 'a', 1, 1, 1, -1, []]]], /bad or repeated id/],
        [[10, 3, [[1, 'a', 1, 1, 1, -1, []], [1, 'b', 1, 1, 1, -1, []]]], /bad or repeated id/],
        [[10, 3, [[1, 'a', 1, 1, 1, -1, ['/x']], [2, 'b', 1, 1, 1, -1, ['/x']]]], /on two leases/],
        [[10, 3, [[1, 'a', 1, 1, 7, -1, []]]], /renewed beyond/],
        [[10, 3, [[1, 'a', 1, 1, 1, 11, []]]], /beyond the clock/],
        [[10, 3, [[1, 'a', 1, 0, 1, -1, []]]], /bad ttl/],
        [[2 ** 53, 3, []], /malformed header/],
        [[10, 3, [[1, '', 1, 1, 1, -1, []]]], /bad owner/],
        ['nope', /malformed/],
      ];
      for (const [terms, reason] of forged) {
        const decoded = leaseTableFromTerms(terms, 6);
        expect(decoded.ok, JSON.stringify(terms)).to.equal(false);
        if (!decoded.ok) expect(decoded.reason).to.match(reason);
      }
    });
  });
});
