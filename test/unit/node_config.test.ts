/** `haret start` configuration: TOML and flags into startNode options, with typed refusals. */

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, resolveStartConfig } from '../../src/cli/node_config.ts';

describe('haret start configuration', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'haret-config-unit-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads a cluster member from TOML: cluster address, data directory, join list, no namespace of its own', () => {
    const config = file('member.toml', 'name = "n2"\nclient_address = "127.0.0.1:7002"\ncluster_address = ":7202"\ndata_dir = "/tmp/n2"\njoin = ["127.0.0.1:7201"]\nnamespaces = []\n');
    expect(resolveStartConfig({ config })).to.deep.equal({
      name: 'n2',
      namespaces: [],
      clientApi: { host: '127.0.0.1', port: 7002 },
      cluster: { host: '127.0.0.1', port: 7202, join: ['127.0.0.1:7201'] },
      dataDir: '/tmp/n2',
    });
  });

  it('lets flags win over the file', () => {
    const config = file('flags.toml', 'name = "n1"\ncluster_address = "127.0.0.1:7201"\n');
    const resolved = resolveStartConfig({ config, name: 'n9', clusterAddress: '127.0.0.1:7209', join: ['127.0.0.1:1'], noLocalNamespace: true });
    expect(resolved.name).to.equal('n9');
    expect(resolved.cluster).to.deep.equal({ host: '127.0.0.1', port: 7209, join: ['127.0.0.1:1'] });
    expect(resolved.namespaces).to.deep.equal([]);
  });

  it('data_dir is durable unless durable = false or --no-durable; --restore NS=FILE maps namespaces to backups', () => {
    expect(resolveStartConfig({ dataDir: '/tmp/x' })).to.not.have.property('durable');
    expect(resolveStartConfig({ dataDir: '/tmp/x', noDurable: true })).to.include({ durable: false });
    expect(resolveStartConfig({ config: file('no_durable.toml', 'data_dir = "/tmp/x"\ndurable = false\n') })).to.include({ durable: false });
    expect(resolveStartConfig({ dataDir: '/tmp/x', restore: ['default=/tmp/b=c'] }).restore).to.deep.equal({ default: '/tmp/b=c' });
  });

  it('worker_layout (or --worker-layout, which wins) picks how replicas share worker threads; absent, the default applies', () => {
    expect(resolveStartConfig({})).to.not.have.property('workerLayout');
    expect(resolveStartConfig({ config: file('single.toml', 'worker_layout = "single"\n') })).to.include({ workerLayout: 'single' });
    expect(resolveStartConfig({ config: file('shared.toml', 'worker_layout = "shared"\n'), workerLayout: 'actor_per_worker' })).to.include({ workerLayout: 'actor_per_worker' });
    expect(resolveStartConfig({ workerLayout: 'main_thread' })).to.include({ workerLayout: 'main_thread' });
    expect(() => resolveStartConfig({ workerLayout: 'one' })).to.throw(ConfigError, 'worker_layout must be one of actor_per_worker, shared, single, main_thread, got one');
    expect(() => resolveStartConfig({ config: file('layout_number.toml', 'worker_layout = 1\n') })).to.throw(ConfigError, 'worker_layout must be one of');
  });

  it('refuses what cannot work, naming it', () => {
    const refusal = (flags: Parameters<typeof resolveStartConfig>[0]): string => {
      try {
        resolveStartConfig(flags);
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(refusal({ config: file('durable.toml', 'durable = true\n') })).to.contain('durable = true needs data_dir');
    expect(refusal({ config: file('durable_text.toml', 'data_dir = "/tmp/x"\ndurable = "yes"\n') })).to.contain('durable must be true or false');
    expect(refusal({ dataDir: '/tmp/x', restore: ['default'] })).to.contain('expected NS=FILE');
    expect(refusal({ restore: ['default=/tmp/b'] })).to.contain('--restore needs a durable node');
    expect(refusal({ dataDir: '/tmp/x', noDurable: true, restore: ['default=/tmp/b'] })).to.contain('--restore needs a durable node');
    expect(refusal({ join: ['127.0.0.1:1'] })).to.contain('join needs cluster_address');
    expect(refusal({ noLocalNamespace: true })).to.contain('needs a namespace of its own');
    expect(refusal({ clusterAddress: 'nowhere:port' })).to.contain('not host:port');
    expect(refusal({ config: file('badjoin.toml', 'cluster_address = ":1"\njoin = "127.0.0.1:2"\n') })).to.contain('join must be a list');
  });

  describe('credentials (docs/security.md)', () => {
    const pem = (what: string): string => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
    const refusal = (flags: Parameters<typeof resolveStartConfig>[0]): string => {
      try {
        resolveStartConfig(flags);
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('expected a ConfigError');
    };

    it('a certificate and key serve TLS on the client and admin ports; with a CA and cluster links they are the members\' mutual TLS', () => {
      const tlsCert = file('n.crt', pem('CERTIFICATE'));
      const tlsKey = file('n.key', pem('PRIVATE KEY'));
      const tlsCa = file('ca.crt', pem('CERTIFICATE'));
      const resolved = resolveStartConfig({ tlsCert, tlsKey, tlsCa, adminAddress: ':7101', clusterAddress: ':7201' });
      expect(resolved.clientApi).to.deep.include({ tls: { cert: pem('CERTIFICATE'), key: pem('PRIVATE KEY') } });
      expect(resolved.adminApi).to.deep.include({ tls: { cert: pem('CERTIFICATE'), key: pem('PRIVATE KEY') } });
      expect(resolved.cluster).to.deep.include({ tls: { cert: pem('CERTIFICATE'), key: pem('PRIVATE KEY'), ca: pem('CERTIFICATE') } });
      // TOML names the same files.
      const config = file('tls.toml', `tls_cert = "${tlsCert}"\ntls_key = "${tlsKey}"\ntls_ca = "${tlsCa}"\ncluster_address = ":7201"\n`);
      expect(resolveStartConfig({ config }).cluster).to.deep.include({ tls: { cert: pem('CERTIFICATE'), key: pem('PRIVATE KEY'), ca: pem('CERTIFICATE') } });
    });

    it('a member with a cluster secret may still serve TLS on its client and admin ports', () => {
      const resolved = resolveStartConfig({ tlsCert: file('s.crt', pem('CERTIFICATE')), tlsKey: file('s.key', pem('PRIVATE KEY')), clusterAddress: ':7201', clusterSecretFile: file('s.secret', 'q'.repeat(32)) });
      expect(resolved.clientApi).to.deep.include({ tls: { cert: pem('CERTIFICATE'), key: pem('PRIVATE KEY') } });
      expect(resolved.cluster?.secret).to.deep.equal(new Uint8Array(32).fill(0x71));
      expect(resolved.cluster).to.not.have.property('tls');
    });

    it('a cluster secret file (>= 32 bytes) and token files (first line, trimmed)', () => {
      const secret = file('cluster.secret', 'x'.repeat(32));
      const token = file('client.token', '  s3cret-token \nignored second line\n');
      const adminToken = file('admin.token', 'admin-token\n');
      const resolved = resolveStartConfig({ clusterAddress: ':7201', clusterSecretFile: secret, authTokenFile: token, adminAddress: ':7101', adminTokenFile: adminToken });
      expect(resolved.cluster?.secret).to.deep.equal(new Uint8Array(32).fill(0x78));
      expect(resolved.clientApi).to.deep.include({ authToken: 's3cret-token' });
      expect(resolved.adminApi).to.deep.include({ authToken: 'admin-token' });
    });

    it('refuses credentials that cannot work, naming the file or the rule', () => {
      const cert = file('c.crt', pem('CERTIFICATE'));
      const key = file('c.key', pem('PRIVATE KEY'));
      expect(refusal({ tlsCert: cert })).to.contain('tls_cert and tls_key go together');
      expect(refusal({ tlsCert: cert, tlsKey: key, clusterAddress: ':7201' })).to.contain('needs tls_ca (mutual TLS between members) or cluster_secret_file');
      expect(refusal({ tlsCert: file('plain.txt', 'not a certificate'), tlsKey: key })).to.contain('is not a PEM file');
      expect(refusal({ tlsCert: join(dir, 'missing.crt'), tlsKey: key })).to.contain('cannot read tls_cert');
      expect(refusal({ clusterAddress: ':7201', clusterSecretFile: file('short.secret', 'too short') })).to.contain('at least 32 bytes');
      expect(refusal({ clusterSecretFile: file('lonely.secret', 'y'.repeat(32)) })).to.contain('needs cluster_address');
      expect(refusal({ authTokenFile: file('empty.token', '\n') })).to.contain('auth_token_file');
      expect(refusal({ authTokenFile: file('long.token', 'z'.repeat(1025)) })).to.contain('1..1024 characters');
      expect(refusal({ tlsCert: cert, tlsKey: key, tlsCa: cert, clusterAddress: ':7201', clusterSecretFile: file('both.secret', 'w'.repeat(32)) })).to.contain('not both');
    });
  });
});

describe('node options: the worker layout by default', () => {
  it('a durable node (dataDir) puts its replicas in one worker; in memory (or durable: false) a worker each; an explicit layout wins', async () => {
    const { resolveOptions } = await import('../../src/node/options.ts');
    expect(resolveOptions({}).workerLayout).to.equal('actor_per_worker');
    expect(resolveOptions({ dataDir: '/tmp/x' }).workerLayout).to.equal('single');
    expect(resolveOptions({ dataDir: '/tmp/x', durable: false }).workerLayout).to.equal('actor_per_worker');
    expect(resolveOptions({ dataDir: '/tmp/x', workerLayout: 'actor_per_worker' }).workerLayout).to.equal('actor_per_worker');
    expect(resolveOptions({ workerLayout: 'single' }).workerLayout).to.equal('single');
    expect(resolveOptions({ workerLayout: 'main_thread' }).workerLayout).to.equal('main_thread');
    expect(resolveOptions({ dataDir: '/tmp/x', durable: false, workerLayout: 'main_thread' }).workerLayout).to.equal('main_thread');
    expect(resolveOptions({ dataDir: '/tmp/x', workerLayout: 'main_thread' }).workerLayout).to.equal('main_thread');
    expect(() => resolveOptions({ workerLayout: 'one' as never })).to.throw(RangeError, 'workerLayout must be actor_per_worker, shared, single or main_thread');
  });
});
