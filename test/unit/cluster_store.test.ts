/** The cluster record in a node's data directory: round trip, and refusals that name the file. */

import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecord, membersMax, parseMember, parseNamespace, recordFileName, saveRecord, type ClusterRecord } from '../../src/node/cluster_store.ts';
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
    namespaces: [{ name: 'jobs', nodes: ['n1', 'n2', 'n3'] }],
  };

  it('saves and loads a record; no record is null', () => {
    expect(loadRecord(dir)).to.equal(null);
    saveRecord(join(dir, 'nested'), record);
    expect(loadRecord(join(dir, 'nested'))).to.deep.equal(record);
  });

  it('loads a record written before the rename (node list under `placement`) and writes it back under `nodes`', () => {
    const old = { ...record, namespaces: [{ name: 'jobs', placement: ['n1', 'n2', 'n3'] }] };
    writeFileSync(join(dir, recordFileName), JSON.stringify(old));
    const loaded = loadRecord(dir);
    expect(loaded).to.deep.equal(record);
    saveRecord(dir, loaded ?? record);
    const written = JSON.parse(readFileSync(join(dir, recordFileName), 'utf8')) as { namespaces: Record<string, unknown>[] };
    expect(written.namespaces[0]).to.deep.equal({ name: 'jobs', nodes: ['n1', 'n2', 'n3'] });
  });

  it('refuses, naming the field: too many members, over-long names, a negative or fractional incarnation', () => {
    const member = (name: string, incarnation: unknown = 1) => ({ name, clusterAddress: '127.0.0.1:1', clientAddress: null, adminAddress: null, incarnation });
    const write = (value: unknown): void => writeFileSync(join(dir, recordFileName), JSON.stringify(value));
    write({ ...record, members: Array.from({ length: membersMax + 1 }, (_, i) => member(`n${i}`)) });
    expect(() => loadRecord(dir)).to.throw(`members must have at most ${membersMax} elements`);
    write({ ...record, members: [member('n'.repeat(65))] });
    expect(() => loadRecord(dir)).to.throw('members[0].name must be 1..64 characters');
    write({ ...record, members: [member('n1', -1)] });
    expect(() => loadRecord(dir)).to.throw('members[0].incarnation must be a non-negative integer');
    write({ ...record, members: [member('n1', 1.5)] });
    expect(() => loadRecord(dir)).to.throw('members[0].incarnation');
    write({ ...record, version: 2 });
    expect(() => loadRecord(dir)).to.throw('version must be an integer in 1..1');
    write({ ...record, namespaces: [{ name: 'jobs' }] });
    expect(() => loadRecord(dir)).to.throw('missing field namespaces[0].nodes');
    write([]);
    expect(() => loadRecord(dir)).to.throw('is not a haret cluster record');
  });

  it('reads a member from a peer: defaults for absent optional fields, null for anything else', () => {
    expect(parseMember({ name: 'n1', clusterAddress: '127.0.0.1:1' })).to.deep.equal({ name: 'n1', clusterAddress: '127.0.0.1:1', clientAddress: null, adminAddress: null, incarnation: 0 });
    expect(parseMember({ name: 'n1', clusterAddress: 'has space:1' })).to.equal(null);
    expect(parseMember({ name: 'n1', clusterAddress: '127.0.0.1:1', clientAddress: 7 })).to.equal(null);
    expect(parseMember(Object.create({ name: 'n1', clusterAddress: '127.0.0.1:1' }))).to.equal(null);
    expect(parseMember(null)).to.equal(null);
  });

  it('refuses a file that is not a record, naming it', () => {
    writeFileSync(join(dir, recordFileName), '{"version": 1, "self": "n1", "members": [{"name": "bad name"}], "namespaces": []}');
    expect(() => loadRecord(dir)).to.throw(recordFileName);
    writeFileSync(join(dir, recordFileName), 'not json');
    expect(() => loadRecord(dir)).to.throw('is not JSON');
  });

  it('takes only odd replica counts up to 9 and valid names', () => {
    expect(parseNamespace({ name: 'a', nodes: ['n1'] })).to.deep.equal({ name: 'a', nodes: ['n1'] });
    expect(parseNamespace({ name: 'a', nodes: ['n1', 'n2'] })).to.equal(null);
    expect(parseNamespace({ name: 'a', nodes: Array.from({ length: 11 }, () => 'n1') })).to.equal(null);
    expect(parseNamespace({ name: 'a b', nodes: ['n1'] })).to.equal(null);
    expect(parseNamespace({ name: 'a', nodes: ['n 1'] })).to.equal(null);
  });

  it('takes the node list under its old name `placement` too (records and peers from before the rename)', () => {
    expect(parseNamespace({ name: 'a', placement: ['n1', 'n2', 'n3'] })).to.deep.equal({ name: 'a', nodes: ['n1', 'n2', 'n3'] });
    expect(parseNamespace({ name: 'a', placement: ['n1', 'n2'] })).to.equal(null);
    expect(parseNamespace({ name: 'a' })).to.equal(null);
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
