/**
 * The prompt's `watch` command: its parser (src/cli/commands.ts), its lines (src/cli/format.ts)
 * and the loop running it until Ctrl-C (src/cli/repl.ts), first against a scripted stream and
 * then against a real node, embedded and over TCP.
 */

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HaretError } from '../../src/client/errors.ts';
import type { WatchBatch } from '../../src/client/watch.ts';
import { helpText, parseCommand, type WatchCommand } from '../../src/cli/commands.ts';
import { formatWatchError, formatWatchEvent, formatWatchProgress, formatWatchStart, formatWatchStopped } from '../../src/cli/format.ts';
import { runRepl, watchWith, type ReplWatch } from '../../src/cli/repl.ts';
import { asCallResult } from '../../src/cli/node_prompt.ts';
import { connect } from '../../src/net/index.ts';
import { startNode, type HaretNode, type NamespaceClient } from '../../src/node/index.ts';
import { protocolNumberMax } from '../../src/base/limits.ts';
import type { TreeOp } from '../../src/tree/ops.ts';
import type { WatchEvent } from '../../src/watch/messages.ts';
import { errorOf, promptStreams, sleep, utf8 } from './cli_test_io.ts';

function watchOf(line: string): WatchCommand {
  const parsed = parseCommand(line);
  if (parsed.type !== 'watch') throw new Error(`expected a watch from ${JSON.stringify(line)}, got ${JSON.stringify(parsed)}`);
  return parsed.watch;
}

const plain: WatchCommand = { path: '/a', recursive: false, fromOp: null, values: false, progress: false };

// ---- parsing -------------------------------------------------------------------------------

describe('cli watch: parsing', () => {
  const cases: readonly (readonly [string, WatchCommand])[] = [
    ['watch /a', plain],
    ['WATCH /a', plain],
    ['watch /a -r', { ...plain, recursive: true }],
    ['watch -r /a', { ...plain, recursive: true }],
    ['watch /a -R', { ...plain, recursive: true }],
    ['watch /a --recursive', { ...plain, recursive: true }],
    ['watch /a --from 12', { ...plain, fromOp: 12 }],
    ['watch /a --from=12', { ...plain, fromOp: 12 }],
    ['watch /a --from 0', { ...plain, fromOp: 0 }],
    ['watch /a --from "7"', { ...plain, fromOp: 7 }],
    [`watch /a --from ${protocolNumberMax}`, { ...plain, fromOp: protocolNumberMax }],
    ['watch /a --values', { ...plain, values: true }],
    ['watch /a --progress', { ...plain, progress: true }],
    ['watch --values --from 3 -r /a --progress', { path: '/a', recursive: true, fromOp: 3, values: true, progress: true }],
    ['watch "/with space" -r', { ...plain, path: '/with space', recursive: true }],
    ['watch /', { ...plain, path: '/' }],
    ['watch /a;', plain],
  ];
  for (const [line, expected] of cases) {
    it(`${JSON.stringify(line)}`, () => {
      expect(watchOf(line)).to.deep.equal(expected);
    });
  }

  const errors: readonly (readonly [string, string])[] = [
    ['watch', 'watch: missing PATH'],
    ['watch -r', 'watch: missing PATH'],
    ['watch a', 'watch: PATH must be an absolute path starting with /, got a'],
    ['watch /a /b', 'watch: too many arguments: one PATH'],
    ['watch {a}', 'watch: PATH must be a path, got a set literal'],
    ['watch /a -x', 'watch: unknown option -x'],
    ['watch /a --value', 'watch: unknown option --value'],
    ['watch /a --recursive=yes', 'watch: unknown option --recursive=yes'],
    ['watch /a --from', 'watch: --from needs an op number'],
    ['watch /a --from -1', 'watch: --from takes an op number (0 or more digits), got "-1"'],
    ['watch /a --from 1.5', 'watch: --from takes an op number (0 or more digits), got "1.5"'],
    ['watch /a --from 1e3', 'watch: --from takes an op number (0 or more digits), got "1e3"'],
    ['watch /a --from 0x10', 'watch: --from takes an op number (0 or more digits), got "0x10"'],
    ['watch /a --from=', 'watch: --from takes an op number (0 or more digits), got ""'],
    ['watch /a --from abc', 'watch: --from takes an op number (0 or more digits), got "abc"'],
    ['watch /a --from {1}', 'watch: --from takes an op number, got a set literal'],
    [`watch /a --from ${protocolNumberMax + 1}`, `watch: --from ${protocolNumberMax + 1} is beyond the largest op`],
    ['watch /a --from 99999999999999999999', 'watch: --from 99999999999999999999 is beyond the largest op'],
    ['watch /a --from 1 --from 2', 'watch: --from given twice'],
    ['watch /a; get /a', "watch: ';' separates the ops of a cas transaction"],
    ['cas : watch /a', 'cas: op 1: only operations can run inside cas, not watch'],
  ];
  for (const [line, message] of errors) {
    it(`${JSON.stringify(line)} is refused`, () => {
      const text = errorOf(line);
      expect(text).to.include(message);
      if (line.startsWith('watch') && !line.includes(';')) expect(text).to.include('usage: watch PATH [-r] [--from OP] [--values] [--progress]');
    });
  }

  it('suggests watch for the words people reach for', () => {
    expect(errorOf('subscribe /a')).to.include('did you mean "watch"?');
    expect(errorOf('wath /a')).to.include('did you mean "watch"?');
  });

  it('help lists watch, and help watch explains the flags with an example that parses', () => {
    expect(helpText()).to.match(/^watches:\n {2}watch PATH \[-r\] \[--from OP\] \[--values\] \[--progress\] +print the changes/m);
    const text = helpText('watch');
    for (const flag of ['-r', '--from OP', '--values', '--progress', 'Ctrl-C']) expect(text).to.include(flag);
    const example = /Example: (watch .*)$/m.exec(text)?.[1];
    expect(watchOf(example ?? '')).to.deep.equal({ path: '/config', recursive: true, fromOp: null, values: true, progress: false });
  });
});

