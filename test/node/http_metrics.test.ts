/**
 * Issue 17, "Metrics and health": an embedded node serving HTTP (`startNode({ http })`).
 * A scrape after a known workload counts it exactly (requests by type and code, commits, the
 * commit latency histogram, on the embedded and the TCP path); /healthz, /readyz, /status.json,
 * 404, 405, HEAD and the request bounds; /readyz flips to 503 naming the replica when the
 * primary's worker is killed and back to 200 once it has recovered, and the scrape then shows
 * the restart, the view change and the recovery; the listener follows the admin port's TLS
 * and token; and a status that does not come in time is shown stale, never awaited.
 */

import { expect } from 'chai';
import { Registry } from 'prom-client';
import { connect } from '../../src/net/index.ts';
import { HaretError, startNode, type HaretNode, type NodeStatus } from '../../src/node/index.ts';
import { NodeMetrics } from '../../src/node/metrics.ts';
import { StatusSnapshots } from '../../src/node/status_snapshot.ts';
import { eventually } from '../runtime/helpers.ts';
import { makeTestCa } from '../net/certs.ts';
import { httpGet, parseExposition, samplesOf, sumOf, valueOf, type Sample } from '../net/http_get.ts';

function addressOf(node: HaretNode): string {
  const address = node.httpAddress;
  if (address === null) throw new Error('the node serves no HTTP');
  return `${address.host}:${address.port}`;
}

async function scrape(address: string, options: { ca?: string; token?: string } = {}): Promise<Sample[]> {
  const answer = await httpGet(address, '/metrics', options);
  expect(answer.status, answer.body).to.equal(200);
  return parseExposition(answer.body);
}

