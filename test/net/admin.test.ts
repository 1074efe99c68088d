/** The admin API's request decoder: typed requests from good input, typed errors from anything else, never a throw. */

import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { decodeAdminRequest } from '../../src/net/admin.ts';

const packr = new Packr({ useRecords: false });

describe('net: admin requests', () => {
  it('decodes every request kind', () => {
    expect(decodeAdminRequest(packr.pack({ type: 'status', id: 1 }))).to.deep.equal({ type: 'status', id: 1 });
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
