/**
 * The prompt's coordination commands: `create --lease/--seq`, `lease grant|revoke|keepalive|list`,
 * `lock`, `elect` and `leader` — their parser (src/cli/commands.ts), their lines
 * (src/cli/format.ts), and the loop running them (src/cli/repl.ts) against an embedded node,
 * with Ctrl-C simulated the way the watch tests do; then `haret cli -e` over TCP.
 */

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HaretError } from '../../src/client/errors.ts';
import { defaultTtlMs } from '../../src/coord/options.ts';
import { helpText, leaseOp, parseCommand, type ParsedLine } from '../../src/cli/commands.ts';
import { formatKeepAlive, formatLeader, formatLeaseList } from '../../src/cli/format.ts';
import { asCallResult } from '../../src/cli/node_prompt.ts';
import { oneShotLeaseRefusal, runRepl, watchWith } from '../../src/cli/repl.ts';
import { startNode, type HaretNode, type NamespaceClient } from '../../src/node/index.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { errorOf, promptStreams, sleep, utf8 } from './cli_test_io.ts';

function parsedOp(line: string): TreeOp {
  const parsed = parseCommand(line);
  if (parsed.type !== 'op') throw new Error(`expected an op from ${JSON.stringify(line)}, got ${JSON.stringify(parsed)}`);
  return parsed.op;
}

// ---- parsing -------------------------------------------------------------------------------