// ---- lines ---------------------------------------------------------------------------------

describe('cli watch: lines', () => {
  const event = (extra: Partial<WatchEvent> = {}): WatchEvent => ({ kind: 'changed', path: '/a/b', nodeType: 'blob', version: 4, ...extra });

  it('an event: op, kind, path, type, version, and the value as the prompt prints values', () => {
    expect(formatWatchEvent(123, event())).to.equal('op 123  changed  /a/b  blob  v4');
    expect(formatWatchEvent(123, event({ value: utf8('hello') }))).to.equal('op 123  changed  /a/b  blob  v4  hello');
    expect(formatWatchEvent(9, event({ kind: 'created', value: utf8('two words') }))).to.equal('op 9  created  /a/b  blob  v4  "two words"');
    expect(formatWatchEvent(9, event({ value: Uint8Array.of(0, 255) }))).to.equal('op 9  changed  /a/b  blob  v4  0x00ff');
    expect(formatWatchEvent(9, event({ value: new Uint8Array(0) }))).to.equal('op 9  changed  /a/b  blob  v4  ""');
    expect(formatWatchEvent(9, event({ value: null, valueOmitted: true }))).to.equal('op 9  changed  /a/b  blob  v4  (value too large to send; get it)');
    expect(formatWatchEvent(10, event({ kind: 'deleted', nodeType: 'queue', version: 2 }))).to.equal('op 10  deleted  /a/b  queue  v2');
  });

  it('the start, progress and stop lines', () => {
    expect(formatWatchStart(plain, 17)).to.equal('watching /a after op 17; Ctrl-C to stop');
    expect(formatWatchStart({ ...plain, recursive: true }, 17)).to.equal('watching /a (recursive) after op 17; Ctrl-C to stop');
    expect(formatWatchStart({ ...plain, recursive: true, values: true }, 0)).to.equal('watching /a (recursive, with values) after op 0; Ctrl-C to stop');
    expect(formatWatchProgress(30)).to.equal('op 30  (no change through here)');
    expect(formatWatchStopped(31)).to.equal('watch stopped after op 31 (watch again with --from 31 to resume)');
    expect(formatWatchStopped(null)).to.equal('watch stopped');
  });

  it('errors: the code and message; compacted gives the oldest and current op and a --from', () => {
    const details = (oldestOp: number | null, currentOp: number | null, lastOp: number | null = null) => ({ oldestOp, currentOp, lastOp });
    expect(formatWatchError(new HaretError('compacted', 'history starts after op 50', false, null, undefined, details(50, 80)))).to.equal(
      'watch ended: compacted: history starts after op 50\n  history is kept only after op 50, the namespace is at op 80: read again and watch with --from 80 (or --from 50 for what is still kept)',
    );
    expect(formatWatchError(new HaretError('compacted', 'gone', false, null, undefined, details(null, null)))).to.equal(
      'watch ended: compacted: gone\n  older ops are no longer kept: read again and watch without --from',
    );
    expect(formatWatchError(new HaretError('future', 'not yet', false, null, undefined, details(0, 12)))).to.equal(
      'watch ended: future: not yet\n  the namespace is at op 12: watch with --from 12 or less, or without --from',
    );
    expect(formatWatchError(new HaretError('lagging', 'too slow', false, null, undefined, details(null, null, 40)))).to.equal(
      'watch ended: lagging: too slow\n  received through op 40: watch again with --from 40 to resume',
    );
    expect(formatWatchError(new HaretError('unavailable', 'no replica answers', false))).to.equal('watch ended: unavailable: no replica answers');
    expect(formatWatchError(new Error('boom'))).to.equal('error: boom');
  });
});

