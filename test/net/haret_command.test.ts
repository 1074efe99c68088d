/**
 * The `haret` command as a user runs it: `haret start` as its own process serving the client
 * API (stopped by SIGTERM, exiting cleanly), and `haret cli ADDRESS -e COMMAND` against it.
 */

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild } from '../runtime/helpers.ts';
import { makeTestCa } from './certs.ts';

const bin = fileURLToPath(new URL('../../bin/haret.js', import.meta.url));

/**
 * Runs `body` against `haret start --client-address 127.0.0.1:0 ...flags` once it serves the
 * default namespace (its client address, and its standard error so far); then stops it with
 * SIGTERM and expects exit code 0 (SIGKILL should anything fail).
 */
async function withServing(flags: readonly string[], body: (address: string, stderr: () => string) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [bin, 'start', '--client-address', '127.0.0.1:0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const line = await firstLine(child);
    const match = /serving default on 127\.0\.0\.1:(\d+)/.exec(line);
    expect(match, line).to.not.equal(null);
    await body(`127.0.0.1:${match?.[1]}`, () => err);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
  } finally {
    child.kill('SIGKILL');
  }
}

/** The first line `haret start` prints on standard output (the serving line), within 60 s. */
function firstLine(child: { readonly stdout: Readable }): Promise<string> {
  let out = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line: ${out}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.split('\n')[0] ?? '');
      }
    });
  });
}

