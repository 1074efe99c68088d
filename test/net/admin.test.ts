/**
 * The admin API's request decoder: typed requests from good input, typed errors from anything
 * else, never a throw; every field from outside is bounded. And the admin client loads no node
 * code.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { join, relative } from 'node:path';
import { decodeAdminAnswer, decodeAdminRequest } from '../../src/api/admin_wire.ts';
import { repoRoot, runtimeImports } from './import_graph.ts';

const packr = new Packr({ useRecords: false });

describe('net: admin requests', () => {
  it('decodes every request kind', () => {
    expect(decodeAdminRequest(packr.pack({ type: 'status', id: 1 }))).to.deep.equal({ type: 'status', id: 1 });
    expect(decodeAdminRequest(packr.pack({ type: 'hello', id: 0 }))).to.deep.equal({ type: 'hello', id: 0 });
    expect(decodeAdminRequest(packr.pack({ type: 'hello', id: 0, token: 't'.repeat(1024) }))).to.deep.equal({ type: 'hello', id: 0, token: 't'.repeat(1024) });
    expect(decodeAdminRequest(packr.pack({ type: 'primary', id: 2, ns: 'a', extra: true }))).to.deep.equal({ type: 'primary', id: 2, ns: 'a' });
    expect(decodeAdminRequest(packr.pack({ type: 'replica', id: 3, actor: 'a/r0' }))).to.deep.equal({ type: 'replica', id: 3, actor: 'a/r0' });
    expect(decodeAdminRequest(packr.pack({ type: 'cluster_join', id: 4, address: '127.0.0.1:7000' }))).to.deep.equal({ type: 'cluster_join', id: 4, address: '127.0.0.1:7000' });
    expect(decodeAdminRequest(packr.pack({ type: 'cluster_status', id: 7 }))).to.deep.equal({ type: 'cluster_status', id: 7 });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 8, ns: 'jobs' }))).to.deep.equal({ type: 'namespace_create', id: 8, ns: 'jobs', replicas: 3, nodes: [] });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 9, ns: 'jobs', replicas: 5, nodes: ['a', 'b'] }))).to.deep.equal({ type: 'namespace_create', id: 9, ns: 'jobs', replicas: 5, nodes: ['a', 'b'] });
  });

  it('answers malformed input with a typed error', () => {
    expect(decodeAdminRequest(new Uint8Array([0xc1]))).to.include({ type: 'error', code: 'malformed', id: null });
    expect(decodeAdminRequest(packr.pack({ type: 'status', id: -1 }))).to.include({ type: 'error', code: 'malformed' });
    expect(decodeAdminRequest(packr.pack({ type: 'primary', id: 5 }))).to.include({ type: 'error', code: 'malformed', id: 5 });
    expect(decodeAdminRequest(packr.pack({ type: 'drop_tables', id: 6 }))).to.include({ type: 'error', code: 'malformed', id: 6 });
    expect(decodeAdminRequest(packr.pack({ type: 'cluster_join', id: 10 }))).to.include({ type: 'error', code: 'malformed', id: 10 });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 11, ns: 'x', nodes: [1] }))).to.include({ type: 'error', code: 'malformed', id: 11 });
  });

  it('bounds every field from outside before it becomes a request', () => {
    const tooLong = (n: number): string => 'x'.repeat(n + 1);
    expect(decodeAdminRequest(packr.pack({ type: 'primary', id: 1, ns: tooLong(64) }))).to.include({ type: 'error', code: 'malformed', id: 1 });
    expect(decodeAdminRequest(packr.pack({ type: 'primary', id: 1, ns: '' }))).to.include({ type: 'error', code: 'malformed', id: 1 });
    expect(decodeAdminRequest(packr.pack({ type: 'replica', id: 2, actor: tooLong(256) }))).to.include({ type: 'error', code: 'malformed', id: 2 });
    expect(decodeAdminRequest(packr.pack({ type: 'cluster_join', id: 3, address: tooLong(1024) }))).to.include({ type: 'error', code: 'malformed', id: 3 });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 4, ns: 'x', replicas: 1.5 }))).to.include({ type: 'error', code: 'malformed', id: 4 });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 5, ns: 'x', replicas: 2 ** 40 }))).to.include({ type: 'error', code: 'malformed', id: 5 });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 6, ns: 'x', nodes: Array.from({ length: 65 }, (_, i) => `n${i}`) }))).to.include({ type: 'error', code: 'malformed', id: 6 });
    expect(decodeAdminRequest(packr.pack({ type: 'namespace_create', id: 7, ns: 'x', nodes: [tooLong(64)] }))).to.include({ type: 'error', code: 'malformed', id: 7 });
    expect(decodeAdminRequest(packr.pack({ type: 'status', id: 2 ** 53 }))).to.include({ type: 'error', code: 'malformed', id: null });
    for (const token of ['', tooLong(1024), 7, ['t']]) expect(decodeAdminRequest(packr.pack({ type: 'hello', id: 8, token }))).to.include({ type: 'error', code: 'malformed', id: 8 });
  });

  it('reads answers strictly: a known code, an id or nil, a bounded message; anything else is not an answer', () => {
    expect(decodeAdminAnswer(packr.pack({ type: 'ok', id: 1, value: { a: 1 } }))).to.deep.equal({ type: 'ok', id: 1, value: { a: 1 } });
    expect(decodeAdminAnswer(packr.pack({ type: 'error', id: null, code: 'failed', message: 'no' }))).to.deep.equal({ type: 'error', id: null, code: 'failed', message: 'no' });
    expect(decodeAdminAnswer(packr.pack({ type: 'error', id: null, code: 'unauthenticated', message: 'no' }))).to.deep.equal({ type: 'error', id: null, code: 'unauthenticated', message: 'no' });
    expect(decodeAdminAnswer(packr.pack({ type: 'error', id: 2, code: 'bogus', message: 'no' }))).to.equal(null);
    expect(decodeAdminAnswer(packr.pack({ type: 'ok', id: -1, value: 1 }))).to.equal(null);
    expect(decodeAdminAnswer(packr.pack({ type: 'error', id: 3, code: 'failed', message: 'x'.repeat(64 * 1024 + 1) }))).to.equal(null);
    expect(decodeAdminAnswer(packr.pack([1, 2]))).to.equal(null);
    expect(decodeAdminAnswer(new Uint8Array([0xc1]))).to.equal(null);
  });

  it('never throws on random bytes or arbitrary msgpack', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 256 }), fc.anything().map((value) => new Uint8Array(packr.pack(value)))), (bytes) => {
        const result = decodeAdminRequest(bytes);
        expect(result).to.be.an('object').with.property('type');
      }),
      { numRuns: 1000 },
    );
  });
});

describe('net: the admin client', () => {
  it('loads no node code: its run-time imports are src/api, src/base and its own socket files, with no logger, runtime or workers', () => {
    const { files, packages } = runtimeImports(join(repoRoot, 'src/net/admin_client.ts'));
    const loaded = [...files].map((file) => relative(repoRoot, file)).sort();
    expect(loaded.filter((file) => file.startsWith('src/node/') || file.startsWith('runtime/') || file.startsWith('actors/'))).to.deep.equal([]);
    expect(loaded.filter((file) => file.startsWith('src/net/'))).to.deep.equal(['src/net/address.ts', 'src/net/admin_client.ts', 'src/net/framed_socket.ts', 'src/net/tls.ts']);
    for (const forbidden of ['pino', 'piscina', 'comlink', 'node:worker_threads']) expect(packages.has(forbidden), forbidden).to.equal(false);
  });
});
