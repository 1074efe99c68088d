/**
 * Kept-alive leases (src/coord/lease.ts) against an embedded node: kept alive past their TTL,
 * revoked at once, lost BEFORE the service expires them when keep-alives stop (the safety rule:
 * the client's deadline counts from each keep-alive's send, the service's from its commit),
 * lost at once when the service says the lease is gone, one keep-alive in flight per lease,
 * batched keep-alives, and timers that never keep a process alive.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { defaultTreeLimits } from '../../src/base/limits.ts';
import { NamespaceClient } from '../../src/client/namespace_client.ts';
import { Coordinator, KeptLeaseHandle, type CoordClient } from '../../src/coord/index.ts';
import { HaretError, startNode, type HaretNode } from '../../src/index.ts';
import { coordClientOver } from './coord_test_client.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves true if `promise` settles within `ms`, else false. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return result;
}

/**
 * The node's client with keep-alives under the test's control: counted, and, once `mode` says
 * so, held forever (`hang`: a keep-alive in flight that never answers) or failed at once
 * (`fail`: unavailable, as when the node cannot be reached).
 */
class KeepAliveTap {
  mode: 'pass' | 'hang' | 'fail' = 'pass';
  calls = 0;
  ids = 0;
  readonly client: CoordClient;
  readonly #hanging: Array<() => void> = [];

