/**
 * A 3-member etcd cluster on 127.0.0.1 for the durable benchmark's comparison: the `etcd`
 * binary from the PATH (Debian: `apt-get install etcd-server etcd-client`; the bench never
 * installs it), each member with a temporary data directory and ports of its own, etcd's
 * defaults otherwise (fsync of its WAL on every raft batch, as a user gets it out of the box).
 *
 * Bounded in time: the cluster must accept a put within `startTimeoutMs`, every call has a
 * deadline, and `stop` sends SIGTERM, then SIGKILL after a grace period, and removes the data
 * directories. Members are also SIGKILLed when this process exits any other way, so a crashed
 * bench leaves no etcd behind.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Etcd3 } from 'etcd3';

/** The path of an executable `etcd` on the PATH, or null. */
export function findEtcd(pathVariable = process.env['PATH'] ?? ''): string | null {
  for (const dir of pathVariable.split(delimiter)) {
    if (dir.length === 0) continue;
    const candidate = join(dir, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here (or not executable): the next directory.
    }
  }
  return null;
}

/** What the durable bench drives: the two calls of the runtime bench's closed loop, on etcd keys. */
export type EtcdKeyValue = {
  blobPut(path: string, value: Uint8Array): Promise<unknown>;
  blobGet(path: string): Promise<unknown>;
};

export type EtcdCluster = {
  /** The members' client URLs (http://127.0.0.1:port). */
  readonly endpoints: readonly string[];
  readonly dataDir: string;
  readonly version: string;
  /** Puts and gets through the `etcd3` client (gRPC), each call with a deadline. */
  readonly kv: EtcdKeyValue;
  /** Closes the client, stops every member and removes the data directories. */
  stop(): Promise<void>;
};

export type EtcdClusterOptions = {
  readonly binary: string;
  /** Members; default 3. */
  readonly members?: number;
  /** The cluster must accept a put within this long. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Deadline of every put and get. Default 10 s. */
  readonly callTimeoutMs?: number;
  /** SIGKILL a member that has not exited this long after SIGTERM. Default 5 s. */
  readonly stopGraceMs?: number;
};

/** Members alive in this process: killed outright if the process exits before `stop`. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers run synchronously: kill() is a synchronous signal send.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** A port free on 127.0.0.1 right now (the kernel's choice for port 0). */
async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** `etcd --version`'s first line, e.g. "etcd Version: 3.4.23". */
async function etcdVersion(binary: string): Promise<string> {
  return await new Promise<string>((resolve) => {
    const child = spawn(binary, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', () => resolve('unknown'));
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out.split('\n')[0]?.trim() || 'unknown');
    });
  });
}

type Member = { readonly name: string; readonly child: ChildProcess; readonly exited: Promise<void>; stderr: string };

async function stopMember(member: Member, graceMs: number): Promise<void> {
  if (member.child.exitCode === null && member.child.signalCode === null) {
    member.child.kill('SIGTERM');
    const timer = setTimeout(() => member.child.kill('SIGKILL'), graceMs);
    await member.exited;
    clearTimeout(timer);
  }
  live.delete(member.child);
}

/**
 * Starts a cluster and waits until it accepts a put. Ports are picked free just before the
 * start; another process taking one meanwhile fails the start (with the member's own words),
 * and the start is tried again with new ports, at most three times.
 */
export async function startEtcdCluster(options: EtcdClusterOptions): Promise<EtcdCluster> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startOnce(options);
    } catch (error: unknown) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function startOnce(options: EtcdClusterOptions): Promise<EtcdCluster> {
  const count = options.members ?? 3;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const stopGraceMs = options.stopGraceMs ?? 5000;
  installExitHook();
  const version = await etcdVersion(options.binary);
  const dataDir = mkdtempSync(join(tmpdir(), 'haret-bench-etcd-'));
  const names = Array.from({ length: count }, (_, i) => `m${i}`);
  const clientPorts: number[] = [];
  const peerPorts: number[] = [];
  for (let i = 0; i < count; i += 1) {
    clientPorts.push(await freePort());
    peerPorts.push(await freePort());
  }
  const peerUrl = (i: number): string => `http://127.0.0.1:${peerPorts[i] ?? 0}`;
  const clientUrl = (i: number): string => `http://127.0.0.1:${clientPorts[i] ?? 0}`;
  const initialCluster = names.map((name, i) => `${name}=${peerUrl(i)}`).join(',');
  const token = `haret-bench-${process.pid}-${Date.now()}`;
  const members: Member[] = [];
  let client: Etcd3 | null = null;
  const stopAll = async (): Promise<void> => {
    client?.close();
    client = null;
    await Promise.all(members.map((member) => stopMember(member, stopGraceMs)));
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (const [i, name] of names.entries()) {
      const memberDir = join(dataDir, name);
      mkdirSync(memberDir, { mode: 0o700 });
      const args = [
        '--name', name,
        '--data-dir', memberDir,
        '--listen-client-urls', clientUrl(i),
        '--advertise-client-urls', clientUrl(i),
        '--listen-peer-urls', peerUrl(i),
        '--initial-advertise-peer-urls', peerUrl(i),
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', token,
        '--initial-cluster-state', 'new',
        '--logger', 'zap',
        '--log-outputs', 'stderr',
        '--log-level', 'error',
      ];
      const child = spawn(options.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      live.add(child);
      const member: Member = {
        name,
        child,
        stderr: '',
        exited: new Promise<void>((resolve) => {
          child.on('exit', () => resolve());
          child.on('error', () => resolve());
        }),
      };
      child.stderr?.on('data', (chunk: Buffer) => {
        member.stderr = (member.stderr + chunk.toString()).slice(-2000);
      });
      members.push(member);
    }
    const endpoints = names.map((_, i) => clientUrl(i));
    const connected = new Etcd3({
      hosts: [...endpoints],
      dialTimeout: Math.min(startTimeoutMs, 5000),
      // A deadline on every call, so that the closed loop always ends.
      defaultCallOptions: () => ({ deadline: Date.now() + callTimeoutMs }),
    });
    client = connected;
    await waitForPut(connected, members, startTimeoutMs);
    const kv: EtcdKeyValue = {
      blobPut: (path, value) => connected.put(path).value(Buffer.from(value.buffer, value.byteOffset, value.byteLength)).exec(),
      blobGet: (path) => connected.get(path).buffer(),
    };
    return { endpoints, dataDir, version, kv, stop: stopAll };
  } catch (error: unknown) {
    await stopAll();
    throw error;
  }
}

/** Puts until one succeeds (a leader is elected and a quorum writes), or fails with the members' last words. */
async function waitForPut(client: Etcd3, members: readonly Member[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const dead = members.find((member) => member.child.exitCode !== null || member.child.signalCode !== null);
    if (dead !== undefined) throw new Error(`etcd member ${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}): ${dead.stderr.trim() || 'no output'}`);
    try {
      await client.put('haret-bench/ready').value('1').options({ deadline: Math.min(deadline, Date.now() + 2000) }).exec();
      return;
    } catch (error: unknown) {
      lastError = error instanceof Error ? error.message : String(error);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const words = members.map((member) => `${member.name}: ${member.stderr.trim() || 'no output'}`).join('; ');
  throw new Error(`etcd cluster did not accept a put within ${timeoutMs} ms (${lastError}); ${words}`);
}
