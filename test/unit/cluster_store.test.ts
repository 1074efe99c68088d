/** The cluster record in a node's data directory: round trip, and refusals that name the file. */

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecord, parseNamespace, recordFileName, saveRecord, type ClusterRecord } from '../../src/node/cluster_store.ts';
import { startNode } from '../../src/node/index.ts';

describe('cluster record', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'haret-record-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const record: ClusterRecord = {
    version: 1,
    self: 'n1',
    members: [{ name: 'n1', clusterAddress: '127.0.0.1:7201', clientAddress: '127.0.0.1:7001', adminAddress: null, incarnation: 3 }],
    namespaces: [{ name: 'jobs', placement: ['n1', 'n2', 'n3'] }],
  };

  it('saves and loads a record; no record is null', () => {
    expect(loadRecord(dir)).to.equal(null);
    saveRecord(join(dir, 'nested'), record);
    expect(loadRecord(join(dir, 'nested'))).to.deep.equal(record);
  });

  it('refuses a file that is not a record, naming it', () => {
    writeFileSync(join(dir, recordFileName), '{"version": 1, "self": "n1", "members": [{"name": "bad name"}], "namespaces": []}');
    expect(() => loadRecord(dir)).to.throw(recordFileName);
    writeFileSync(join(dir, recordFileName), 'not json');
    expect(() => loadRecord(dir)).to.throw('is not JSON');
  });

  it('takes only odd replica counts up to 9 and valid names', () => {
    expect(parseNamespace({ name: 'a', placement: ['n1'] })).to.deep.equal({ name: 'a', placement: ['n1'] });
    expect(parseNamespace({ name: 'a', placement: ['n1', 'n2'] })).to.equal(null);
    expect(parseNamespace({ name: 'a', placement: Array.from({ length: 11 }, () => 'n1') })).to.equal(null);
    expect(parseNamespace({ name: 'a b', placement: ['n1'] })).to.equal(null);
    expect(parseNamespace({ name: 'a', placement: ['n 1'] })).to.equal(null);
  });

  it('a node refuses to start on another node\'s data directory', async () => {
    saveRecord(dir, record);
    let message = '';
    try {
      await startNode({ name: 'n2', namespaces: [], cluster: { port: 0 }, dataDir: dir, logLevel: 'silent' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.contain('holds the record of node n1');
  });
});