// ---- the loop, scripted --------------------------------------------------------------------

/** A watch the test feeds by hand: batches, an error, or the end; records its cancel. */
class ScriptedWatch implements ReplWatch {
  readonly batches: WatchBatch[] = [];
  cancelled = 0;
  #waiting: ((result: IteratorResult<WatchBatch>) => void) | null = null;
  #fail: ((error: unknown) => void) | null = null;
  #done = false;

  push(batch: WatchBatch): void {
    const resolve = this.#waiting;
    if (resolve === null) {
      this.batches.push(batch);
      return;
    }
    this.#waiting = null;
    resolve({ done: false, value: batch });
  }
  fail(error: unknown): void {
    this.#fail?.(error);
  }
  end(): void {
    this.#done = true;
    this.#waiting?.({ done: true, value: undefined });
  }
  cancel(): void {
    this.cancelled += 1;
  }
  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: () => {
        const batch = this.batches.shift();
        if (batch !== undefined) return Promise.resolve({ done: false, value: batch });
        if (this.#done) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve, reject) => {
          this.#waiting = resolve;
          this.#fail = reject;
        });
      },
    };
  }
}

function harness(options: { terminal?: boolean; open?: (command: WatchCommand) => ReplWatch; noWatch?: boolean } = {}) {
  const io = promptStreams();
  const { input, output } = io;
  const ops: TreeOp[] = [];
  const opened: WatchCommand[] = [];
  const streams: ScriptedWatch[] = [];
  const open =
    options.open ??
    ((command: WatchCommand): ReplWatch => {
      const stream = new ScriptedWatch();
      streams.push(stream);
      return stream;
    });
  const finished = runRepl({
    input,
    output,
    terminal: options.terminal ?? false,
    prompt: 'p> ',
    execute: async (op) => {
      ops.push(op);
      return { type: 'done', outcome: { type: 'ok', version: ops.length }, epoch: 0, view: 1, op: ops.length, requestNum: ops.length };
    },
    ...(options.noWatch === true
      ? {}
      : {
          watch: (command: WatchCommand) => {
            opened.push(command);
            return open(command);
          },
        }),
  });
  return { input, ops, opened, streams, finished, output: () => io.text() };
}