describe('cli lease: parsing', () => {
  const ops: readonly (readonly [string, TreeOp])[] = [
    ['create blob /a --seq', { type: 'create', path: '/a', nodeType: 'blob', sequential: true }],
    ['create blob /a --sequential', { type: 'create', path: '/a', nodeType: 'blob', sequential: true }],
    ['create queue /a --lease 3', { type: 'create', path: '/a', nodeType: 'queue', lease: 3 }],
    ['create --lease=3 --seq blob /w/w-', { type: 'create', path: '/w/w-', nodeType: 'blob', lease: 3, sequential: true }],
    // No flag: no field at all (the canonical op), not false or null.
    ['create blob /a', { type: 'create', path: '/a', nodeType: 'blob' }],
    ['cas : create blob /q/j- --seq --lease 2 ; put /x "y"', {
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'create', path: '/q/j-', nodeType: 'blob', lease: 2, sequential: true },
        { type: 'blob_put', path: '/x', value: utf8('y') },
      ],
    }],
  ];
  for (const [line, expected] of ops) {
    it(`${JSON.stringify(line)}`, () => {
      expect(parsedOp(line)).to.deep.equal(expected);
    });
  }

  const lines: readonly (readonly [string, ParsedLine])[] = [
    ['lease grant 5000', { type: 'lease', lease: { action: 'grant', ttlMs: 5000 } }],
    ['LEASE GRANT 200', { type: 'lease', lease: { action: 'grant', ttlMs: 200 } }],
    ['lease revoke 7', { type: 'lease', lease: { action: 'revoke', id: 7 } }],
    ['lease keepalive 1 2 3', { type: 'lease', lease: { action: 'keepalive', ids: [1, 2, 3] } }],
    ['lease list', { type: 'lease', lease: { action: 'list' } }],
    ['lock /l', { type: 'lock', lock: { path: '/l', ttlMs: null, timeoutMs: null } }],
    ['lock --timeout 100 /l --ttl=2000', { type: 'lock', lock: { path: '/l', ttlMs: 2000, timeoutMs: 100 } }],
    ['elect /e host-a:7000', { type: 'elect', elect: { path: '/e', value: utf8('host-a:7000'), ttlMs: null } }],
    ['elect /e "-quoted" --ttl 500', { type: 'elect', elect: { path: '/e', value: utf8('-quoted'), ttlMs: 500 } }],
    ['leader /e', { type: 'leader', leader: { path: '/e', watch: false } }],
    ['leader --watch /e', { type: 'leader', leader: { path: '/e', watch: true } }],
  ];
  for (const [line, expected] of lines) {
    it(`${JSON.stringify(line)} parses to ${expected.type}`, () => {
      expect(parseCommand(line)).to.deep.equal(expected);
    });
  }

  const errors: readonly (readonly [string, string])[] = [
    ['lease grant', 'lease grant: missing TTL_MS; usage: lease grant TTL_MS'],
    ['lease grant -5', 'lease grant: TTL_MS takes a whole number of milliseconds, got "-5"'],
    ['lease grant 1.5', 'lease grant: TTL_MS takes a whole number of milliseconds, got "1.5"'],
    ['lease grant 99999999999999999999', 'lease grant: TTL_MS 99999999999999999999 is beyond the largest number'],
    ['lease grant 100 200', 'lease grant: too many arguments'],
    ['lease', 'lease: missing grant, revoke, keepalive or list'],
    ['lease renew 3', 'lease: unknown sub-command renew'],
    ['lease revoke', 'lease revoke: missing ID'],
    ['lease revoke x', 'lease revoke: ID takes a lease id (a whole number), got "x"'],
    ['lease keepalive', 'lease keepalive: missing ID'],
    ['lease keepalive 1 -2', 'lease keepalive: ID takes a lease id (a whole number), got "-2"'],
    ['lease list all', 'lease list: takes no arguments'],
    ['create blob /a --lease x', 'create: --lease takes a lease id (a whole number), got "x"; usage: create TYPE PATH [--lease ID] [--seq]'],
    ['create blob /a --lease', 'create: --lease needs ID'],
    ['create blob /a --lease 1 --lease 2', 'create: --lease given twice'],
    ['create blob /a --ephemeral', 'create: unknown option --ephemeral'],
    ['create blob --seq', 'create: missing PATH'],
    ['lock', 'lock: missing PATH'],
    ['lock l', 'lock: PATH must be an absolute path'],
    ['lock /l --ttl', 'lock: --ttl needs MS'],
    ['lock /l --ttl -100', 'lock: --ttl takes a whole number of milliseconds, got "-100"'],
    ['lock /l --timeout soon', 'lock: --timeout takes a whole number of milliseconds, got "soon"'],
    ['lock /l /m', 'lock: too many arguments'],
    ['elect /e', 'elect: missing VALUE'],
    ['elect /e -v', 'elect: unknown option -v'],
    ['leader', 'leader: missing PATH'],
    ['leader /e --follow', 'leader: unknown option --follow'],
    ['cas : lease revoke 3', 'cas: op 1: lease commands cannot run inside cas'],
    ['cas : lock /l', 'cas: op 1: only operations can run inside cas, not lock'],
    ['lock /l; get /a', "lock: ';' separates the ops of a cas transaction"],
  ];
  for (const [line, message] of errors) {
    it(`${JSON.stringify(line)} is refused`, () => {
      expect(errorOf(line)).to.include(message);
    });
  }

  it('each lease command stands for its op; list for none', () => {
    const lease = (line: string) => {
      const parsed = parseCommand(line);
      if (parsed.type !== 'lease') throw new Error(`not a lease command: ${line}`);
      return parsed.lease;
    };
    expect(leaseOp(lease('lease grant 300'))).to.deep.equal({ type: 'lease_grant', ttlMs: 300 });
    expect(leaseOp(lease('lease revoke 4'))).to.deep.equal({ type: 'lease_revoke', id: 4 });
    expect(leaseOp(lease('lease keepalive 4 5'))).to.deep.equal({ type: 'lease_keepalive', ids: [4, 5] });
    expect(leaseOp(lease('lease list'))).to.equal(null);
    expect(oneShotLeaseRefusal(lease('lease grant 300'))).to.include('only while the prompt runs');
    expect(oneShotLeaseRefusal(lease('lease list'))).to.include('a one-shot command has none');
    expect(oneShotLeaseRefusal(lease('lease revoke 4'))).to.equal(null);
  });

  it('help lists the coordination commands, help COMMAND explains each, and did-you-mean finds them', () => {
    const text = helpText();
    expect(text).to.match(/^coordination \(leases, locks, elections\):$/m);
    for (const form of ['lease grant TTL_MS', 'lease revoke ID', 'lease keepalive ID...', 'lease list', 'lock PATH [--ttl MS] [--timeout MS]', 'elect PATH VALUE [--ttl MS]', 'leader PATH [--watch]', 'create TYPE PATH [--lease ID] [--seq]']) {
      expect(text).to.include(`  ${form} `);
    }
    expect(helpText('lease')).to.include('Leaving the prompt revokes it');
    expect(helpText('lock')).to.include('--timeout MS').and.include('Ctrl-C releases').and.include(`default ${defaultTtlMs},`);
    expect(helpText('elect')).to.include(`default ${defaultTtlMs},`);
    expect(helpText('elect')).to.include('Ctrl-C resigns');
    expect(helpText('leader')).to.include('--watch');
    expect(helpText('create')).to.include('--lease ID').and.include('zero-padded to 10 digits');
    // Every example in the help parses.
    for (const topic of ['lock', 'elect', 'leader', 'create']) {
      const example = /Example: (.*)$/m.exec(helpText(topic))?.[1] ?? '';
      expect(parseCommand(example).type, example).not.to.equal('error');
    }
    expect(errorOf('mutex /a')).to.include('did you mean "lock"?');
    expect(errorOf('lok /a')).to.include('did you mean "lock"?');
    expect(errorOf('campaign /e v')).to.include('did you mean "elect"?');
    expect(errorOf('leadr /e')).to.include('did you mean "leader"?');
    expect(errorOf('keepalive 3')).to.include('did you mean "lease"?');
    expect(errorOf('lease_grant 300')).to.include('did you mean "lease"?');
  });
});

