/**
 * Issue 17, "A CLI for scripts", the prompt's typing aids: "did you mean" with transpositions
 * (src/cli/suggest.ts), the history kept across sessions in a file (src/cli/history.ts) and
 * TAB completion of commands and paths (src/cli/completion.ts), the last against an embedded
 * node and through the prompt's readline.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseAdminCommand } from '../../src/cli/admin_lines.ts';
import { commandNames, parseCommand } from '../../src/cli/commands.ts';
import { completeLine, completionHitsMax } from '../../src/cli/completion.ts';
import { historyPath, loadHistory, saveHistory } from '../../src/cli/history.ts';
import { asCallResult } from '../../src/cli/node_prompt.ts';
import { runRepl } from '../../src/cli/repl.ts';
import { nearest, typoDistance } from '../../src/cli/suggest.ts';
import type { CallResult } from '../../src/client/io.ts';
import { startNode, type HaretNode } from '../../src/node/index.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import { useTempDirs } from './temp_dirs.ts';
import { promptStreams, sleep } from './cli_test_io.ts';

function errorOf(line: string): string {
  const parsed = parseCommand(line);
  if (parsed.type !== 'error') throw new Error(`expected an error from ${JSON.stringify(line)}`);
  return parsed.message;
}

describe('cli typing: did you mean (Damerau-Levenshtein)', () => {
  it('a swap of two neighbours costs one edit, not two', () => {
    expect(typoDistance('gte', 'get')).to.equal(1);
    expect(typoDistance('ab', 'ba')).to.equal(1);
    expect(typoDistance('wacth', 'watch')).to.equal(1);
    expect(typoDistance('kitten', 'sitting')).to.equal(3);
    expect(typoDistance('', 'abc')).to.equal(3);
  });

  it('finds the command for a transposed short word, which plain edit distance misses', () => {
    // Three letters allow one edit: "gte" -> "get" needed two before transpositions counted.
    expect(errorOf('gte /a')).to.include('did you mean "get"?');
    expect(errorOf('sl /')).to.include('did you mean "ls"?');
    expect(errorOf('wacth /a')).to.include('did you mean "watch"?');
    expect(errorOf('lcok /a')).to.include('did you mean "lock"?');
    expect(errorOf('frobnicate /a')).to.not.include('did you mean');
  });

  it('the admin prompt suggests too', () => {
    const parsed = parseAdminCommand('stauts');
    expect(parsed.type).to.equal('error');
    expect(parsed.type === 'error' ? parsed.message : '').to.include('did you mean status?');
  });

  it('every command name with two neighbours swapped is one edit away, and suggests a command that close', () => {
    const swapped = commandNames.flatMap((name) =>
      Array.from({ length: name.length - 1 }, (_, i) => name.slice(0, i) + name[i + 1] + name[i] + name.slice(i + 2)).filter((typo) => typo !== name && !commandNames.includes(typo)),
    );
    expect(swapped.length).to.be.greaterThan(50);
    for (const typo of swapped) {
      const suggestion = nearest(typo, commandNames);
      expect(suggestion, typo).to.not.equal(null);
      expect(typoDistance(typo, suggestion!), typo).to.equal(1);
    }
  });

  it('is a distance: zero only for equal words, symmetric, at most the longer length', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd'), maxLength: 8 });
    fc.assert(
      fc.property(word, word, (a, b) => {
        const d = typoDistance(a, b);
        expect(d).to.equal(typoDistance(b, a));
        expect(d === 0).to.equal(a === b);
        expect(d).to.be.at.most(Math.max(a.length, b.length));
      }),
      { numRuns: 500 },
    );
  });
});

// ---- history -------------------------------------------------------------------------------------

/** A terminal prompt over in-memory streams with a history file. */
function terminalPrompt(historyFile: string, historySize?: number) {
  const io = promptStreams();
  const { input, output } = io;
  const ops: TreeOp[] = [];
  const finished = runRepl({
    input,
    output,
    terminal: true,
    historyFile,
    ...(historySize === undefined ? {} : { historySize }),
    execute: async (op): Promise<CallResult> => {
      ops.push(op);
      return { type: 'done', outcome: { type: 'ok', version: ops.length }, epoch: 0, view: 1, op: ops.length, requestNum: ops.length };
    },
  });
  return {
    input,
    ops,
    finished,
    output: () => io.text(),
    async type(keys: string): Promise<void> {
      input.write(keys);
      await sleep(20);
    },
  };
}