describe('the haret command', function () {
  this.timeout(120_000);

  it('haret start serves the client API from a TOML config; haret cli -e runs commands against it; SIGTERM stops it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-start-'));
    const config = join(dir, 'node.toml');
    writeFileSync(config, 'name = "node-a"\nclient_address = "127.0.0.1:0"\nadmin_address = "127.0.0.1:0"\nlog_level = "silent"\n[[namespaces]]\nname = "ns1"\nreplicas = 3\n');
    const child = spawn(process.execPath, [bin, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await firstLine(child);
      const match = /^haret: node node-a serving ns1 on 127\.0\.0\.1:(\d+), admin on 127\.0\.0\.1:(\d+)$/.exec(line);
      expect(match, line).to.not.equal(null);
      const address = `127.0.0.1:${match?.[1]}`;
      const adminAddress = `127.0.0.1:${match?.[2]}`;
      const create = await runChild([bin, 'cli', address, '-n', 'ns1', '-e', 'create blob /x'], 30_000);
      expect(create.code, create.stderr).to.equal(0);
      const put = await runChild([bin, 'cli', address, '-n', 'ns1', '-e', 'put /x "from the cli"'], 30_000);
      expect(put.stdout).to.contain('ok · version 1');
      const get = await runChild([bin, 'cli', address, '-n', 'ns1', '-e', 'get /x'], 30_000);
      expect(get.stdout).to.match(/from the cli.* · version 1/);
      expect(get.stdout).to.match(/view \d+ · op \d+/);
      const missing = await runChild([bin, 'cli', address, '-n', 'ns1', '-e', 'get /missing'], 30_000);
      expect(missing.code).to.equal(1);
      // An error result goes to standard error, not among the results.
      expect(missing.stderr).to.contain('does_not_exist');
      expect(missing.stdout).to.equal('');
      const session = await runChild([bin, 'cli', address, '-n', 'ns1'], 30_000, 'get /x\nstatus\n');
      expect(session.code).to.equal(0);
      expect(session.stdout).to.contain('connected to node-a');
      const status = await runChild([bin, 'admin', adminAddress, '-e', 'status'], 30_000);
      expect(status.code, status.stderr).to.equal(0);
      expect(status.stdout).to.match(/ns1\/r\d\s+running\s+primary\s+normal view \d+ op \d+ commit \d+/);
      const health = await runChild([bin, 'admin', adminAddress, '-e', 'health'], 30_000);
      expect(health.code, health.stderr).to.equal(0);
      expect(health.stdout.trim()).to.equal('serving');
      const primary = await runChild([bin, 'admin', adminAddress, '-e', 'primary ns1'], 30_000);
      expect(JSON.parse(primary.stdout)).to.have.property('actor').that.matches(/^ns1\/r\d$/);
      const replica = await runChild([bin, 'admin', adminAddress, '-e', 'replica ns1/r1'], 30_000);
      expect(JSON.parse(replica.stdout)).to.include({ ns: 'ns1', index: 1, status: 'normal' });
      const join = await runChild([bin, 'admin', adminAddress, '-e', 'cluster join 127.0.0.1:1'], 30_000);
      expect(join.code).to.equal(1);
      expect(join.stderr).to.contain('not_available');
      // From a pipe every line runs; one that failed makes the exit status 1.
      const piped = await runChild([bin, 'admin', adminAddress], 30_000, 'namespaces\nmetrics\nbogus\nconfig\n');
      expect(piped.code).to.equal(1);
      expect(piped.stdout).to.contain('"ns1"').and.contain('"router"').and.contain('"tickMs"');
      expect(piped.stderr).to.contain('unknown admin command bogus');
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('haret start --worker-layout single: every replica in one worker, a warning when in memory; it serves; main_thread serves with its warning; a bad layout is refused with exit code 2', async () => {
    await withServing(['--worker-layout', 'single', '--log-level', 'silent'], async (address, stderr) => {
      const create = await runChild([bin, 'cli', address, '-e', 'create blob /x'], 30_000);
      expect(create.code, create.stderr).to.equal(0);
      const put = await runChild([bin, 'cli', address, '-e', 'put /x one-worker'], 30_000);
      expect(put.stdout).to.contain('ok · version 1');
      expect(stderr()).to.contain('--worker-layout single in memory: every replica of this node runs in one worker');
    });
    await withServing(['--worker-layout', 'main_thread', '--log-level', 'silent'], async (address, stderr) => {
      const put = await runChild([bin, 'cli', address, '-e', 'create blob /x'], 30_000);
      expect(put.code, put.stderr).to.equal(0);
      expect(stderr()).to.contain("--worker-layout main_thread in memory: every replica of this node runs on the process's main thread");
    });
    const bad = await runChild([bin, 'start', '--client-address', '127.0.0.1:0', '--worker-layout', 'one'], 30_000);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('worker_layout must be one of actor_per_worker, shared, single, main_thread, got one');
  });

  it('refuses an unknown config key and durable = true without a data directory, with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-config-'));
    try {
      const typo = join(dir, 'typo.toml');
      writeFileSync(typo, 'nmae = "x"\n');
      const bad = await runChild([bin, 'start', '--config', typo], 30_000);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain('unknown config key nmae');
      const durable = join(dir, 'durable.toml');
      writeFileSync(durable, 'durable = true\n');
      const notYet = await runChild([bin, 'start', '--config', durable], 30_000);
      expect(notYet.code).to.equal(2);
      expect(notYet.stderr).to.contain('durable = true needs data_dir');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TLS and tokens end to end: haret start with certificate and token files; haret cli and haret admin present the CA and the token; without them, refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haret-secure-'));
    const ca = makeTestCa();
    const stranger = makeTestCa('another CA');
    const write = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, text, { mode: 0o600 });
      return path;
    };
    const pem = ca.issue('node-s');
    const certFile = write('node.crt', pem.cert);
    const keyFile = write('node.key', pem.key);
    const caFile = write('ca.crt', ca.cert);
    const strangerCa = write('stranger.crt', stranger.cert);
    const token = write('client.token', 'client-token-1\n');
    const wrongToken = write('wrong.token', 'client-token-2\n');
    const adminToken = write('admin.token', 'admin-token-1\n');
    const config = write(
      'node.toml',
      `name = "node-s"\nclient_address = "127.0.0.1:0"\nadmin_address = "127.0.0.1:0"\nlog_level = "silent"\ntls_cert = "${certFile}"\ntls_key = "${keyFile}"\nauth_token_file = "${token}"\nadmin_token_file = "${adminToken}"\n[[namespaces]]\nname = "ns1"\nreplicas = 3\n`,
    );
    const child = spawn(process.execPath, [bin, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await firstLine(child);
      const match = /on 127\.0\.0\.1:(\d+), admin on 127\.0\.0\.1:(\d+)$/.exec(line);
      expect(match, line).to.not.equal(null);
      const address = `127.0.0.1:${match?.[1]}`;
      const adminAddress = `127.0.0.1:${match?.[2]}`;
      const create = await runChild([bin, 'cli', address, '-n', 'ns1', '--tls-ca', caFile, '--token-file', token, '-e', 'create blob /x'], 30_000);
      expect(create.code, create.stderr).to.equal(0);
      const get = await runChild([bin, 'cli', address, '-n', 'ns1', '--tls-ca', caFile, '--token-file', token, '-e', 'stat /x'], 30_000);
      expect(get.code, get.stderr).to.equal(0);
      const noToken = await runChild([bin, 'cli', address, '-n', 'ns1', '--tls-ca', caFile, '-e', 'stat /x'], 30_000);
      expect(noToken.code).to.not.equal(0);
      expect(noToken.stdout + noToken.stderr).to.contain('unauthenticated');
      const wrong = await runChild([bin, 'cli', address, '-n', 'ns1', '--tls-ca', caFile, '--token-file', wrongToken, '-e', 'stat /x'], 30_000);
      expect(wrong.code).to.not.equal(0);
      expect(wrong.stdout + wrong.stderr).to.contain('unauthenticated');
      const wrongCa = await runChild([bin, 'cli', address, '-n', 'ns1', '--tls-ca', strangerCa, '--token-file', token, '-e', 'stat /x'], 30_000);
      expect(wrongCa.code).to.not.equal(0);
      const plaintext = await runChild([bin, 'cli', address, '-n', 'ns1', '--token-file', token, '-e', 'stat /x'], 30_000);
      expect(plaintext.code).to.not.equal(0);
      expect(plaintext.stdout + plaintext.stderr).to.contain('--tls-ca');
      const status = await runChild([bin, 'admin', adminAddress, '--tls-ca', caFile, '--token-file', adminToken, '-e', 'status'], 30_000);
      expect(status.code, status.stderr).to.equal(0);
      expect(status.stdout).to.match(/ns1\/r\d\s+running/);
      // The configuration says the credentials are set, never what they are.
      const config = await runChild([bin, 'admin', adminAddress, '--tls-ca', caFile, '--token-file', adminToken, '-e', 'config'], 30_000);
      expect(config.code, config.stderr).to.equal(0);
      expect(config.stdout).to.contain('[redacted]').and.contain('BEGIN CERTIFICATE');
      for (const secret of ['PRIVATE KEY', 'client-token-1', 'admin-token-1']) expect(config.stdout).to.not.contain(secret);
      const adminNoToken = await runChild([bin, 'admin', adminAddress, '--tls-ca', caFile, '-e', 'namespace create x 3'], 30_000);
      expect(adminNoToken.code).to.not.equal(0);
      expect(adminNoToken.stdout + adminNoToken.stderr).to.contain('unauthenticated');
      const adminClientToken = await runChild([bin, 'admin', adminAddress, '--tls-ca', caFile, '--token-file', token, '-e', 'config'], 30_000);
      expect(adminClientToken.code).to.not.equal(0);
      expect(adminClientToken.stdout + adminClientToken.stderr).to.contain('unauthenticated');
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    } finally {
      child.kill('SIGKILL');
      ca.dispose();
      stranger.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