// ---- lines ---------------------------------------------------------------------------------

describe('cli lease: lines', () => {
  it('a keep-alive: one line per id, then where it ran; other results as usual', () => {
    const done = { type: 'done', outcome: { type: 'lease_kept', alive: [true, false] }, epoch: 0, view: 1, op: 9, requestNum: 3 } as const;
    expect(formatKeepAlive([4, 5], done).split('\n')).to.deep.equal(['lease 4  alive', "lease 5  gone (expired, revoked, or not this client's)", 'view 1 · op 9']);
    expect(formatKeepAlive([4], { type: 'timeout' })).to.match(/^timeout: /);
  });

  it('the leader, and the kept leases', () => {
    expect(formatLeader({ value: utf8('host-a'), token: 12 })).to.equal('leader host-a · token 12');
    expect(formatLeader({ value: utf8('two words'), token: 3 })).to.equal('leader "two words" · token 3');
    expect(formatLeader(null)).to.equal('no leader');
    expect(formatLeaseList([])).to.match(/^no leases kept alive by this prompt/);
    expect(formatLeaseList([{ id: 3, ttlMs: 2000, lost: null }, { id: 4, ttlMs: 600, lost: new HaretError('no_such_lease', 'no such lease: 4', true) }]).split('\n')).to.deep.equal([
      '  lease 3  ttl 2000 ms  alive',
      '  lease 4  ttl 600 ms  lost: no such lease: 4 (no_such_lease)',
    ]);
  });
});

// ---- the prompt against a node ---------------------------------------------------------------

