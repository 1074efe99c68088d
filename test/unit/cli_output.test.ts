/**
 * Issue 17, "A CLI for scripts", in-process: the output forms of `-o` (src/cli/output.ts,
 * src/cli/result_forms.ts) with failures on the error stream and counted, the prompt loop
 * reporting its failures, and the `haret` command's argument checks (src/cli/args.ts,
 * src/cli/endpoints.ts). The real command is exercised in test/net/cli_scripts.test.ts.
 */

import { expect } from 'chai';
import { PassThrough, Writable } from 'node:stream';
import { parseAdminCommand } from '../../src/cli/admin_lines.ts';
import { parseCommandLine, UsageError } from '../../src/cli/args.ts';
import { outputModeOf } from '../../src/cli/common_options.ts';
import { endpointsOf } from '../../src/cli/endpoints.ts';
import { resolveStartConfig } from '../../src/cli/node_config.ts';
import { createPrinter, type OutputMode } from '../../src/cli/output.ts';
import { runRepl } from '../../src/cli/repl.ts';
import { HaretError } from '../../src/client/errors.ts';
import type { CallResult } from '../../src/client/io.ts';
import type { OpOutcome } from '../../src/tree/ops.ts';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const done = (outcome: OpOutcome, op = 7): CallResult => ({ type: 'done', outcome, epoch: 0, view: 2, op, requestNum: 1 });

/** A writable that keeps its bytes. */
function sink() {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      callback();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks), text: () => Buffer.concat(chunks).toString() };
}

function printerFor(mode: OutputMode) {
  const out = sink();
  const err = sink();
  return { printer: createPrinter(mode, { out: out.stream, err: err.stream }), out, err };
}

describe('cli output: the forms of -o', () => {
  const blob = done({ type: 'blob', value: Uint8Array.from([0x68, 0x69, 0x00, 0xff]), version: 3 });
  const missing = done({ type: 'error', error: { code: 'does_not_exist', path: '/x' } });

  it('human: results on the output, failures on the error stream, counted', () => {
    const { printer, out, err } = printerFor('human');
    expect(printer.result('get /a', done({ type: 'ok', version: 1 }))).to.equal(true);
    expect(printer.result('get /x', missing)).to.equal(false);
    printer.refusal('bogus', 'unknown command "bogus"');
    printer.failure('get /a', new HaretError('unavailable', 'connection lost', 'maybe'));
    printer.text('help', 'the help');
    expect(out.text()).to.equal('ok · version 1\nview 2 · op 7\nthe help\n');
    expect(err.text()).to.equal('error: does not exist: /x (does_not_exist)\nview 2 · op 7\nerror: unknown command "bogus"\nerror: connection lost (unavailable)\n');
    expect(printer.failures).to.equal(3);
  });

  it('json: one object per line; bytes in base64; failures with their code and whether they may have run', () => {
    const { printer, out, err } = printerFor('json');
    printer.result('get /a', blob);
    printer.result('sadd /s x', done({ type: 'set', members: [utf8('x'), Uint8Array.from([0])] }));
    printer.result('get /x', missing);
    printer.result('get /slow', { type: 'timeout' });
    printer.refusal('bogus', 'unknown command');
    printer.held('lock /l').note('holding /l token 4; Ctrl-C to release', 4);
    const lines = out.text().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).to.deep.equal({ ok: true, command: 'get /a', result: { type: 'blob', value: Buffer.from([0x68, 0x69, 0x00, 0xff]).toString('base64'), version: 3 }, epoch: 0, view: 2, op: 7 });
    expect(lines[1]).to.deep.include({ result: { type: 'set', members: ['eA==', 'AA=='] } });
    expect(lines[2]).to.deep.equal({ ok: true, command: 'lock /l', message: 'holding /l token 4; Ctrl-C to release', value: 4 });
    const failures = err.text().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(failures[0]).to.deep.equal({ ok: false, command: 'get /x', error: { code: 'does_not_exist', message: 'does not exist: /x', path: '/x' }, epoch: 0, view: 2, op: 7 });
    expect(failures[1]).to.deep.include({ ok: false, command: 'get /slow', executed: 'maybe' });
    expect(failures[2]).to.deep.equal({ ok: false, command: 'bogus', error: { code: 'usage', message: 'unknown command' } });
    expect(printer.failures).to.equal(3);
  });

  it('value: only the value, bytes as they are; a failure in the human form on the error stream', () => {
    const { printer, out, err } = printerFor('value');
    printer.result('get /a', blob);
    printer.result('qlen /q', done({ type: 'count', count: 12, version: 1 }));
    printer.result('pop /q', done({ type: 'element', value: null, version: 2 }));
    printer.result('create blob /s- --seq', done({ type: 'ok', version: 0, path: '/s-0000000004' }));
    printer.result('put /a x', done({ type: 'ok', version: 5 }));
    printer.result('subset /a /b', done({ type: 'answer', value: true }));
    printer.result('ls', done({ type: 'list', version: 1, entries: [{ name: 'a', path: '/a', nodeType: 'blob', version: 0 }, { name: 'b', path: '/b', nodeType: 'set', version: 0 }] }));
    printer.result('cas : get /a ; qlen /q', done({ type: 'txn', results: [{ type: 'blob', value: utf8('t'), version: 1 }, { type: 'count', count: 2, version: 1 }] }));
    printer.result('get /x', missing);
    printer.held('lock /l').note('waiting for the lock /l');
    printer.held('leader /e').note('leader a · token 2', utf8('a'));
    expect([...out.bytes()]).to.deep.equal([0x68, 0x69, 0x00, 0xff, 10, ...utf8('12\n\n/s-0000000004\n5\ntrue\n/a\n/b\nt\n2\na\n')]);
    expect(err.text()).to.equal('error: does not exist: /x (does_not_exist)\nview 2 · op 7\nwaiting for the lock /l\n');
    expect(printer.failures).to.equal(1);
  });

  it('the prompt loop in json form: failures to the error output, and counted in its summary', async () => {
    const input = new PassThrough();
    const out = sink();
    const err = sink();
    const finished = runRepl({
      input,
      output: out.stream,
      errorOutput: err.stream,
      mode: 'json',
      terminal: false,
      execute: async (op) => (op.type === 'blob_get' && op.path === '/x' ? missing : done({ type: 'ok', version: 1 })),
    });
    input.end('put /a v\nget /x\nnot-a-command\nput /b v\n');
    const summary = await finished;
    expect(summary.failures).to.equal(2);
    expect(out.text().trim().split('\n').map((line) => (JSON.parse(line) as { command: string }).command)).to.deep.equal(['put /a v', 'put /b v']);
    expect(err.text().trim().split('\n').map((line) => (JSON.parse(line) as { command: string }).command)).to.deep.equal(['get /x', 'not-a-command']);
  });
});

