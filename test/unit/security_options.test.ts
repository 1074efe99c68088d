/** The embedding API's security options: how the cluster authenticates, and what counts as loopback. */

import { expect } from 'chai';
import { isLoopbackHost } from '../../src/net/address.ts';
import { clusterSecurityOf, unprotectedPorts } from '../../src/node/options.ts';

describe('security options', () => {
  it('cluster: tls, a secret of at least 32 bytes, or none; never both', () => {
    expect(clusterSecurityOf({})).to.deep.equal({ mode: 'none' });
    expect(clusterSecurityOf({ tls: { cert: 'C', key: 'K', ca: 'A' } })).to.deep.equal({ mode: 'tls', cert: 'C', key: 'K', ca: 'A' });
    const secret = clusterSecurityOf({ secret: 's'.repeat(32) });
    expect(secret.mode).to.equal('secret');
    expect(secret.mode === 'secret' ? secret.secret.byteLength : 0).to.equal(32);
    // A copy: the caller's buffer changing later does not change the node's secret.
    const bytes = new Uint8Array(40).fill(1);
    const copied = clusterSecurityOf({ secret: bytes });
    bytes.fill(2);
    expect(copied.mode === 'secret' ? copied.secret[0] : -1).to.equal(1);
    expect(() => clusterSecurityOf({ secret: 'short' })).to.throw(RangeError, 'at least 32 bytes');
    expect(() => clusterSecurityOf({ tls: { cert: 'C', key: 'K', ca: 'A' }, secret: 's'.repeat(32) })).to.throw(RangeError, 'not both');
    expect(() => clusterSecurityOf({ tls: { cert: '', key: 'K', ca: 'A' } })).to.throw(RangeError, 'cluster.tls.cert');
  });

  it('loopback: localhost, 127/8, ::1 and the IPv4-mapped form; wildcards and other addresses are not', () => {
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).to.equal(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '128.0.0.1', '127.0.0.1.example.com']) expect(isLoopbackHost(host), host).to.equal(false);
  });
});

describe('unprotected ports', () => {
  it('names a client or admin port beyond loopback with neither TLS nor a token, and only those', () => {
    const tls = { cert: 'C', key: 'K' };
    expect(unprotectedPorts({ clientApi: { host: '0.0.0.0', port: 1 }, adminApi: { host: '10.0.0.1', port: 2 } })).to.deep.equal([
      { port: 'client', host: '0.0.0.0' },
      { port: 'admin', host: '10.0.0.1' },
    ]);
    expect(unprotectedPorts({ clientApi: { host: '0.0.0.0', port: 1, tls }, adminApi: { host: '0.0.0.0', port: 2, authToken: 't' } })).to.deep.equal([]);
    expect(unprotectedPorts({ clientApi: { port: 1 }, adminApi: { host: '127.0.0.1', port: 2 } })).to.deep.equal([]);
    expect(unprotectedPorts({ clientApi: undefined, adminApi: undefined })).to.deep.equal([]);
  });
});
