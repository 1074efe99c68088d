/**
 * Issue 17, "A CLI for scripts": the real `node bin/haret.js` as scripts run it, against a node
 * started here: exit statuses and output in each mode (`-e` repeated, a pipe, `-o json`,
 * `-o value`), `--endpoints` past a dead address, `:PORT`, every subcommand's `--help`,
 * `--version`, usage errors (exit 2 and a hint); and `haret start` / `npm start` stopped by
 * SIGTERM and SIGINT as a process manager stops them: exit 0 and no process left behind.
 */

import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import { runChild } from '../runtime/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/haret.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const haret = (args: readonly string[], input?: string) => runChild([bin, ...args], 30_000, input);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('haret cli and haret admin in scripts', function () {
  this.timeout(60_000);
  let node: HaretNode;
  let port: number;
  let adminPort: number;
  const address = (): string => `127.0.0.1:${port}`;

  before(async () => {
    node = await startNode({ namespaces: [{ name: 'default', replicas: 1 }], clientApi: { host: '127.0.0.1', port: 0 }, adminApi: { host: '127.0.0.1', port: 0 }, logLevel: 'silent' });
    port = node.clientApiAddress?.port ?? 0;
    adminPort = node.adminApiAddress?.port ?? 0;
  });

  after(async () => {
    await node?.stop();
  });

  it('-e repeats and runs in order; an error result goes to stderr with exit 1, and the later -e still run', async () => {
    const [ordered, failing] = await Promise.all([
      haret(['cli', address(), '-e', 'create blob /order', '-e', 'put /order one', '-e', 'put /order two', '-e', 'get /order']),
      haret(['cli', address(), '-e', 'get /order-missing', '-e', 'create blob /after-error']),
    ]);
    expect(ordered.code, ordered.stderr).to.equal(0);
    expect(ordered.stderr).to.equal('');
    const positions = ['ok · version 0', 'ok · version 1', 'ok · version 2', 'two · version 2'].map((line) => ordered.stdout.indexOf(line));
    expect(positions.every((at) => at >= 0), ordered.stdout).to.equal(true);
    expect([...positions].sort((a, b) => a - b)).to.deep.equal(positions);
    expect(text((await node.client().blobGet('/order')).value)).to.equal('two');

    expect(failing.code).to.equal(1);
    expect(failing.stderr).to.contain('does_not_exist').and.contain('/order-missing');
    expect(failing.stdout).to.contain('ok · version').and.not.contain('does_not_exist');
    expect((await node.client().stat('/after-error')).nodeType).to.equal('blob');
  });

  it('commands from a pipe: each line runs in order, a failed one goes to stderr and makes the exit status 1', async () => {
    const [mixed, clean, admin] = await Promise.all([
      haret(['cli', address()], 'create blob /piped\nget /piped-missing\nput /piped "from a pipe"\nbogus /x\nget /piped\n'),
      haret(['cli', address()], '# a comment\ncreate queue /piped-q\npush /piped-q a\nqlen /piped-q\n'),
      haret(['admin', `127.0.0.1:${adminPort}`], 'namespaces\nprimary nowhere\nhealth\n'),
    ]);
    expect(mixed.code).to.equal(1);
    expect(mixed.stdout).to.contain('"from a pipe" · version 1');
    expect(mixed.stderr).to.contain('does_not_exist').and.contain('unknown command "bogus"');
    expect(mixed.stdout).to.not.contain('bogus');
    expect(clean.code, clean.stderr).to.equal(0);
    expect(clean.stdout).to.contain('1 · version 1');
    expect(admin.code).to.equal(1);
    expect(admin.stdout).to.contain('"default"').and.contain('serving');
    expect(admin.stderr).to.contain('unknown_namespace');
  });

  it('-o json: one object per result, line by line; bytes in base64; failures as objects on stderr', async () => {
    await node.client().create('/j', 'blob');
    await node.client().blobPut('/j', 'a b');
    const [json, piped, admin] = await Promise.all([
      haret(['cli', address(), '-o', 'json', '-e', 'get /j', '-e', 'stat /j', '-e', 'ls /', '-e', 'get /j-missing', '-e', 'help get']),
      haret(['cli', address(), '-o', 'json'], 'get /j\nnot-a-command\n'),
      haret(['admin', `127.0.0.1:${adminPort}`, '--output=json', '-e', 'namespaces', '-e', 'primary nowhere']),
    ]);
    expect(json.code).to.equal(1);
    const lines = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line['command'])).to.deep.equal(['get /j', 'stat /j', 'ls /', 'help get']);
    expect(lines.every((line) => line['ok'] === true)).to.equal(true);
    const get = lines[0] as { result: { type: string; value: string; version: number }; view: number; op: number };
    expect(get.result.type).to.equal('blob');
    expect(Buffer.from(get.result.value, 'base64').toString()).to.equal('a b');
    expect(get.result.version).to.equal(1);
    expect(get.op).to.be.a('number');
    expect((lines[1] as { result: unknown }).result).to.deep.equal({ type: 'stat', nodeType: 'blob', version: 1, size: 3 });
    expect((lines[2] as { result: { entries: { path: string }[] } }).result.entries.map((entry) => entry.path)).to.include('/j');
    expect(lines[3]).to.have.property('text').that.contains('get PATH');
    const failure = JSON.parse(json.stderr.trim()) as { ok: boolean; command: string; error: { code: string; path: string } };
    expect(failure).to.deep.include({ ok: false, command: 'get /j-missing' });
    expect(failure.error).to.deep.include({ code: 'does_not_exist', path: '/j-missing' });

    expect(piped.code).to.equal(1);
    expect(JSON.parse(piped.stdout.trim())).to.have.property('command', 'get /j');
    expect(JSON.parse(piped.stderr.trim())).to.deep.include({ ok: false, command: 'not-a-command' });

    expect(admin.code).to.equal(1);
    expect(JSON.parse(admin.stdout.trim())).to.deep.equal({ ok: true, command: 'namespaces', result: ['default'] });
    expect((JSON.parse(admin.stderr.trim()) as { error: { code: string } }).error.code).to.equal('unknown_namespace');
  });

  it('-o value: only the value, one per line (bytes as they are, a count as a number, a sequential name)', async () => {
    const client = node.client();
    await client.create('/v', 'blob');
    await client.blobPut('/v', 'plain text');
    await client.create('/bin', 'blob');
    await client.blobPut('/bin', Uint8Array.from([0, 255, 10, 7]));
    await client.create('/vq', 'queue');
    await client.queuePush('/vq', 'first');
    await client.create('/seq', 'directory');
    const [values, binary, admin] = await Promise.all([
      haret(['cli', `:${port}`, '-o', 'value', '-e', 'get /v', '-e', 'size /v', '-e', 'qlen /vq', '-e', 'front /vq', '-e', 'stat /v', '-e', 'create blob /seq/n- --seq', '-e', 'get /v-missing']),
      runBytes(['cli', address(), '-o', 'value', '-e', 'get /bin']),
      haret(['admin', `:${adminPort}`, '-o', 'value', '-e', 'namespaces']),
    ]);
    expect(values.code).to.equal(1);
    expect(values.stdout).to.equal('plain text\n10\n1\nfirst\nblob 1 10\n/seq/n-0000000000\n');
    expect(values.stderr).to.contain('does_not_exist');
    expect(binary.code).to.equal(0);
    expect([...binary.stdout]).to.deep.equal([0, 255, 10, 7, 10]);
    expect(admin.stdout).to.equal('default\n');
  });

  it('--endpoints: a dead first address is passed over, as connect() does; :PORT means 127.0.0.1', async () => {
    const dead = await deadPort();
    const [cli, admin, colon, adminColon] = await Promise.all([
      haret(['cli', '--endpoints', `127.0.0.1:${dead},127.0.0.1:${port}`, '-e', 'ls /']),
      haret(['admin', '--endpoints', `:${dead},:${adminPort}`, '-e', 'health']),
      haret(['cli', `:${port}`, '-e', 'ls /']),
      haret(['admin', `:${adminPort}`, '-e', 'health']),
    ]);
    for (const run of [cli, admin, colon, adminColon]) expect(run.code, run.stderr).to.equal(0);
    expect(cli.stdout).to.contain('directory version');
    expect(colon.stdout).to.contain('directory version');
    expect(admin.stdout.trim()).to.equal('serving');
    expect(adminColon.stdout.trim()).to.equal('serving');
    const none = await haret(['cli', '--endpoints', `:${dead}`, '-e', 'ls /']);
    expect(none.code).to.equal(1);
  });

  it('--help for every subcommand and --version exit 0; usage errors exit 2 with one message and a hint, running nothing', async () => {
    const runs = await Promise.all([
      haret(['--help']),
      haret(['start', '--help']),
      haret(['cli', '--help']),
      haret(['admin', '-h']),
      haret(['help', 'cli']),
      haret(['--version']),
      haret(['cli', address(), '--foo']),
      haret(['admin']),
      haret(['start', '--replicas']),
      haret(['cli', address(), '-o', 'yaml', '-e', 'ls /']),
      haret(['cli', address(), '-e', 'create blob /never', '-e', 'gte /never']),
      haret(['strat']),
      haret(['cli', address(), '--namspace', 'x']),
    ]);
    const [help, startHelp, cliHelp, adminHelp, helpCli, version, unknownOption, noAddress, noValue, badForm, typo, unknownCommand, nearOption] = runs;
    for (const run of [help, startHelp, cliHelp, adminHelp, helpCli, version]) expect(run!.code, run!.stderr).to.equal(0);
    expect(help!.stdout).to.contain('usage: haret COMMAND').and.contain('start').and.contain('cli').and.contain('admin');
    expect(startHelp!.stdout).to.contain('usage: haret start').and.contain('--http-address');
    expect(cliHelp!.stdout).to.contain('usage: haret cli').and.contain('--endpoints').and.contain('base64');
    expect(adminHelp!.stdout).to.contain('usage: haret admin').and.contain('snapshot save');
    expect(helpCli!.stdout).to.equal(cliHelp!.stdout);
    expect(version!.stdout.trim()).to.equal(pkg.version);

    expect(unknownOption!.code).to.equal(2);
    expect(unknownOption!.stderr).to.equal("haret cli: unknown option --foo\nTry 'haret cli --help'.\n");
    expect(noAddress!.code).to.equal(2);
    expect(noAddress!.stderr).to.match(/^haret admin: missing .*ADDRESS.*\nTry 'haret admin --help'\.\n$/);
    expect(noValue!.stderr).to.equal("haret start: option --replicas needs a value\nTry 'haret start --help'.\n");
    expect(badForm!.code).to.equal(2);
    expect(badForm!.stderr).to.contain('human, json, value');
    expect(typo!.code).to.equal(2);
    expect(typo!.stderr).to.contain('did you mean "get"?');
    expect(unknownCommand!.code).to.equal(2);
    expect(unknownCommand!.stderr).to.contain('did you mean start?').and.contain("Try 'haret --help'.");
    expect(nearOption!.stderr).to.contain('did you mean --namespace?');
    for (const run of [unknownOption, noAddress, noValue, badForm, typo, unknownCommand, nearOption]) {
      expect(run!.stderr.trim().split('\n'), run!.stderr).to.have.length(2);
      expect(run!.stdout).to.equal('');
    }
    // A bad -e line refuses the whole invocation: the create before it did not run.
    expect(await node.client().stat('/never').then(() => 'exists', () => 'missing')).to.equal('missing');
  });
});