describe('cli output: the haret command\'s arguments', () => {
  const spec = { namespace: { type: 'string', short: 'n' }, execute: { type: 'string', short: 'e', multiple: true }, verbose: { type: 'boolean' } } as const;
  const usageOf = (args: readonly string[]): string => {
    try {
      parseCommandLine('haret cli', args, spec);
    } catch (error) {
      if (error instanceof UsageError) return `${error.message} | ${error.hint}`;
      throw error;
    }
    return 'no error';
  };

  it('splits options, repeats -e in order, and answers --help whatever else is there', () => {
    const parsed = parseCommandLine('haret cli', ['127.0.0.1:1', '-n', 'ns', '-e', 'get /a', '--execute=put /a "x y"', '-e', '--not-an-option'], spec);
    expect(parsed.positionals).to.deep.equal(['127.0.0.1:1']);
    expect(parsed.values.namespace).to.equal('ns');
    expect(parsed.values.execute).to.deep.equal(['get /a', 'put /a "x y"', '--not-an-option']);
    expect(parseCommandLine('haret cli', ['--bogus', '--help'], spec).help).to.equal(true);
    expect(parseCommandLine('haret cli', ['-h'], spec).help).to.equal(true);
  });

  it('one short message per usage error, with the hint', () => {
    expect(usageOf(['--foo'])).to.equal("unknown option --foo | Try 'haret cli --help'.");
    expect(usageOf(['--namspace', 'x'])).to.equal("unknown option --namspace (did you mean --namespace?) | Try 'haret cli --help'.");
    expect(usageOf(['-x'])).to.equal("unknown option -x | Try 'haret cli --help'.");
    expect(usageOf(['-n'])).to.contain('option -n needs a value');
    expect(usageOf(['--verbose=yes'])).to.contain('option --verbose takes no value');
    expect(usageOf(['-n', 'a', '--namespace', 'b'])).to.contain('option --namespace given more than once');
  });

  it('addresses as haret start takes them; --endpoints in order; the mistakes named', () => {
    expect(endpointsOf('haret cli', [':7878'], undefined)).to.deep.equal(['127.0.0.1:7878']);
    expect(endpointsOf('haret cli', ['7878'], undefined)).to.deep.equal(['127.0.0.1:7878']);
    expect(endpointsOf('haret cli', ['[::1]:7878'], undefined)).to.deep.equal(['[::1]:7878']);
    expect(endpointsOf('haret cli', [], 'a.example:1, :2,10.0.0.3:3')).to.deep.equal(['a.example:1', '127.0.0.1:2', '10.0.0.3:3']);
    const refusal = (positionals: string[], endpoints?: string): string => {
      try {
        endpointsOf('haret cli', positionals, endpoints);
        return 'no error';
      } catch (error) {
        return error instanceof UsageError ? error.message : String(error);
      }
    };
    expect(refusal([])).to.contain('missing');
    expect(refusal([':1'], ':2')).to.contain('not both');
    expect(refusal([':1', ':2'])).to.contain('--endpoints');
    expect(refusal([], ':1,,:2')).to.contain('empty address');
    expect(refusal([':0'])).to.contain('port 0');
    expect(refusal(['host:port'])).to.contain('is not an address');
    expect(outputModeOf('haret cli', undefined)).to.equal('human');
    expect(outputModeOf('haret cli', 'value')).to.equal('value');
    expect(() => outputModeOf('haret cli', 'yaml')).to.throw(UsageError, 'human, json, value');
  });

  it(':PORT wherever haret start takes an address: its --join, and the admin command cluster join', () => {
    const resolved = resolveStartConfig({ clusterAddress: ':7202', join: [':7201', '10.0.0.1:7201'], noLocalNamespace: true });
    expect(resolved.cluster).to.deep.include({ host: '127.0.0.1', port: 7202, join: ['127.0.0.1:7201', '10.0.0.1:7201'] });
    expect(parseAdminCommand('cluster join :7201')).to.deep.equal({ type: 'query', query: { type: 'cluster_join', address: '127.0.0.1:7201' } });
    expect(parseAdminCommand('cluster join nowhere')).to.deep.include({ type: 'error' });
  });
});
