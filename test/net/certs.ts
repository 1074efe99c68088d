/**
 * Certificates for tests, made at test time with openssl (Debian's, as docs/security.md
 * shows): never a committed private key. A CA, then one certificate per name signed by it,
 * with the name as CN and as a DNS subjectAltName, plus IP 127.0.0.1 so a client can verify
 * a server it reaches by address.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Pem = { readonly cert: string; readonly key: string };
export type TestCa = Pem & {
  /** A certificate for `name`, signed by this CA (CN = name, SAN DNS:name, IP:127.0.0.1). */
  issue(name: string): Pem;
  /** Removes the working directory. */
  dispose(): void;
};

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** A fresh CA (EC P-256: fast to make, what docs/security.md recommends). */
export function makeTestCa(subject = 'haret test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'haret-certs-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${subject}`], dir);
  let serial = 1;
  return {
    cert: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    key: readFileSync(join(dir, 'ca.key'), 'utf8'),
    issue(name: string): Pem {
      const base = `n${serial}`;
      writeFileSync(join(dir, `${base}.ext`), `subjectAltName=DNS:${name},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', '2', '-out', `${base}.crt`, '-extfile', `${base}.ext`], dir);
      serial += 1;
      return { cert: readFileSync(join(dir, `${base}.crt`), 'utf8'), key: readFileSync(join(dir, `${base}.key`), 'utf8') };
    },
    dispose(): void {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
