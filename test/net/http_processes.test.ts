/**
 * Issue 17, "Metrics and health": the HTTP listener of a real `haret start` process
 * (`--http-address 127.0.0.1:PORT`): it prints its address on a line of its own, serves
 * /readyz and /metrics (counting the requests remote clients sent through the TCP client API)
 * and /status.json (the same actors `haret admin status` lists), and stops cleanly on SIGTERM.
 * And how `haret start` reads the address: `:PORT` means 127.0.0.1, the TOML key
 * `http_address`, the flag winning over the file, and the admin port's TLS and token followed.
 */

import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, resolveStartConfig } from '../../src/cli/node_config.ts';
import { connect } from '../../src/net/index.ts';
import { adminStatus, freePorts, Processes, removeDir, startHaret, stdoutLine, tempDir, waitFor } from '../durability/processes.ts';
import { makeTestCa } from './certs.ts';
import { httpGet, parseExposition, valueOf } from './http_get.ts';

describe('HTTP metrics and health: a haret start process', function () {
  this.timeout(60_000);

  it('serves /readyz, /metrics counting its TCP clients and its disk, and /status.json as admin status shows it; SIGTERM stops it', async () => {
    const procs = new Processes();
    const dir = tempDir('haret-http-process-');
    try {
      const [port] = await freePorts(1);
      const node = await startHaret(procs, 'h1', ['--http-address', `127.0.0.1:${port}`, '--data-dir', dir]);
      const line = await stdoutLine(node, /^haret: http on (\S+) /, 10_000);
      const address = line[1] as string;
      expect(address).to.equal(`127.0.0.1:${port}`);
      await waitFor('ready', async () => (await httpGet(address, '/readyz')).status === 200, 30_000, 100);

      const remote = await connect([node.client]);
      try {
        const db = remote.client('default');
        await db.create('/p', 'blob');
        for (let i = 0; i < 3; i += 1) await db.blobPut('/p', `v${i}`);
      } finally {
        await remote.close();
      }

      const metrics = await httpGet(address, '/metrics');
      expect(metrics.status).to.equal(200);
      expect(metrics.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
      const samples = parseExposition(metrics.body);
      expect(valueOf(samples, 'haret_requests_total', { path: 'tcp', namespace: 'default', type: 'create', code: 'ok' })).to.equal(1);
      expect(valueOf(samples, 'haret_requests_total', { path: 'tcp', namespace: 'default', type: 'blob_put', code: 'ok' })).to.equal(3);
      for (const replica of ['0', '1', '2']) {
        expect(valueOf(samples, 'haret_replica_up', { namespace: 'default', replica })).to.equal(1);
        // Durable: every acknowledged write was synced, so each replica's store counted fsyncs and bytes.
        expect(valueOf(samples, 'haret_storage_fsyncs_total', { namespace: 'default', replica })).to.be.at.least(1);
        // fdatasync latency: appends counted with the time they took.
        const appends = valueOf(samples, 'haret_storage_appends_total', { namespace: 'default', replica }) ?? 0;
        expect(appends).to.be.at.least(1);
        expect(valueOf(samples, 'haret_storage_append_seconds_total', { namespace: 'default', replica })).to.be.greaterThan(0);
        expect(valueOf(samples, 'haret_storage_bytes_written_total', { namespace: 'default', replica })).to.be.greaterThan(0);
        expect(valueOf(samples, 'haret_storage_state', { namespace: 'default', replica, state: 'ok' })).to.equal(1);
      }
      expect(valueOf(samples, 'haret_node_ready')).to.equal(1);

      const status = await httpGet(address, '/status.json');
      expect(status.status).to.equal(200);
      const document = JSON.parse(status.body) as { node: string; actors: { actor: string }[] };
      expect(document.node).to.equal('h1');
      const listed = (await adminStatus(node.admin)).map((actor) => actor.actor).sort();
      expect(document.actors.map((actor) => actor.actor).sort()).to.deep.equal(listed);

      node.child.kill('SIGTERM');
      const exit = await Promise.race([node.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))]);
      expect(exit).to.deep.equal({ code: 0, signal: null });
    } finally {
      await procs.killAll();
      removeDir(dir);
    }
  });
});

describe('HTTP metrics and health: haret start configuration', () => {
  it('reads --http-address and the TOML http_address (":PORT" is 127.0.0.1; the flag wins), and follows the admin port TLS and token', () => {
    const dir = tempDir('haret-http-config-');
    const ca = makeTestCa();
    try {
      expect(resolveStartConfig({ httpAddress: ':7881' }).http).to.deep.equal({ address: '127.0.0.1:7881' });
      expect(resolveStartConfig({}).http).to.equal(undefined);
      const config = join(dir, 'node.toml');
      writeFileSync(config, 'http_address = "0.0.0.0:9100"\n');
      expect(resolveStartConfig({ config }).http).to.deep.equal({ address: '0.0.0.0:9100' });
      expect(resolveStartConfig({ config, httpAddress: '127.0.0.2:9101' }).http).to.deep.equal({ address: '127.0.0.2:9101' });
      expect(() => resolveStartConfig({ httpAddress: 'nowhere' })).to.throw(ConfigError);
      writeFileSync(config, 'http_address = 9100\n');
      expect(() => resolveStartConfig({ config })).to.throw(ConfigError, /http_address/);

      const pem = ca.issue('n1');
      writeFileSync(join(dir, 'n1.crt'), pem.cert);
      writeFileSync(join(dir, 'n1.key'), pem.key);
      writeFileSync(join(dir, 'admin.token'), 'the-admin-token\n');
      const secured = resolveStartConfig({ httpAddress: ':0', tlsCert: join(dir, 'n1.crt'), tlsKey: join(dir, 'n1.key'), adminTokenFile: join(dir, 'admin.token') });
      expect(secured.http).to.deep.equal({ address: '127.0.0.1:0', tls: { cert: pem.cert, key: pem.key }, authToken: 'the-admin-token' });
    } finally {
      ca.dispose();
      removeDir(dir);
    }
  });
});