  constructor(db: NamespaceClient) {
    const leaseKeepAlive: CoordClient['leaseKeepAlive'] = (ids) => {
      this.calls += 1;
      this.ids += ids.length;
      if (this.mode === 'hang') return new Promise((_, reject) => this.#hanging.push(() => reject(new HaretError('stopped', 'released by the test', false))));
      if (this.mode === 'fail') return Promise.reject(new HaretError('unavailable', 'the test cut the keep-alives', false));
      return db.leaseKeepAlive(ids);
    };
    this.client = coordClientOver(db, { leaseKeepAlive });
  }

  /** Fails every keep-alive still hanging (so nothing waits past the test). */
  release(): void {
    for (const reject of this.#hanging.splice(0)) reject();
  }
}

/** When the node at `path` is deleted (performance.now()), seen through a watch from a stat. */
async function deletionTime(db: NamespaceClient, path: string): Promise<number> {
  const { op } = await db.stat(path);
  for await (const batch of db.watch(path, { fromOp: op })) {
    if (batch.events.some((event) => event.kind === 'deleted')) return performance.now();
  }
  throw new Error(`the watch of ${path} ended before its deletion`);
}

describe('coordination: kept-alive leases', function () {
  this.timeout(30_000);
  let node: HaretNode;
  let db: NamespaceClient;

  before(async () => {
    node = await startNode({ namespaces: ['default'], logLevel: 'silent' });
    db = node.client('default');
  });
  after(async () => {
    await node.stop();
  });

  it('keeps a 500 ms lease alive for 2 s; revoke deletes its ephemeral node at once and resolves lost with stopped', async () => {
    const lease = await db.grantLease({ ttlMs: 500 });
    await db.create('/lease/kept', 'blob', { lease });
    let lostEarly = false;
    void lease.lost.then(() => {
      lostEarly = true;
    });
    await sleep(2_000);
    expect(lostEarly, 'lost fired while kept alive').to.equal(false);
    expect(lease.alive).to.equal(true);
    expect((await db.stat('/lease/kept')).nodeType).to.equal('blob');

    await lease.revoke();
    const stat = await db.stat('/lease/kept').catch((error: unknown) => error);
    expect(stat).to.be.instanceOf(HaretError);
    expect((stat as HaretError).code).to.equal('does_not_exist');
    expect(await settlesWithin(lease.lost, 0)).to.equal(true);
    expect((await lease.lost).code).to.equal('stopped');
    expect(lease.alive).to.equal(false);
    // Idempotent: the same settled promise, no second revoke error.
    await lease.revoke();
  });

  it('when keep-alives stop answering, lost fires before the service deletes the node, with one keep-alive in flight', async () => {
    const tap = new KeepAliveTap(db);
    const coordinator = new Coordinator(tap.client);
    try {
      const lease = await coordinator.grantLease({ ttlMs: 500 });
      await db.create('/lease/hang', 'blob', { lease });
      await sleep(600);
      expect(lease.alive).to.equal(true);
      const deleted = deletionTime(db, '/lease/hang');
      tap.mode = 'hang';
      const callsBefore = tap.calls;
      const lost = await lease.lost;
      const lostAt = performance.now();
      const deletedAt = await deleted;
      expect(lost.code).to.equal('timeout');
      expect(lostAt, `lost at ${lostAt.toFixed(1)}, node deleted at ${deletedAt.toFixed(1)}`).to.be.below(deletedAt);
      // The keep-alive in flight never answered: no second one was sent for the lease.
      expect(tap.calls - callsBefore).to.equal(1);
      expect(coordinator.stats().leases).to.equal(0);
    } finally {
      tap.release();
    }
  });

  it('when keep-alives fail, retries every ttl/10 until the deadline, and lost still fires before the node goes', async () => {
    const tap = new KeepAliveTap(db);
    const coordinator = new Coordinator(tap.client);
    const lease = (await coordinator.grantLease({ ttlMs: 2_000 })) as KeptLeaseHandle;
    await db.create('/lease/fail', 'blob', { lease });
    await sleep(400);
    const deleted = deletionTime(db, '/lease/fail');
    tap.mode = 'fail';
    const callsBefore = tap.calls;
    const deadline = lease.deadline;
    const lost = await lease.lost;
    const lostAt = performance.now();
    const deletedAt = await deleted;
    expect(lost.code).to.equal('timeout');
    expect(lostAt).to.be.at.least(deadline - 1);
    expect(lostAt).to.be.below(deletedAt);
    // At most 1800 ms of failures, retried every 200 ms (the keep-alive period, 667 ms, would give 2 or 3): several attempts, bounded.
    const retries = tap.calls - callsBefore;
    expect(retries).to.be.within(5, 10);
  });

  it('lost fires at once (not at the deadline) when a keep-alive answers that the lease is gone', async () => {
    const lease = (await db.grantLease({ ttlMs: 5_000, keepAliveMs: 100 })) as KeptLeaseHandle;
    await db.leaseRevoke(lease.id);
    const revokedAt = performance.now();
    const lost = await lease.lost;
    const after = performance.now() - revokedAt;
    expect(lost.code).to.equal('no_such_lease');
    expect(after, `lost ${after.toFixed(0)} ms after the revoke`).to.be.below(1_000);
    expect(lease.deadline - revokedAt).to.be.above(3_000);
  });

  it('batches: 50 leases of one client share keep-alive ops (far fewer than one per lease per period)', async () => {
    const tap = new KeepAliveTap(db);
    const coordinator = new Coordinator(tap.client);
    const leases = [];
    for (let i = 0; i < 50; i++) leases.push(await coordinator.grantLease({ ttlMs: 1_500 }));
    const startCalls = tap.calls;
    const startIds = tap.ids;
    await sleep(2_000);
    const ops = tap.calls - startCalls;
    const ids = tap.ids - startIds;
    // Unbatched: 50 leases x (2000 / 500 ms) = 200 ops.
    expect(ops, `${ops} keep-alive ops carried ${ids} ids`).to.be.at.most(20);
    expect(ids).to.be.at.least(50 * 3);
    expect(leases.every((lease) => lease.alive)).to.equal(true);
    expect(coordinator.stats()).to.include({ leases: 50, keepAliveOps: tap.calls, keepAliveIds: tap.ids });
    await Promise.all(leases.map((lease) => lease.revoke()));
    expect(coordinator.stats().leases).to.equal(0);
  });

  it('refuses options that cannot be kept safely, and a client without the coordination layer says unavailable', async () => {
    for (const options of [{ ttlMs: 500, keepAliveMs: 500 }, { ttlMs: 500, marginMs: 500 }, { ttlMs: 0 }, { ttlMs: 1.5 }]) {
      const error = await db.grantLease(options).catch((e: unknown) => e);
      expect(error, JSON.stringify(options)).to.be.instanceOf(HaretError);
      expect((error as HaretError).code).to.equal('invalid_request');
    }
    const bare = new NamespaceClient('default', () => Promise.reject(new Error('no call expected')), defaultTreeLimits);
    const error = await bare.grantLease({ ttlMs: 500 }).catch((e: unknown) => e);
    expect((error as HaretError).code).to.equal('unavailable');
    expect(() => bare.election('/e')).to.throw(HaretError);
  });

  it('never keeps a process alive: a process holding a kept lease exits by itself', async function () {
    this.timeout(20_000);
    const coordIndex = fileURLToPath(new URL('../../src/coord/index.ts', import.meta.url));
    const script = `
      import { Coordinator } from ${JSON.stringify(coordIndex)};
      let kept = 0;
      const fake = {
        leaseGrant: async (ttlMs) => ({ type: 'lease', id: 7, ttlMs, nodes: 0, epoch: 0, view: 0, op: 1 }),
        leaseKeepAlive: async (ids) => { kept += 1; return { type: 'lease_kept', alive: ids.map(() => true), epoch: 0, view: 0, op: 2 }; },
        leaseRevoke: async () => { throw new Error('not revoked'); },
      };
      const lease = await new Coordinator(fake).grantLease({ ttlMs: 300 });
      await new Promise((resolve) => setTimeout(resolve, 350));
      console.log(JSON.stringify({ alive: lease.alive, kept }));
    `;
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { env, timeout: 15_000 });
    const report = JSON.parse(stdout.trim()) as { alive: boolean; kept: number };
    // The lease was being kept (keep-alives ran), and the process still exited on its own.
    expect(report.alive).to.equal(true);
    expect(report.kept).to.be.at.least(2);
  });
});