describe('cli typing: history across sessions', () => {
  const temp = useTempDirs('history');

  it('the path: HARET_HISTORY_FILE (empty: none), else a file in the home directory', () => {
    expect(historyPath('cli', { HARET_HISTORY_FILE: '/tmp/h' })).to.equal('/tmp/h');
    expect(historyPath('cli', { HARET_HISTORY_FILE: '' })).to.equal(null);
    expect(historyPath('cli', {})).to.match(/\.haret_history$/);
    expect(historyPath('admin', { HARET_HISTORY_FILE: '/tmp/h' })).to.match(/\.haret_admin_history$/);
    expect(historyPath('admin', { HARET_ADMIN_HISTORY_FILE: '/tmp/a' })).to.equal('/tmp/a');
  });

  it('a session\'s lines are in the file (0600, oldest first); the next session recalls them with the up arrow', async () => {
    const file = join(await temp.madeDir(), 'history');
    const first = terminalPrompt(file);
    await first.type('get /one\r');
    await first.type('get /two\r');
    first.input.end();
    await first.finished;
    expect(readFileSync(file, 'utf8')).to.equal('get /one\nget /two\n');
    expect(statSync(file).mode & 0o777).to.equal(0o600);

    const second = terminalPrompt(file);
    await second.type('\x1b[A\x1b[A\r'); // up twice: the older line
    await second.type('\x1b[A\r'); // up once: the line just run again
    second.input.end();
    await second.finished;
    expect(second.ops).to.deep.equal([
      { type: 'blob_get', path: '/one' },
      { type: 'blob_get', path: '/one' },
    ]);
    expect(readFileSync(file, 'utf8')).to.equal('get /two\nget /one\n');
  });

  it('keeps at most N lines, in memory and in the file; a file left 0644 becomes 0600', async () => {
    const file = join(await temp.madeDir(), 'history');
    writeFileSync(file, Array.from({ length: 50 }, (_, i) => `get /old${i}`).join('\n') + '\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const prompt = terminalPrompt(file, 5);
    for (let i = 0; i < 8; i += 1) await prompt.type(`get /new${i}\r`);
    prompt.input.end();
    await prompt.finished;
    expect(readFileSync(file, 'utf8').trim().split('\n')).to.deep.equal(['get /new3', 'get /new4', 'get /new5', 'get /new6', 'get /new7']);
    expect(statSync(file).mode & 0o777).to.equal(0o600);

    // The functions alone: the newest N, oldest first in the file, and nothing for no file.
    saveHistory(file, Array.from({ length: 1500 }, (_, i) => `line ${1499 - i}`));
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).to.have.length(1000);
    expect(lines[0]).to.equal('line 500');
    expect(lines.at(-1)).to.equal('line 1499');
    expect(loadHistory(file, 3)).to.deep.equal(['line 1499', 'line 1498', 'line 1497']);
    expect(loadHistory(join(temp.freshDir(), 'none'))).to.deep.equal([]);
  });

  it('without a terminal nothing is written', async () => {
    const file = join(await temp.madeDir(), 'history');
    const input = new PassThrough();
    const finished = runRepl({ input, output: new PassThrough(), terminal: false, historyFile: file, execute: async () => ({ type: 'timeout' }) });
    input.end('get /a\n');
    await finished;
    expect(existsSync(file)).to.equal(false);
  });
});

// ---- completion ----------------------------------------------------------------------------------

describe('cli typing: TAB completes commands and paths', function () {
  this.timeout(60_000);
  let node: HaretNode;
  let execute: (op: TreeOp) => Promise<CallResult>;

  before(async () => {
    node = await startNode({ namespaces: [{ name: 'default', replicas: 1 }], logLevel: 'silent' });
    const client = node.client();
    execute = async (op) => asCallResult(await client.raw(op));
    await client.create('/app', 'directory');
    await client.create('/app/config', 'blob');
    await client.create('/app/cache', 'blob');
    await client.create('/apple', 'queue');
    await client.create('/b', 'set');
  });

  after(async () => {
    await node?.stop();
  });

  it('a path argument completes from list of its parent directory', async () => {
    expect(await completeLine('get /ap', { names: commandNames, execute })).to.deep.equal([['/app', '/apple'], '/ap']);
    expect(await completeLine('get /app/c', { names: commandNames, execute })).to.deep.equal([['/app/cache', '/app/config'], '/app/c']);
    expect(await completeLine('get /app/co', { names: commandNames, execute })).to.deep.equal([['/app/config'], '/app/co']);
    expect(await completeLine('ls /', { names: commandNames, execute })).to.deep.equal([['/app', '/apple', '/b'], '/']);
    expect(await completeLine('cas /app/config=0 : put /ap', { names: commandNames, execute })).to.deep.equal([['/app', '/apple'], '/ap']);
    // A parent that does not exist, or a word that is no path: nothing to offer.
    expect(await completeLine('get /nothing/x', { names: commandNames, execute })).to.deep.equal([[], '/nothing/x']);
    expect(await completeLine('put /app/config val', { names: commandNames, execute })).to.deep.equal([[], 'val']);
  });

  it('the command word and the word after help complete from the command names', async () => {
    expect(await completeLine('wat', { names: commandNames })).to.deep.equal([['watch'], 'wat']);
    expect((await completeLine('', { names: commandNames }))[0]).to.deep.equal([...commandNames]);
    expect(await completeLine('help lo', { names: commandNames })).to.deep.equal([['lock'], 'lo']);
  });

  it('is bounded: a node that does not answer gives nothing after the timeout; at most N names', async () => {
    const started = performance.now();
    const silent = await completeLine('get /a', { names: commandNames, execute: () => new Promise<CallResult>(() => undefined), timeoutMs: 50 });
    expect(silent).to.deep.equal([[], '/a']);
    expect(performance.now() - started).to.be.below(1_000);
    const many = async (): Promise<CallResult> => ({
      type: 'done',
      outcome: { type: 'list', version: 1, entries: Array.from({ length: 150 }, (_, i) => ({ name: `n${i}`, path: `/n${i}`, nodeType: 'blob' as const, version: 0 })) },
      epoch: 0,
      view: 0,
      op: 1,
      requestNum: 1,
    });
    expect((await completeLine('get /n', { names: commandNames, execute: many }))[0]).to.have.length(completionHitsMax);
  });

  it('through the prompt: TAB finishes a path, and the completed line runs', async () => {
    const io = promptStreams();
    const { input, output } = io;
    const client = node.client();
    await client.blobPut('/app/config', 'v=1');
    const finished = runRepl({ input, output, terminal: true, execute });
    input.write('get /app/co\t');
    await sleep(200);
    input.write('\r');
    await sleep(200);
    input.end();
    await finished;
    expect(io.text()).to.contain('v=1 · version 1');
  });
});