/** A prompt on `client` over in-memory streams, as `npm start` and `haret cli` run it. */
function openPrompt(client: NamespaceClient, terminal = true) {
  const io = promptStreams();
  const { input, output } = io;
  const finished = runRepl({ input, output, terminal, prompt: 'p> ', execute: async (op) => asCallResult(await client.raw(op)), watch: watchWith(client), coord: client });
  /** Where the next `expectLine` starts looking, so each wait is for something new. */
  let cursor = 0;
  return {
    finished,
    output: (): string => io.text(),
    type(line: string): void {
      input.write(`${line}${terminal ? '\r' : '\n'}`);
    },
    ctrlC(): void {
      input.write('\x03');
    },
    /** Waits for the next output matching `pattern` after the cursor; returns the match. */
    async expectLine(pattern: RegExp | string, ms = 20_000): Promise<RegExpExecArray> {
      const regex = typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : pattern;
      const deadline = Date.now() + ms;
      for (;;) {
        const rest = io.text().slice(cursor);
        const match = regex.exec(rest);
        if (match !== null) {
          cursor += match.index + match[0].length;
          return match;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(pattern)}; output:\n${io.text()}`);
        await sleep(5);
      }
    },
    async close(): Promise<void> {
      input.end();
      await finished;
    },
  };
}

type Prompt = ReturnType<typeof openPrompt>;

async function statCode(client: NamespaceClient, path: string): Promise<string> {
  try {
    await client.stat(path);
    return 'exists';
  } catch (error) {
    return error instanceof HaretError ? error.code : String(error);
  }
}

async function tickets(client: NamespaceClient, dir: string): Promise<string[]> {
  try {
    return (await client.list(dir)).entries.map((entry) => entry.name);
  } catch (error) {
    if (error instanceof HaretError && error.code === 'does_not_exist') return [];
    throw error;
  }
}

async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('cli lease: the prompt against a node', function () {
  this.timeout(60_000);
  let node: HaretNode;
  let client: NamespaceClient;
  const prompts: Prompt[] = [];
  const open = (terminal = true): Prompt => {
    const prompt = openPrompt(client, terminal);
    prompts.push(prompt);
    return prompt;
  };

  before(async () => {
    node = await startNode({ logLevel: 'silent', clientApi: { host: '127.0.0.1', port: 0 } });
    client = node.client();
  });

  afterEach(async () => {
    // Whatever a failed test left running: Ctrl-C it, end its input, wait for it.
    for (const prompt of prompts.splice(0)) {
      prompt.ctrlC();
      await prompt.close().catch(() => undefined);
    }
  });

  after(async () => {
    await node?.stop();
  });

  it('create --seq prints the name made, in creation order', async () => {
    const p = open();
    p.type('create blob /seq/job- --seq');
    const first = await p.expectLine(/created (\/seq\/job-(\d{10})) · version 0/);
    p.type('create blob /seq/job- --seq');
    const second = await p.expectLine(/created (\/seq\/job-(\d{10})) · version 0/);
    expect(Number(second[2])).to.be.greaterThan(Number(first[2]));
    expect(await tickets(client, '/seq')).to.deep.equal([first[1]!.slice('/seq/'.length), second[1]!.slice('/seq/'.length)]);
    await p.close();
  });

  it('lease grant, create --lease, list, keepalive, then lease revoke deletes the node', async () => {
    const p = open();
    p.type('lease grant 2000');
    const id = Number((await p.expectLine(/lease (\d+) granted · ttl 2000 ms/))[1]);
    p.type(`create blob /eph/a --lease ${id}`);
    await p.expectLine('ok · version 0');
    expect(await statCode(client, '/eph/a')).to.equal('exists');
    p.type('lease list');
    await p.expectLine(`lease ${id}  ttl 2000 ms  alive`);
    p.type(`lease keepalive ${id} 999999`);
    await p.expectLine(new RegExp(`lease ${id} {2}alive\\nlease 999999 {2}gone`));
    p.type(`lease revoke ${id}`);
    await p.expectLine(`lease ${id} revoked`);
    expect(await statCode(client, '/eph/a')).to.equal('does_not_exist');
    p.type('lease list');
    await p.expectLine('no leases kept alive by this prompt');
    await p.close();
    expect(p.output(), 'our own revoke is not a loss').not.to.include('lost');
  });

  it('lease revoke of an unknown id prints the typed error; a TTL out of range too', async () => {
    const p = open();
    p.type('lease revoke 987654');
    await p.expectLine('no such lease: 987654 (never granted, expired or revoked) (no_such_lease)');
    p.type('lease grant 50');
    await p.expectLine(/error: .*ttlMs.* \(invalid_request\)/);
    p.type('lease list');
    await p.expectLine('no leases kept alive by this prompt');
    await p.close();
  });

  it('parse errors through the prompt: a clear message, nothing run', async () => {
    const p = open(false);
    p.type('lease grant');
    p.type('lease grant -5');
    p.type('create blob /bad --lease x');
    await p.expectLine('error: lease grant: missing TTL_MS; usage: lease grant TTL_MS');
    await p.expectLine('error: lease grant: TTL_MS takes a whole number of milliseconds, got "-5"');
    await p.expectLine('error: create: --lease takes a lease id (a whole number), got "x"');
    await p.close();
    expect(await statCode(client, '/bad')).to.equal('does_not_exist');
  });

  it('a lease lost meanwhile is announced, and listed as lost', async () => {
    const p = open();
    p.type('lease grant 600');
    const id = Number((await p.expectLine(/lease (\d+) granted/))[1]);
    // The same client (the same owner) ends it behind the prompt's back.
    await client.leaseRevoke(id);
    await p.expectLine(new RegExp(`lease ${id} lost: .*; its ephemeral nodes are gone`), 10_000);
    p.type('lease list');
    await p.expectLine(new RegExp(`lease ${id} {2}ttl 600 ms {2}lost: `));
    await p.close();
  });

  it('leaving the prompt revokes its leases: their nodes go at once', async () => {
    const p = open(false);
    p.type('lease grant 60000');
    const id = Number((await p.expectLine(/lease (\d+) granted/))[1]);
    p.type(`create set /bye/s --lease ${id}`);
    await p.expectLine('ok · version 0');
    await p.close();
    expect(await statCode(client, '/bye/s')).to.equal('does_not_exist');
    expect((await client.leaseKeepAlive([id])).alive).to.deep.equal([false]);
  });

  it('lock: holding with a token; a second lock waits until Ctrl-C releases the first', async () => {
    const a = open();
    const b = open();
    a.type('lock /locks/t');
    const first = Number((await a.expectLine(/holding \/locks\/t token (\d+); Ctrl-C to release/))[1]);
    b.type('lock /locks/t');
    await b.expectLine('waiting for the lock /locks/t');
    await sleep(300);
    expect(b.output(), 'the second waits while the first holds').not.to.include('holding');
    a.ctrlC();
    await a.expectLine('released');
    const second = Number((await b.expectLine(/holding \/locks\/t token (\d+)/))[1]);
    expect(second, 'tokens grow from holder to holder').to.be.greaterThan(first);
    b.ctrlC();
    await b.expectLine('released');
    await until(async () => (await tickets(client, '/locks/t')).length === 0, 'no ticket left behind');
    // The prompt goes on after a lock.
    a.type('get /nothing');
    await a.expectLine('(does_not_exist)');
  });

  it('lock: Ctrl-C while waiting gives up and leaves no ticket; --timeout gives up by itself', async () => {
    const a = open();
    const b = open();
    a.type('lock /locks/w');
    await a.expectLine('holding /locks/w token');
    b.type('lock /locks/w');
    await b.expectLine('waiting for the lock /locks/w');
    await until(async () => (await tickets(client, '/locks/w')).length === 2, 'the waiter queued');
    b.ctrlC();
    await b.expectLine('gave up waiting for the lock /locks/w');
    await until(async () => (await tickets(client, '/locks/w')).length === 1, "the waiter's ticket removed");
    b.type('lock /locks/w --timeout 200');
    await b.expectLine('timed out waiting for the lock /locks/w (--timeout 200)');
    await until(async () => (await tickets(client, '/locks/w')).length === 1, 'no ticket left by the timeout');
    a.ctrlC();
    await a.expectLine('released');
  });

  it('elect and leader: the elected value and token; leader --watch follows a resignation', async () => {
    const a = open();
    const b = open();
    b.type('leader /el/x');
    await b.expectLine('no leader');
    a.type('elect /el/x host-a');
    await a.expectLine('campaigning for /el/x as host-a');
    const token = Number((await a.expectLine(/leader of \/el\/x token (\d+); Ctrl-C to resign/))[1]);
    b.type('leader /el/x');
    await b.expectLine(`leader host-a · token ${token}`);
    b.type('leader /el/x --watch');
    await b.expectLine(`leader host-a · token ${token}`);
    a.ctrlC();
    await a.expectLine('resigned');
    await b.expectLine('no leader');
    b.ctrlC();
    await b.expectLine('stopped watching the leader of /el/x');
    await until(async () => (await tickets(client, '/el/x')).length === 0, 'the candidate removed');
  });

  it('haret cli -e: lease grant is refused (exit 2); lock holds until SIGINT (exit 0)', async function () {
    const address = node.clientApiAddress;
    if (address === null) throw new Error('no client API');
    const run = (command: string) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/haret.ts', 'cli', `${address.host}:${address.port}`, '-e', command], {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return { child, exited, out: () => out };
    };
    const grant = run('lease grant 1000');
    const lock = run('lock /locks/cli');
    try {
      expect(await grant.exited).to.equal(2);
      expect(grant.out()).to.include('lease grant keeps the lease alive only while the prompt runs');
      const deadline = Date.now() + 30_000;
      while (!/holding \/locks\/cli token \d+/.test(lock.out())) {
        if (Date.now() > deadline || lock.child.exitCode !== null) throw new Error(`no holding line; output:\n${lock.out()}`);
        await sleep(20);
      }
      expect(await tickets(client, '/locks/cli')).to.have.length(1);
      lock.child.kill('SIGINT');
      expect(await lock.exited).to.equal(0);
      expect(lock.out()).to.include('released');
      await until(async () => (await tickets(client, '/locks/cli')).length === 0, 'the ticket removed');
    } finally {
      for (const { child } of [grant, lock]) if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
