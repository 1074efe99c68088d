/**
 * A haret node as its own process (`bin/haret.js start`), for the network benchmark and the
 * multi-process tests: started with the given flags plus ephemeral client and admin ports,
 * known by the addresses its start line prints. TLS and tokens are flags like any other
 * (`tlsFlags` writes a node's PEM files and returns the `--tls-*` flags); the admin helpers
 * take the matching client options.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdminAnswer } from '../src/api/admin_wire.ts';
import { AdminClient, type AdminQuery } from '../src/net/admin_client.ts';
import type { TlsClientOptions } from '../src/net/tls.ts';

export const haretBin = fileURLToPath(new URL('../bin/haret.js', import.meta.url));

export type NodeProcess = {
  readonly name: string;
  readonly child: ChildProcess;
  /** host:port of its client API, admin API, and cluster links (null without). */
  readonly client: string;
  readonly admin: string;
  readonly cluster: string | null;
  readonly exited: Promise<number | null>;
};

const startLine = /^haret: node (\S+) serving .* on (\S+), admin on (\S+?)(?:, cluster on (\S+))?$/;

/** Starts `haret start --name NAME ...flags` and resolves once it prints its start line. */
export async function startNodeProcess(name: string, flags: readonly string[], startTimeoutMs = 60_000): Promise<NodeProcess> {
  const child = spawn(process.execPath, [haretBin, 'start', '--name', name, '--client-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0', '--log-level', 'silent', ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-4000);
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}: no start line within ${startTimeoutMs} ms: ${out} ${err}`));
    }, startTimeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.split('\n')[0] ?? '');
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${err}`));
    });
  });
  const match = startLine.exec(line);
  if (match === null) {
    child.kill('SIGKILL');
    throw new Error(`${name}: unexpected start line ${line}`);
  }
  return { name, child, client: match[2] as string, admin: match[3] as string, cluster: match[4] ?? null, exited };
}

/** How an admin connection reaches a node started with TLS or an admin token (nothing: plain TCP, no token). */
export type AdminAccess = { readonly token?: string; readonly tls?: TlsClientOptions };

/**
 * Writes a node's certificate, key and the CA (PEM) into `dir` (private to this user: the key
 * is a secret even in a benchmark) and returns the flags that make `haret start` use them:
 * mutual TLS on the cluster links, TLS on the client and admin ports.
 */
export function tlsFlags(dir: string, name: string, pem: { readonly cert: string; readonly key: string; readonly ca: string }): string[] {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), ca: join(dir, 'ca.crt') };
  writeFileSync(files.cert, pem.cert, { mode: 0o600 });
  writeFileSync(files.key, pem.key, { mode: 0o600 });
  writeFileSync(files.ca, pem.ca, { mode: 0o600 });
  return ['--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca];
}

/** One admin request on a connection of its own. */
export async function adminRequest(address: string, query: AdminQuery, access: AdminAccess = {}): Promise<AdminAnswer> {
  const client = await AdminClient.open(address, access);
  try {
    return await client.request(query);
  } finally {
    client.close();
  }
}

/** One admin request whose answer must be `ok`: its value, or an Error with the node's message. */
export async function adminValue(address: string, query: AdminQuery, access: AdminAccess = {}): Promise<unknown> {
  const answer = await adminRequest(address, query, access);
  if (answer.type !== 'ok') throw new Error(`${query.type}: ${answer.message}`);
  return answer.value;
}

/** Stops a node process with SIGTERM (a clean stop), SIGKILL after `graceMs`. */
export async function stopNodeProcess(node: NodeProcess, graceMs = 10_000): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill('SIGTERM');
  const timer = setTimeout(() => node.child.kill('SIGKILL'), graceMs);
  await node.exited;
  clearTimeout(timer);
}
