/**
 * The coordination recipes (src/coord) against an embedded node, and one over TCP: the lock
 * (mutual exclusion with fenced writes, FIFO, one watch per waiter, timeout, a lost lease,
 * fencing after deletion), the election (one leader at a time, observe, resign), the barrier
 * and the semaphore.
 */
import { expect } from 'chai';
import { Coordinator, type HeldLock, type Leader, type Permit } from '../../src/coord/index.ts';
import { connect, HaretError, startNode, type HaretNode, type NamespaceClient, type RemoteConnection } from '../../src/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const sequenceOf = (path: string): number => Number(path.slice(-10));

/** Polls `condition` every 10 ms until it holds; fails after `ms`. */
async function until(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function errorOf(promise: Promise<unknown>): Promise<HaretError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(HaretError);
  return error as HaretError;
}

/** The names under `dir` (none when it does not exist). */
async function childrenOf(db: NamespaceClient, dir: string): Promise<string[]> {
  try {
    return (await db.list(dir)).entries.map((entry) => entry.name);
  } catch (error) {
    if (error instanceof HaretError && error.code === 'does_not_exist') return [];
    throw error;
  }
}

describe('coordination recipes', function () {
  this.timeout(30_000);
  let node: HaretNode;
  let db: NamespaceClient;

  before(async () => {
    node = await startNode({ namespaces: ['default'], logLevel: 'silent', clientApi: { port: 0 } });
    db = node.client('default');
  });
  after(async () => {
    await node.stop();
  });

  describe('lock', () => {
    it('8 contenders: mutual exclusion with fenced writes, each holds once, FIFO by creation, tokens increasing, one watch per waiter', async () => {
      const coordinator = new Coordinator(db);
      const lockPath = '/mutex/lock';
      await db.create('/mutex/counter', 'blob');
      await db.blobPut('/mutex/counter', '0');
      let inside = 0;
      let overlaps = 0;
      const held: { path: string; token: number }[] = [];
      const contenders = 8;
      let waitersChecked = false;

      const contend = async (): Promise<void> => {
        const lock = await coordinator.lock(lockPath, { ttlMs: 3_000 });
        inside += 1;
        if (inside > 1) overlaps += 1;
        held.push({ path: lock.path, token: lock.token });
        if (held.length === 1) {
          // Everyone queues behind the first holder: then each waiter has exactly one watch, on its predecessor.
          await until(() => coordinator.stats().watchesOpen === contenders, 5_000, 'every contender to queue');
          const watches = coordinator.openWatches();
          const queue = (await db.list(lockPath)).entries.map((entry) => entry.path).sort((x, y) => sequenceOf(x) - sequenceOf(y));
          expect(queue).to.have.length(contenders);
          expect(watches.filter((watch) => watch.purpose === 'held').map((watch) => watch.path)).to.deep.equal([lock.path]);
          const predecessorWatches = watches.filter((watch) => watch.purpose === 'predecessor');
          expect(predecessorWatches.every((watch) => !watch.recursive)).to.equal(true);
          expect(predecessorWatches.map((watch) => watch.path).sort()).to.deep.equal(queue.slice(0, -1).sort());
          waitersChecked = true;
        }
        const counter = await db.blobGet('/mutex/counter');
        await sleep(5);
        await db.multiCas(
          [lock.guard(), { path: '/mutex/counter', version: counter.version }],
          [{ type: 'blob_put', path: '/mutex/counter', value: new TextEncoder().encode(String(Number(text(counter.value)) + 1)) }],
        );
        inside -= 1;
        await lock.release();
      };
      await Promise.all(Array.from({ length: contenders }, contend));

      expect(waitersChecked).to.equal(true);
      expect(overlaps).to.equal(0);
      expect(text((await db.blobGet('/mutex/counter')).value)).to.equal(String(contenders));
      expect(new Set(held.map((entry) => entry.path)).size).to.equal(contenders);
      // FIFO: held in the order the tickets were created; tokens strictly increase in that order.
      const sequences = held.map((entry) => sequenceOf(entry.path));
      expect(sequences).to.deep.equal([...sequences].sort((a, b) => a - b));
      for (let i = 1; i < held.length; i++) expect((held[i] as { token: number }).token).to.be.above((held[i - 1] as { token: number }).token);
      // No herd: one listing per contender, plus one per waiter when its predecessor left (a herd lists ~n²/2).
      expect(coordinator.stats().lists).to.be.at.most(2 * contenders);
      expect(coordinator.stats().watchesOpen).to.equal(0);
      expect(coordinator.stats().leases).to.equal(0);
      expect(await childrenOf(db, lockPath)).to.deep.equal([]);
    });

    it('times out with timeout (executed false) and leaves no node, watch or lease behind', async () => {
      const coordinator = new Coordinator(db);
      const holder = await db.lock('/timeout/lock', { ttlMs: 3_000 });
      const started = performance.now();
      const error = await errorOf(coordinator.lock('/timeout/lock', { ttlMs: 3_000, timeoutMs: 300 }));
      const waited = performance.now() - started;
      expect(error.code).to.equal('timeout');
      expect(error.executed).to.equal(false);
      expect(waited).to.be.within(290, 2_000);
      expect(await childrenOf(db, '/timeout/lock')).to.deep.equal([holder.path.slice('/timeout/lock/'.length)]);
      expect(coordinator.stats()).to.include({ watchesOpen: 0, leases: 0 });
      await holder.release();
      expect(await childrenOf(db, '/timeout/lock')).to.deep.equal([]);
    });

    it('a holder whose lease is revoked behind its back is told at once, and the next waiter gets the lock', async () => {
      const lease = await db.grantLease({ ttlMs: 5_000 });
      const first = await db.lock('/lost/lock', { lease });
      const next = db.lock('/lost/lock', { ttlMs: 3_000 });
      await until(async () => (await childrenOf(db, '/lost/lock')).length === 2, 5_000, 'the waiter to queue');
      const revokedAt = performance.now();
      await db.leaseRevoke(lease.id);
      const lost = await first.lost;
      expect(performance.now() - revokedAt).to.be.below(1_000);
      expect(['does_not_exist', 'no_such_lease']).to.include(lost.code);
      const second = await next;
      expect(second.token).to.be.above(first.token);
      await first.release();
      await second.release();
      await lease.revoke();
      expect(await childrenOf(db, '/lost/lock')).to.deep.equal([]);
    });

    it('release through lease.revoke(): held.lost resolves, the waiter holds, withLock releases after fn', async () => {
      const lease = await db.grantLease({ ttlMs: 3_000 });
      const first = await db.lock('/handover/lock', { lease });
      const order: string[] = [];
      const next = db.withLock(
        '/handover/lock',
        async (held: HeldLock) => {
          order.push(`second ${held.token > first.token ? 'after' : 'before'} first`);
          return 42;
        },
        { ttlMs: 3_000 },
      );
      await until(async () => (await childrenOf(db, '/handover/lock')).length === 2, 5_000, 'the waiter to queue');
      await lease.revoke();
      expect((await first.lost).code).to.equal('stopped');
      expect(await next).to.equal(42);
      expect(order).to.deep.equal(['second after first']);
      expect(await childrenOf(db, '/handover/lock')).to.deep.equal([]);
    });

    it('fencing: once the holder\'s node is deleted, a multi_cas under its guard fails with cas_failed and lost fires', async () => {
      const held = await db.lock('/fence/lock', { ttlMs: 3_000, value: 'me' });
      await db.create('/fence/data', 'blob');
      const guard = held.guard();
      expect(guard).to.deep.equal({ path: held.path, version: 1 });
      await db.multiCas([guard], [{ type: 'blob_put', path: '/fence/data', value: new Uint8Array([1]) }]);
      await db.delete(held.path);
      const error = await errorOf(db.multiCas([guard], [{ type: 'blob_put', path: '/fence/data', value: new Uint8Array([2]) }]));
      expect(error.code).to.equal('cas_failed');
      expect((await held.lost).code).to.equal('does_not_exist');
      expect(Array.from((await db.blobGet('/fence/data')).value)).to.deep.equal([1]);
      await held.release();
    });

    it('works the same over TCP: a remote holder and an embedded waiter take turns', async () => {
      const port = node.clientApiAddress?.port ?? 0;
      const connection: RemoteConnection = await connect([`127.0.0.1:${port}`]);
      try {
        const remote = connection.client('default');
        const held = await remote.lock('/tcp/lock', { ttlMs: 3_000 });
        let embeddedHeld = false;
        const embedded = db.lock('/tcp/lock', { ttlMs: 3_000 }).then((lock) => {
          embeddedHeld = true;
          return lock;
        });
        await sleep(300);
        expect(embeddedHeld).to.equal(false);
        await held.release();
        const second = await embedded;
        expect(second.token).to.be.above(held.token);
        const third = remote.lock('/tcp/lock', { ttlMs: 3_000, timeoutMs: 200 });
        expect((await errorOf(third)).code).to.equal('timeout');
        await second.release();
        expect(await remote.withLock('/tcp/lock', (lock) => lock.path.startsWith('/tcp/lock/lock-'))).to.equal(true);
        expect(await childrenOf(db, '/tcp/lock')).to.deep.equal([]);
      } finally {
        await connection.close();
      }
    });
  });

  describe('election', () => {
    it('3 candidates: one leader at a time, leader() and observe() follow it, resign hands over in order', async () => {
      const path = '/election/e1';
      const seen: (string | null)[] = [];
      const tokens: number[] = [];
      const watcher = db.election(path);
      const observing = (async () => {
        for await (const leader of watcher.observe()) {
          seen.push(leader === null ? null : text(leader.value));
          if (leader !== null) tokens.push(leader.token);
          if (seen.filter((value) => value !== null).length === 3 && leader === null) break;
        }
      })();
      await until(() => seen.length >= 1, 5_000, 'the first observation');
      expect(seen[0]).to.equal(null);

      const candidates = ['a', 'b', 'c'].map((name) => ({ name, election: db.election(path, { ttlMs: 3_000 }) }));
      const leading = new Set<string>();
      let mostAtOnce = 0;
      // Campaign in a known order (each candidate queued before the next starts): a, b, c.
      const campaigns = [];
      for (const [index, { name, election }] of candidates.entries()) {
        campaigns.push(
          election.campaign(name).then((leadership) => {
            leading.add(name);
            mostAtOnce = Math.max(mostAtOnce, leading.size);
            return leadership;
          }),
        );
        await until(async () => (await childrenOf(db, path)).length === index + 1, 5_000, `candidate ${name} to queue`);
      }
      const a = await campaigns[0];
      expect(a?.value).to.deep.equal(new TextEncoder().encode('a'));
      const leaderNow = (await watcher.leader()) as Leader;
      expect(text(leaderNow.value)).to.equal('a');
      expect(leaderNow.token).to.equal(a?.token);

      for (const [index, { name, election }] of candidates.entries()) {
        const leadership = await campaigns[index];
        expect(text((leadership as { value: Uint8Array }).value)).to.equal(name);
        expect(text(((await watcher.leader()) as Leader).value)).to.equal(name);
        await sleep(50);
        expect([...leading]).to.deep.equal([name]);
        leading.delete(name);
        await election.resign();
      }
      await observing;
      expect(mostAtOnce).to.equal(1);
      expect(seen.filter((value) => value !== null)).to.deep.equal(['a', 'b', 'c']);
      expect(tokens).to.deep.equal([...tokens].sort((x, y) => x - y));
      expect(new Set(tokens).size).to.equal(3);
      expect(await watcher.leader()).to.equal(null);
      expect(await childrenOf(db, path)).to.deep.equal([]);
    });

    it('resign() withdraws a waiting campaign (stopped) and removes its candidate', async () => {
      const path = '/election/e2';
      const first = db.election(path, { ttlMs: 3_000 });
      const second = db.election(path, { ttlMs: 3_000 });
      const leadership = await first.campaign('first');
      const waiting = second.campaign('second');
      await until(async () => (await childrenOf(db, path)).length === 2, 5_000, 'the second candidate');
      await second.resign();
      const error = await errorOf(waiting);
      expect(error.code).to.equal('stopped');
      expect(await childrenOf(db, path)).to.deep.equal([leadership.path.slice(path.length + 1)]);
      // A withdrawn party may campaign again; it leads once the first resigns.
      const again = second.campaign('again');
      await first.resign();
      expect(text((await again).value)).to.equal('again');
      await second.resign();
      expect(await childrenOf(db, path)).to.deep.equal([]);
    });
  });

  describe('barrier and semaphore', () => {
    it('a barrier of 3 releases all three parties only when the third enters', async () => {
      const coordinator = new Coordinator(db);
      const parties = [0, 1, 2].map(() => coordinator.barrier('/barrier/b', 3, { ttlMs: 3_000 }));
      const openedAt: number[] = [];
      const entering = parties.slice(0, 2).map((party) => party.enter().then(() => openedAt.push(performance.now())));
      await until(async () => (await childrenOf(db, '/barrier/b')).length === 2, 5_000, 'two parties');
      await sleep(300);
      expect(openedAt).to.deep.equal([]);
      const thirdAt = performance.now();
      await (parties[2] as { enter(): Promise<void> }).enter();
      await Promise.all(entering);
      expect(openedAt).to.have.length(2);
      expect(openedAt.every((time) => time >= thirdAt)).to.equal(true);
      expect(coordinator.stats().watchesOpen).to.equal(0);
      await Promise.all(parties.map((party) => party.leave()));
      expect(await childrenOf(db, '/barrier/b')).to.deep.equal([]);
      expect(coordinator.stats().leases).to.equal(0);
    });

    it('a semaphore of 2 permits with 5 acquirers never has more than 2 holders, and serves them in arrival order', async () => {
      const coordinator = new Coordinator(db);
      const semaphore = coordinator.semaphore('/semaphore/s', 2, { ttlMs: 3_000 });
      let holders = 0;
      let mostHolders = 0;
      const granted: Permit[] = [];
      // Arrive in a known order: each acquirer's ticket exists before the next one starts.
      for (let i = 0; i < 5; i++) {
        void semaphore.acquire().then((permit) => {
          holders += 1;
          mostHolders = Math.max(mostHolders, holders);
          granted.push(permit);
        });
        await until(async () => (await childrenOf(db, '/semaphore/s')).length === i + 1, 5_000, `acquirer ${i} to queue`);
      }
      await until(() => granted.length === 2, 5_000, 'two permits');
      await sleep(200);
      expect(granted).to.have.length(2);
      // Release the oldest holder each time: the next in arrival order, and only it, gets the permit.
      for (let next = 2; next < 5; next++) {
        holders -= 1;
        await (granted[next - 2] as Permit).release();
        await until(() => granted.length === next + 1, 5_000, `permit ${next}`);
        await sleep(50);
        expect(granted).to.have.length(next + 1);
      }
      for (const permit of granted.slice(3)) {
        holders -= 1;
        await permit.release();
      }
      expect(mostHolders).to.equal(2);
      const sequences = granted.map((permit) => sequenceOf(permit.path));
      expect(sequences).to.deep.equal([...sequences].sort((a, b) => a - b));
      expect(coordinator.stats()).to.include({ watchesOpen: 0, leases: 0 });
      expect(await childrenOf(db, '/semaphore/s')).to.deep.equal([]);
    });
  });
});