/** Waits until `check` holds (polling), or fails with what was printed. */
async function until(check: () => boolean, what: string, output: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output()}`);
    await sleep(5);
  }
}

describe('cli watch: the loop', () => {
  it('prints the start and each event, and Ctrl-C (terminal) stops the watch and returns to the prompt', async () => {
    const h = harness({ terminal: true });
    h.input.write('watch /a -r\r');
    await until(() => h.streams.length === 1, 'the watch to open', h.output);
    const stream = h.streams[0]!;
    expect(h.opened).to.deep.equal([{ ...plain, recursive: true }]);
    stream.push({ kind: 'start', op: 5, events: [] });
    stream.push({ kind: 'progress', op: 6, events: [] });
    stream.push({
      kind: 'events',
      op: 7,
      events: [
        { kind: 'created', path: '/a/x', nodeType: 'blob', version: 0 },
        { kind: 'changed', path: '/a', nodeType: 'directory', version: 3 },
      ],
    });
    await until(() => h.output().includes('/a  directory'), 'the events', h.output);
    h.input.write('get /a'); // typed during the watch: Ctrl-C drops it
    await sleep(10);
    expect(h.ops, 'nothing runs while the watch does').to.deep.equal([]);
    h.input.write('\x03');
    await until(() => h.output().includes('watch stopped'), 'the stop', h.output);
    expect(stream.cancelled).to.be.greaterThanOrEqual(1);
    h.input.write('get /b\r');
    await until(() => h.ops.length === 1, 'the next command', h.output);
    h.input.end();
    await h.finished;
    expect(h.ops).to.deep.equal([{ type: 'blob_get', path: '/b' }]);
    const out = h.output();
    const lines = ['watching /a (recursive) after op 5; Ctrl-C to stop', 'op 7  created  /a/x  blob  v0', 'op 7  changed  /a  directory  v3', '^C', 'watch stopped after op 7 (watch again with --from 7 to resume)', 'ok · version 1'];
    let at = 0;
    for (const line of lines) {
      const index = out.indexOf(line, at);
      expect(index, `${JSON.stringify(line)} in order in ${JSON.stringify(out)}`).to.be.greaterThan(-1);
      at = index + line.length;
    }
    expect(out, 'progress is not printed without --progress').not.to.include('op 6');
  });

  it('without a terminal, SIGINT stops the watch, and lines piped meanwhile run afterwards', async () => {
    const before = process.listenerCount('SIGINT');
    const h = harness();
    h.input.write('watch /a --progress --from 3\nget /x\n');
    await until(() => h.streams.length === 1, 'the watch to open', h.output);
    expect(h.opened).to.deep.equal([{ ...plain, fromOp: 3, progress: true }]);
    expect(process.listenerCount('SIGINT')).to.equal(before + 1);
    const stream = h.streams[0]!;
    stream.push({ kind: 'start', op: 3, events: [] });
    stream.push({ kind: 'progress', op: 9, events: [] });
    await until(() => h.output().includes('op 9'), 'the progress line', h.output);
    h.input.end(); // the end of a script does not cut a watch short
    await sleep(20);
    expect(h.ops).to.deep.equal([]);
    process.emit('SIGINT');
    await h.finished;
    expect(process.listenerCount('SIGINT'), 'the handler is removed').to.equal(before);
    expect(stream.cancelled).to.be.greaterThanOrEqual(1);
    expect(h.ops).to.deep.equal([{ type: 'blob_get', path: '/x' }]);
    expect(h.output()).to.equal(
      'watching /a after op 3; Ctrl-C to stop\nop 9  (no change through here)\nwatch stopped after op 9 (watch again with --from 9 to resume)\nok · version 1\nview 1 · op 1\n',
    );
  });

  it('a watch that ends with an error prints it and the prompt goes on', async () => {
    const h = harness();
    h.input.write('watch /a --from 2\n');
    await until(() => h.streams.length === 1, 'the watch to open', h.output);
    h.streams[0]!.fail(new HaretError('compacted', 'op 2 is no longer kept', false, null, undefined, { oldestOp: 10, currentOp: 20, lastOp: null }));
    h.input.end('get /a\n');
    await h.finished;
    expect(h.output()).to.equal(
      'watch ended: compacted: op 2 is no longer kept\n  history is kept only after op 10, the namespace is at op 20: read again and watch with --from 20 (or --from 10 for what is still kept)\nok · version 1\nview 1 · op 1\n',
    );
  });

  it('a watch that ends by itself says so; a refused one prints why; no watch support says so', async () => {
    const h1 = harness();
    h1.input.write('watch /a\n');
    await until(() => h1.streams.length === 1, 'the watch to open', h1.output);
    h1.streams[0]!.push({ kind: 'start', op: 1, events: [] });
    h1.streams[0]!.end();
    h1.input.end();
    await h1.finished;
    expect(h1.output()).to.equal('watching /a after op 1; Ctrl-C to stop\nwatch ended after op 1\n');

    const h2 = harness({
      open: () => {
        throw new HaretError('unavailable', 'watches are not available on this client', false);
      },
    });
    h2.input.end('watch /a\nget /a\n');
    await h2.finished;
    expect(h2.output()).to.equal('watch ended: unavailable: watches are not available on this client\nok · version 1\nview 1 · op 1\n');

    const h3 = harness({ noWatch: true });
    h3.input.end('watch /a\n');
    await h3.finished;
    expect(h3.output()).to.equal('watch is not available here\n');
  });

  it('terminal: Ctrl-D during a watch stops it and leaves', async () => {
    const h = harness({ terminal: true });
    h.input.write('watch /a\r');
    await until(() => h.streams.length === 1, 'the watch to open', h.output);
    h.streams[0]!.push({ kind: 'start', op: 4, events: [] });
    await until(() => h.output().includes('watching /a'), 'the start line', h.output);
    h.input.write('\x04');
    await h.finished;
    expect(h.output()).to.include('watch stopped after op 4');
    expect(h.streams[0]!.cancelled).to.be.greaterThanOrEqual(1);
  });
});

// ---- the loop against a node ---------------------------------------------------------------

/** Runs the prompt on `client` (as `npm start` and `haret cli` do) and watches /w while `writer` puts. */
async function watchThroughPrompt(client: NamespaceClient, writer: NamespaceClient, terminal: boolean): Promise<string> {
  await writer.create('/w/a', 'blob');
  const io = promptStreams();
  const { input, output } = io;
  const finished = runRepl({ input, output, terminal, execute: async (op) => asCallResult(await client.raw(op)), watch: watchWith(client) });
  const out = (): string => io.text();
  const enter = terminal ? '\r' : '\n';
  try {
    input.write(`watch /w -r --values${enter}`);
    await until(() => /watching \/w \(recursive, with values\) after op \d+/.test(io.text()), 'the watch to start', out);
    const puts = [await writer.blobPut('/w/a', 'one'), await writer.blobPut('/w/a', 'two words'), await writer.create('/w/b', 'queue')];
    await writer.create('/elsewhere', 'blob').catch(() => undefined);
    await writer.blobPut('/elsewhere', 'x'); // not watched: must not print
    const ops = puts.map((put) => put.op);
    await until(() => io.text().includes(`op ${ops[2]}  created  /w/b  queue  v0`), 'the events', out);
    if (terminal) input.write('\x03');
    else process.emit('SIGINT');
    await until(() => io.text().includes('watch stopped'), 'the stop', out);
    input.write(`get /w/a${enter}`);
    await until(() => io.text().includes('"two words" · version'), 'the get after the watch', out);
    input.end();
    await finished;
    expect(io.text()).to.include(`op ${ops[0]}  changed  /w/a  blob  v1  one`);
    expect(io.text()).to.include(`op ${ops[1]}  changed  /w/a  blob  v2  "two words"`);
    expect(io.text()).to.include(`watch stopped after op ${ops[2]}`);
    expect(io.text()).not.to.include('/elsewhere');
    return io.text();
  } finally {
    input.end();
    await finished.catch(() => undefined);
  }
}

describe('cli watch: against a node', function () {
  this.timeout(120_000);
  let node: HaretNode;

  before(async () => {
    node = await startNode({ logLevel: 'silent', clientApi: { host: '127.0.0.1', port: 0 } });
  });

  after(async () => {
    await node?.stop();
  });

  it('embedded: a watch prints the puts made meanwhile, Ctrl-C ends it, the prompt goes on', async () => {
    const client = node.client();
    const text = await watchThroughPrompt(client, client, true);
    // The directory's version moved with the creation of /w/b: a recursive watch of /w sees it.
    expect(text).to.match(/op \d+ {2}changed {2}\/w {2}directory {2}v\d+/);
  });

  it('over TCP (as haret cli): the same, with SIGINT since the input is not a terminal', async () => {
    const address = node.clientApiAddress;
    if (address === null) throw new Error('no client API');
    const remote = await connect([`${address.host}:${address.port}`]);
    try {
      const client = remote.client();
      await client.delete('/w').catch(() => undefined); // the embedded test's nodes: start afresh
      await watchThroughPrompt(client, node.client(), false);
    } finally {
      await remote.close();
    }
  });

  it('haret cli -e: one watch printed until SIGINT, exit 0', async () => {
    const address = node.clientApiAddress;
    if (address === null) throw new Error('no client API');
    const client = node.client();
    await client.create('/e', 'blob');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/haret.ts', 'cli', `${address.host}:${address.port}`, '-e', 'watch /e --values'], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(() => out.includes('watching /e (with values)'), 'the watch to start', () => out, 60_000);
      const put = await client.blobPut('/e', 'seen');
      await until(() => out.includes(`op ${put.op}  changed  /e  blob  v1  seen`), 'the event', () => out);
      child.kill('SIGINT');
      expect(await exited).to.equal(0);
      expect(out).to.include(`watch stopped after op`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
