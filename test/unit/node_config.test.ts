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
    expect(refusal({ dataDir: '/tmp/x' })).to.contain('data_dir keeps the cluster record');
    expect(refusal({ join: ['127.0.0.1:1'] })).to.contain('join needs cluster_address');
    expect(refusal({ noLocalNamespace: true })).to.contain('needs a namespace of its own');
    expect(refusal({ clusterAddress: 'nowhere:port' })).to.contain('not host:port');
    expect(refusal({ config: file('badjoin.toml', 'cluster_address = ":1"\njoin = "127.0.0.1:2"\n') })).to.contain('join must be a list');
  });
});