describe('HTTP metrics and health: an embedded node', function () {
  this.timeout(60_000);

  it('counts a known workload exactly: requests by type and code, commits and the latency histogram, embedded and over TCP', async () => {
    const node = await startNode({ logLevel: 'silent', clientApi: { port: 0 }, http: { address: '127.0.0.1:0' } });
    try {
      const address = addressOf(node);
      expect(node.httpAddress?.host).to.equal('127.0.0.1');
      const db = node.client();
      await db.create('/k', 'blob');
      for (let i = 0; i < 100; i += 1) await db.blobPut('/k', `v${i}`);
      for (let i = 0; i < 10; i += 1) await db.blobGet('/k');
      // A tree error still ran in the log: counted by its code, and committed.
      const missing = await db.blobGet('/missing').catch((error: unknown) => error);
      expect(missing).to.be.instanceOf(HaretError);
      expect((missing as HaretError).code).to.equal('does_not_exist');
      await db.leaseGrant(60_000);
      // A lease left to expire (its TTL counted by the primary's lease clock) deletes its node.
      const brief = await db.leaseGrant(200);
      await db.create('/brief', 'blob', { lease: brief.id });
      for (let waited = 0; waited < 5_000; waited += 50) {
        if ((await db.list('/')).entries.every((entry) => entry.name !== 'brief')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }

      const api = node.clientApiAddress;
      if (api === null) throw new Error('no client API');
      const remote = await connect([`${api.host}:${api.port}`]);
      try {
        const tcp = remote.client('default');
        for (let i = 0; i < 5; i += 1) await tcp.blobPut('/k', `t${i}`);
      } finally {
        await remote.close();
      }

      const answer = await httpGet(address, '/metrics');
      expect(answer.status).to.equal(200);
      expect(answer.headers['content-type']).to.equal(new Registry().contentType);
      const samples = parseExposition(answer.body);
      const embedded = { path: 'embedded', namespace: 'default' };
      expect(valueOf(samples, 'haret_requests_total', { ...embedded, type: 'create', code: 'ok' })).to.equal(2);
      expect(valueOf(samples, 'haret_requests_total', { ...embedded, type: 'blob_put', code: 'ok' })).to.equal(100);
      expect(valueOf(samples, 'haret_requests_total', { ...embedded, type: 'blob_get', code: 'ok' })).to.equal(10);
      expect(valueOf(samples, 'haret_requests_total', { ...embedded, type: 'blob_get', code: 'does_not_exist' })).to.equal(1);
      expect(valueOf(samples, 'haret_requests_total', { ...embedded, type: 'lease_grant', code: 'ok' })).to.equal(2);
      const lists = valueOf(samples, 'haret_requests_total', { ...embedded, type: 'list', code: 'ok' }) ?? 0;
      const total = 115 + lists;
      expect(sumOf(samples, 'haret_requests_total', embedded)).to.equal(total);
      expect(valueOf(samples, 'haret_commits_total', embedded)).to.equal(total);
      expect(valueOf(samples, 'haret_commit_latency_seconds_count', embedded)).to.equal(total);
      expect(valueOf(samples, 'haret_commit_latency_seconds_bucket', { ...embedded, le: '+Inf' })).to.equal(total);
      expect(valueOf(samples, 'haret_commit_latency_seconds_sum', embedded)).to.be.greaterThan(0);
      const buckets = samplesOf(samples, 'haret_commit_latency_seconds_bucket', embedded).map((sample) => sample.value);
      expect(buckets).to.deep.equal([...buckets].sort((a, b) => a - b));

      // The TCP path: each attempt the server forwarded; the five puts all ran, and every committed request is in the histogram.
      const tcp = { path: 'tcp', namespace: 'default' };
      expect(valueOf(samples, 'haret_requests_total', { ...tcp, type: 'blob_put', code: 'ok' })).to.equal(5);
      expect(valueOf(samples, 'haret_requests_total', { ...tcp, type: 'register', code: 'ok' })).to.be.at.least(1);
      const tcpCommits = valueOf(samples, 'haret_commits_total', tcp) ?? 0;
      expect(tcpCommits).to.be.at.least(6);
      expect(valueOf(samples, 'haret_commit_latency_seconds_count', tcp)).to.equal(tcpCommits);
      expect(valueOf(samples, 'haret_tcp_connections_total')).to.be.at.least(1);

      // Replica figures, read through the control plane at scrape time.
      for (const replica of ['0', '1', '2']) {
        const labels = { namespace: 'default', replica };
        expect(valueOf(samples, 'haret_replica_up', labels)).to.equal(1);
        expect(valueOf(samples, 'haret_replica_status', { ...labels, status: 'normal' })).to.equal(1);
        expect(valueOf(samples, 'haret_replica_commit_op', labels)).to.be.at.least(1);
        expect(valueOf(samples, 'haret_replica_client_sessions', labels)).to.be.at.least(1);
        const op = valueOf(samples, 'haret_replica_op', labels) ?? NaN;
        expect(valueOf(samples, 'haret_replica_log_length', labels)).to.equal(op - (valueOf(samples, 'haret_replica_checkpoint_op', labels) ?? NaN));
        expect(valueOf(samples, 'haret_view_changes_total', labels)).to.equal(0);
        // Batches: every applied entry holds at least one request.
        const entries = valueOf(samples, 'haret_entries_applied_total', labels) ?? 0;
        expect(entries).to.be.at.least(1);
        expect(valueOf(samples, 'haret_requests_applied_total', labels)).to.be.at.least(entries);
        expect(valueOf(samples, 'haret_watches_lagging_total', labels)).to.equal(0);
      }
      expect(sumOf(samples, 'haret_replica_primary', { namespace: 'default' })).to.equal(1);
      // The primary has applied the lease it granted (a backup applies it with the next commit it hears of).
      const primary = samplesOf(samples, 'haret_replica_primary', { namespace: 'default' }).find((sample) => sample.value === 1)?.labels['replica'];
      expect(valueOf(samples, 'haret_replica_leases', { namespace: 'default', replica: primary ?? '?' })).to.equal(1);
      expect(valueOf(samples, 'haret_lease_expiries_total', { namespace: 'default', replica: primary ?? '?' })).to.equal(1);
      expect(valueOf(samples, 'haret_namespace_has_primary', { namespace: 'default' })).to.equal(1);
      expect(valueOf(samples, 'haret_node_ready')).to.equal(1);
      expect(valueOf(samples, 'haret_status_stale')).to.equal(0);
      expect(valueOf(samples, 'haret_worker_state', { worker: 'proxy', state: 'running' })).to.equal(1);
      expect(valueOf(samples, 'haret_thread_event_loop_utilization', { thread: 'default.r0' })).to.be.within(0, 1);
      expect(valueOf(samples, 'haret_mailbox_depth', { actor: 'proxy', thread: 'proxy' })).to.be.at.least(0);
    } finally {
      await node.stop();
    }
  });

  it('answers /healthz, /readyz and /status.json; 404 elsewhere, 405 for other methods, HEAD without a body, and refuses bodies and huge headers', async () => {
    const node = await startNode({ logLevel: 'silent', http: { address: ':0' } });
    const address = addressOf(node);
    try {
      const health = await httpGet(address, '/healthz');
      expect([health.status, health.body]).to.deep.equal([200, 'ok\n']);
      const ready = await eventually('ready', async () => {
        const answer = await httpGet(address, '/readyz');
        return answer.status === 200 ? answer : null;
      });
      expect(ready.body).to.equal('ready\n');
      const status = await httpGet(address, '/status.json');
      expect(status.status).to.equal(200);
      expect(status.headers['content-type']).to.contain('application/json');
      const document = JSON.parse(status.body) as { node: string; serving: boolean; stale: boolean; actors: { actor: string; role: string | null; status: string | null }[] };
      expect(document.node).to.equal('haret');
      expect(document.serving).to.equal(true);
      expect(document.stale).to.equal(false);
      const replicas = document.actors.filter((actor) => actor.actor.startsWith('default/r'));
      expect(replicas.map((actor) => actor.actor).sort()).to.deep.equal(['default/r0', 'default/r1', 'default/r2']);
      expect(replicas.every((actor) => actor.status === 'normal')).to.equal(true);
      expect(replicas.filter((actor) => actor.role === 'primary')).to.have.length(1);

      expect((await httpGet(address, '/nothing-here')).status).to.equal(404);
      expect((await httpGet(address, '/metrics/extra')).status).to.equal(404);
      expect((await httpGet(address, '/healthz?verbose=1')).status).to.equal(200);
      const post = await httpGet(address, '/metrics', { method: 'POST' });
      expect(post.status).to.equal(405);
      expect(post.headers['allow']).to.equal('GET, HEAD');
      const head = await httpGet(address, '/metrics', { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect(head.body).to.equal('');
      expect(Number(head.headers['content-length'])).to.be.greaterThan(0);
      expect((await httpGet(address, '/healthz', { headers: { 'Content-Length': '5' }, body: 'hello' })).status).to.equal(413);
      expect((await httpGet(address, '/healthz', { headers: { 'X-Filler': 'x'.repeat(16 * 1024) } })).status).to.equal(431);
      // Still serving after the refusals.
      expect((await httpGet(address, '/healthz')).status).to.equal(200);
    } finally {
      await node.stop();
    }
    // Stopped: nothing listens there any more.
    const after = await httpGet(address, '/healthz', { timeoutMs: 2_000 }).catch((error: unknown) => error);
    expect(after).to.be.instanceOf(Error);
    expect((after as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
  });

  it('/readyz says 503, naming the replica, while the killed primary is down and recovering, and 200 once it is back; the scrape then shows the restart, view change and recovery', async () => {
    // A restart backoff of a second keeps the primary down long enough to be seen every time.
    const node = await startNode({ logLevel: 'silent', http: { address: '127.0.0.1:0' }, supervisor: { maxRestarts: 5, windowMs: 10_000, backoffMinMs: 1_000, backoffMaxMs: 2_000 } });
    try {
      const address = addressOf(node);
      await eventually('ready', async () => (await httpGet(address, '/readyz')).status === 200);
      await node.client().create('/before', 'blob');
      const primary = await node.primaryOf('default');
      if (primary === null) throw new Error('no primary');
      const victim = node.replicaId('default', primary);
      await node.faults.terminate(victim);

      const notReady = await httpGet(address, '/readyz');
      expect(notReady.status).to.equal(503);
      expect(notReady.body).to.contain(`replica ${victim}`);
      expect((await httpGet(address, '/healthz')).status).to.equal(200);
      const down = await scrape(address);
      expect(valueOf(down, 'haret_replica_up', { namespace: 'default', replica: String(primary) })).to.equal(0);
      expect(valueOf(down, 'haret_node_ready')).to.equal(0);

      const ready = await eventually('ready again', async () => {
        const answer = await httpGet(address, '/readyz');
        return answer.status === 200 ? answer : null;
      }, 30_000, 100);
      expect(ready.body).to.equal('ready\n');
      await node.client().create('/after', 'blob');

      const samples = await scrape(address);
      const victimLabels = { namespace: 'default', replica: String(primary) };
      expect(valueOf(samples, 'haret_worker_restarts_total', { worker: `default.r${primary}` })).to.equal(1);
      expect(valueOf(samples, 'haret_replica_up', victimLabels)).to.equal(1);
      expect(valueOf(samples, 'haret_recoveries_total', victimLabels)).to.equal(1);
      const survivors = ['0', '1', '2'].filter((replica) => replica !== String(primary));
      for (const replica of survivors) {
        const labels = { namespace: 'default', replica };
        expect(valueOf(samples, 'haret_view_changes_total', labels)).to.be.at.least(1);
        expect(valueOf(samples, 'haret_view_change_duration_seconds_count', labels)).to.be.at.least(1);
        expect(valueOf(samples, 'haret_replica_view', labels)).to.be.at.least(1);
      }
      expect(sumOf(samples, 'haret_views_started_total', { namespace: 'default' })).to.be.at.least(1);
      expect(valueOf(samples, 'haret_namespace_has_primary', { namespace: 'default' })).to.equal(1);
    } finally {
      await node.stop();
    }
  });

  it('follows the admin port: HTTPS with its certificate, and its token as a Bearer token for everything but /healthz', async () => {
    const ca = makeTestCa();
    const token = 'metrics-admin-token';
    const node = await startNode({ logLevel: 'silent', adminApi: { port: 0, tls: ca.issue('n1'), authToken: token }, http: { address: '127.0.0.1:0' } });
    try {
      const address = addressOf(node);
      const tls = { ca: ca.cert };
      expect((await httpGet(address, '/healthz', tls)).status).to.equal(200);
      const refused = await httpGet(address, '/metrics', tls);
      expect(refused.status).to.equal(401);
      expect(refused.headers['www-authenticate']).to.contain('Bearer');
      expect((await httpGet(address, '/status.json', { ...tls, token: 'wrong' })).status).to.equal(401);
      expect((await httpGet(address, '/readyz', tls)).status).to.equal(401);
      const samples = await scrape(address, { ...tls, token });
      expect(valueOf(samples, 'haret_node_serving')).to.equal(1);
      // Plain HTTP to the HTTPS port gets no answer it could read as one.
      const plain = await httpGet(address, '/healthz', { timeoutMs: 2_000 }).catch((error: unknown) => error);
      expect(plain instanceof Error || (plain as { status: number }).status === 400).to.equal(true);
    } finally {
      await node.stop();
      ca.dispose();
    }
  });
});

describe('HTTP metrics: a status that does not come in time', () => {
  /** A one-replica status, as node.status() gives it. */
  function statusWithReplica(): NodeStatus {
    const replica = {
      actor: 'default/r0',
      worker: 'default.r0',
      state: 'running' as const,
      restarts: 0,
      failure: null,
      retryAt: null,
      role: 'primary',
      ns: 'default',
      status: 'normal',
      view: 3,
      op: 10,
      commit: 10,
      mailboxDepth: 0,
      mailboxDropped: 0,
      watches: 0,
      leases: 0,
      detail: { role: 'primary', ns: 'default', index: 0, status: 'normal', view: 3, op: 10, commit: 10, checkpointOp: 8, events: { viewChanges: 2, viewsStarted: 1, recoveries: 0, stateTransfers: 0, viewChangesDone: 2, viewChangeMs: [40, 60] } },
    };
    return { actors: [replica], workers: [], serving: true, problems: [] };
  }

  it('shows the last status as stale, the replica absent, within the timeout, while the status call hangs', async () => {
    let calls = 0;
    const hung = new Promise<NodeStatus>(() => undefined);
    const snapshots = new StatusSnapshots(() => {
      calls += 1;
      return calls === 1 ? Promise.resolve(statusWithReplica()) : hung;
    }, 50);
    const metrics = new NodeMetrics(new Registry(), snapshots, { namespaces: () => [{ name: 'default', replicaCount: 1 }], unavailable: () => new Map(), cluster: () => null }, null);

    const first = parseExposition((await metrics.scrape()).body);
    expect(valueOf(first, 'haret_status_stale')).to.equal(0);
    expect(valueOf(first, 'haret_replica_up', { namespace: 'default', replica: '0' })).to.equal(1);
    expect(valueOf(first, 'haret_replica_log_length', { namespace: 'default', replica: '0' })).to.equal(2);
    expect(valueOf(first, 'haret_view_changes_total', { namespace: 'default', replica: '0' })).to.equal(2);
    expect(valueOf(first, 'haret_view_change_duration_seconds_count', { namespace: 'default', replica: '0' })).to.equal(2);
    expect(valueOf(first, 'haret_view_change_duration_seconds_sum', { namespace: 'default', replica: '0' })).to.be.closeTo(0.1, 1e-9);

    const started = performance.now();
    const second = parseExposition((await metrics.scrape()).body);
    expect(performance.now() - started).to.be.below(1_000);
    expect(valueOf(second, 'haret_status_stale')).to.equal(1);
    expect(valueOf(second, 'haret_status_timeouts_total')).to.equal(1);
    expect(valueOf(second, 'haret_replica_up', { namespace: 'default', replica: '0' })).to.equal(0);
    expect(valueOf(second, 'haret_replica_view', { namespace: 'default', replica: '0' })).to.equal(undefined);
    // Counters keep what they counted; the durations are not observed twice.
    expect(valueOf(second, 'haret_view_changes_total', { namespace: 'default', replica: '0' })).to.equal(2);
    expect(valueOf(second, 'haret_view_change_duration_seconds_count', { namespace: 'default', replica: '0' })).to.equal(2);
    // A third scrape shares the call still hanging rather than piling up another.
    await metrics.scrape();
    expect(calls).to.equal(2);
  });
});