// ---- haret start and npm start under a process manager ---------------------------------------

/** The pids of `pid`'s descendants (from /proc), nearest first. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the fields follow the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '(gone)';
  }
}

/** Whether `pid` still runs (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

async function eventually(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

type Running = {
  readonly child: ChildProcessWithoutNullStreams;
  readonly output: () => string;
  /** Resolves when the process exited and its pipes closed (every process holding them is gone). */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** Spawns in a process group of its own (as a terminal or a service manager would), stdin left open. */
function launch(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Running {
  const child = spawn(command, [...args], { cwd: root, detached: true, stdio: ['pipe', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, output: () => output, closed };
}

/** Kills whatever is left of a launched group (a failed test must not leave nodes running). */
function cleanUp(running: Running, pids: readonly number[]): void {
  try {
    if (running.child.pid !== undefined) process.kill(-running.child.pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/** The environment of a process npm did not start (npm test sets npm_* for its children). */
function withoutNpm(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('npm_')));
}

describe('haret start and npm start under a process manager', function () {
  this.timeout(60_000);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`node bin/haret.js start: ${signal} stops the node cleanly, exit 0, no process left`, async () => {
      const running = launch(process.execPath, [bin, 'start', '--client-address', '127.0.0.1:0', '--replicas', '1', '--log-level', 'silent'], withoutNpm(process.env));
      const pid = running.child.pid!;
      try {
        await eventually('the start line', () => /haret: node haret serving default on/.test(running.output()), 30_000);
        // The replica and service workers are threads of this one process. The only child
        // processes a checkout may have are tsx's esbuild services (a cold transform cache).
        const children = descendants(pid);
        for (const child of children) expect(commandLine(child)).to.match(/esbuild|\(gone\)/);
        process.kill(pid, signal);
        const { code, signal: killedBy } = await running.closed;
        expect({ code, killedBy }, running.output()).to.deep.equal({ code: 0, killedBy: null });
        expect(running.output()).to.contain(`haret: stopping (${signal})`).and.contain('haret: stopped');
        await eventually('every process of the tree to end', () => [pid, ...children].every((one) => !alive(one)), 5_000);
      } finally {
        cleanUp(running, []);
      }
    });
  }

  it('haret start under npm\'s shell: killing the shell (what npm does with SIGTERM) stops the node too', async () => {
    // npm runs scripts and npx commands as `sh -c CMD` and signals that shell only; dash dies
    // of SIGTERM without passing it on. The node, started by npm (npm_lifecycle_event), sees
    // its parent go and stops as on SIGTERM.
    const env = { ...withoutNpm(process.env), npm_lifecycle_event: 'npx' };
    // `; exit $?` keeps any sh (bash too) from replacing itself with the node, as npm's does not.
    const command = `"${process.execPath}" "${bin}" start --client-address 127.0.0.1:0 --replicas 1 --log-level silent; exit $?`;
    const running = launch('/bin/sh', ['-c', command], env);
    let tree: number[] = [];
    try {
      await eventually('the start line', () => /haret: node haret serving default on/.test(running.output()), 30_000);
      tree = descendants(running.child.pid!);
      expect(tree.length, 'sh -c keeps the node as its child').to.be.greaterThan(0);
      process.kill(running.child.pid!, 'SIGTERM');
      await running.closed;
      await eventually('the node to stop', () => tree.every((pid) => !alive(pid)), 20_000);
      expect(running.output()).to.contain('haret: stopping (parent exited)').and.contain('haret: stopped');
    } finally {
      cleanUp(running, tree);
    }
  });

  it('npm start: SIGINT to its process group (Ctrl-C, a service manager) or SIGTERM to npm alone stops the node cleanly; nothing left', async () => {
    // npm runs the script as `sh -c ...`; the script `exec`s node, so the shell is replaced and
    // npm's child is the node itself (dash would not pass signals on). SIGINT to the whole group
    // and SIGTERM to npm alone both reach the node, which stops every worker and exits 0; npm
    // then exits 0 (or, by its convention for Ctrl-C, re-raises SIGINT). The node's watch of its
    // parent (a shell that does not exec) stays for `npx haret start`.
    const start = (): Running => launch('npm', ['start', '--silent', '--', '--replicas', '1', '--log-level', 'silent'], withoutNpm(process.env));
    const interrupted = start();
    const terminated = start();
    const trees = new Map<Running, number[]>();
    try {
      await Promise.all(
        [interrupted, terminated].map(async (running) => {
          await eventually('the banner', () => /haret: namespace default on 1 replicas/.test(running.output()), 45_000);
          trees.set(running, descendants(running.child.pid!));
        }),
      );
      process.kill(-interrupted.child.pid!, 'SIGINT');
      process.kill(terminated.child.pid!, 'SIGTERM');
      const [byInterrupt, byTerm] = await Promise.all([interrupted.closed, terminated.closed]);
      expect([{ code: 0, signal: null }, { code: null, signal: 'SIGINT' }], interrupted.output()).to.deep.include(byInterrupt);
      expect([{ code: 0, signal: null }, { code: null, signal: 'SIGTERM' }], terminated.output()).to.deep.include(byTerm);
      for (const [running, tree] of trees) {
        expect(tree.length, running.output()).to.be.at.least(1); // the node (the shell exec'd it)
        await eventually('every process of npm start to end', () => tree.every((pid) => !alive(pid)), 20_000);
        expect(running.output()).to.contain('haret: stopped');
      }
    } finally {
      for (const running of [interrupted, terminated]) cleanUp(running, trees.get(running) ?? []);
    }
  });
});

/** runChild for bytes: stdout as a Buffer (a value that is not text). */
function runBytes(args: readonly string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`haret ${args.join(' ')} did not exit within 30 s`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(chunks), stderr });
    });
  });
}
