/**
 * The prompt's command language (src/cli/commands.ts), its result formatting
 * (src/cli/format.ts) and its loop (src/cli/repl.ts), driven by in-memory streams.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CallResult } from '../../src/client/io.ts';
import { commandForOp, commandNames, helpText, leaseOp, parseCommand, type ParsedLine } from '../../src/cli/commands.ts';
import { formatBytes, formatError, formatResult } from '../../src/cli/format.ts';
import { runRepl } from '../../src/cli/repl.ts';
import { describeTreeError, treeErrors, type TreeError } from '../../src/tree/errors.ts';
import type { OpOutcome, OpResult, TreeOp, TreeOpType } from '../../src/tree/ops.ts';
import { promptStreams, sleep, utf8 } from './cli_test_io.ts';

// ---- helpers -------------------------------------------------------------------------------

const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes[${Array.from(v).join(',')}]` : v));
}

function parsedOp(line: string): TreeOp {
  const parsed = parseCommand(line);
  if (parsed.type !== 'op') throw new Error(`expected an op from ${JSON.stringify(line)}, got ${show(parsed)}`);
  return parsed.op;
}

function parseError(line: string): string {
  const parsed = parseCommand(line);
  if (parsed.type !== 'error') throw new Error(`expected an error from ${JSON.stringify(line)}, got ${show(parsed)}`);
  return parsed.message;
}

const done = (outcome: OpOutcome, view = 2, op = 17, epoch = 0): CallResult => ({ type: 'done', outcome, epoch, view, op, requestNum: 5 });

// ---- parsing: every operation ----------------------------------------------------------------

/** One line per operation type (and then some), with the exact op it must parse to. */
const opCases: readonly (readonly [string, TreeOp])[] = [
  ['mkdir /a/b', { type: 'create', path: '/a/b', nodeType: 'directory' }],
  ['create blob /a', { type: 'create', path: '/a', nodeType: 'blob' }],
  ['create queue /q', { type: 'create', path: '/q', nodeType: 'queue' }],
  ['create set /s', { type: 'create', path: '/s', nodeType: 'set' }],
  ['create directory /d', { type: 'create', path: '/d', nodeType: 'directory' }],
  ['create dir /d', { type: 'create', path: '/d', nodeType: 'directory' }],
  ['create BLOB /a', { type: 'create', path: '/a', nodeType: 'blob' }],
  ['rm /a', { type: 'delete', path: '/a' }],
  ['ls', { type: 'list', path: '/', recursive: false }],
  ['ls /a', { type: 'list', path: '/a', recursive: false }],
  ['ls -r', { type: 'list', path: '/', recursive: true }],
  ['ls /a -r', { type: 'list', path: '/a', recursive: true }],
  ['ls -R /a', { type: 'list', path: '/a', recursive: true }],
  ['ls --recursive /a', { type: 'list', path: '/a', recursive: true }],
  ['stat /a', { type: 'stat', path: '/a' }],
  ['put /a hello', { type: 'blob_put', path: '/a', value: utf8('hello') }],
  ['get /a', { type: 'blob_get', path: '/a' }],
  ['size /a', { type: 'blob_size', path: '/a' }],
  ['push /q job-1', { type: 'queue_push', path: '/q', value: utf8('job-1') }],
  ['pop /q', { type: 'queue_pop', path: '/q' }],
  ['front /q', { type: 'queue_front', path: '/q' }],
  ['back /q', { type: 'queue_back', path: '/q' }],
  ['qlen /q', { type: 'queue_len', path: '/q' }],
  ['sadd /s x', { type: 'set_insert', path: '/s', value: utf8('x') }],
  ['srem /s x', { type: 'set_remove', path: '/s', value: utf8('x') }],
  ['scontains /s x', { type: 'set_contains', path: '/s', value: utf8('x') }],
  ['union /s1 /s2', { type: 'set_union', paths: ['/s1', '/s2'], sets: [] }],
  ['union /s1 {a,b,c} /s2 {}', { type: 'set_union', paths: ['/s1', '/s2'], sets: [[utf8('a'), utf8('b'), utf8('c')], []] }],
  ['union', { type: 'set_union', paths: [], sets: [] }],
  ['inter /s1 /s2', { type: 'set_intersection', path1: '/s1', path2: '/s2' }],
  ['diff /s1 /s2', { type: 'set_difference', path1: '/s1', path2: '/s2' }],
  ['diff /s2 /s1', { type: 'set_difference', path1: '/s2', path2: '/s1' }],
  ['symdiff /s1 /s2', { type: 'set_symmetric_difference', path1: '/s1', path2: '/s2' }],
  ['subset /s /t', { type: 'set_is_subset', path: '/s', other: { type: 'path', path: '/t' } }],
  ['subset /s {a, b}', { type: 'set_is_subset', path: '/s', other: { type: 'literal', members: [utf8('a'), utf8('b')] } }],
  ['superset /s /t', { type: 'set_is_superset', path: '/s', other: { type: 'path', path: '/t' } }],
  ['superset /s {}', { type: 'set_is_superset', path: '/s', other: { type: 'literal', members: [] } }],
  [
    'cas /a=3 /b/c=0 : put /a x ; pop /q ; get /a',
    {
      type: 'multi_cas',
      guards: [
        { path: '/a', version: 3 },
        { path: '/b/c', version: 0 },
      ],
      ops: [
        { type: 'blob_put', path: '/a', value: utf8('x') },
        { type: 'queue_pop', path: '/q' },
        { type: 'blob_get', path: '/a' },
      ],
    },
  ],
];

describe('cli commands: every operation', () => {
  for (const [line, expected] of opCases) {
    it(`${line} parses to ${expected.type}`, () => {
      expect(parsedOp(line)).to.deep.equal(expected);
    });
  }

  /** Lease commands are the prompt's own (it keeps its leases alive), but each stands for one op. */
  const leaseCases: readonly (readonly [string, TreeOp])[] = [
    ['lease grant 5000', { type: 'lease_grant', ttlMs: 5000 }],
    ['lease keepalive 3 4', { type: 'lease_keepalive', ids: [3, 4] }],
    ['lease revoke 3', { type: 'lease_revoke', id: 3 }],
  ];
  for (const [line, expected] of leaseCases) {
    it(`${line} stands for ${expected.type}`, () => {
      const parsed = parseCommand(line);
      expect(parsed.type === 'lease' ? leaseOp(parsed.lease) : parsed).to.deep.equal(expected);
    });
  }

  it('covers every TreeOp type, each through the command commandForOp names', () => {
    for (const type of Object.keys(commandForOp) as TreeOpType[]) {
      const covered = [...opCases, ...leaseCases].some(([line, op]) => op.type === type && line.split(' ')[0] === commandForOp[type]);
      expect(covered, `no parse case for ${type} through ${commandForOp[type]}`).to.equal(true);
    }
  });

  it('accepts upper-case command names and surrounding spaces', () => {
    expect(parsedOp('  GET   /a  ')).to.deep.equal({ type: 'blob_get', path: '/a' });
  });

  it('ignores a trailing ;', () => {
    expect(parsedOp('get /a;')).to.deep.equal({ type: 'blob_get', path: '/a' });
    expect(parsedOp('get /a ;')).to.deep.equal({ type: 'blob_get', path: '/a' });
  });

  it('keeps path characters the service will judge (only the leading / is checked here)', () => {
    expect(parsedOp('get /a//b/../c')).to.deep.equal({ type: 'blob_get', path: '/a//b/../c' });
    expect(parsedOp('get "/with space"')).to.deep.equal({ type: 'blob_get', path: '/with space' });
  });
});

describe('cli commands: values', () => {
  const value = (line: string): Uint8Array => {
    const op = parsedOp(line);
    if (op.type !== 'blob_put') throw new Error(show(op));
    return op.value;
  };

  it('a bare word is its UTF-8 bytes', () => {
    expect(value('put /a héllo')).to.deep.equal(utf8('héllo'));
    expect(value("put /a it's")).to.deep.equal(utf8("it's"));
    expect(value('put /a a{b}')).to.deep.equal(utf8('a{b}'));
  });

  it('double quotes take spaces and escapes', () => {
    expect(value('put /a "hello world"')).to.deep.equal(utf8('hello world'));
    expect(value('put /a "say \\"hi\\""')).to.deep.equal(utf8('say "hi"'));
    expect(value('put /a "back\\\\slash"')).to.deep.equal(utf8('back\\slash'));
    expect(value('put /a "a\\nb\\tc\\rd\\0"')).to.deep.equal(utf8('a\nb\tc\rd\0'));
    expect(value('put /a "\\u{e9}\\u{1F600}"')).to.deep.equal(utf8('é😀'));
    expect(value('put /a ""')).to.deep.equal(b());
    expect(value('put /a "semi;colon"')).to.deep.equal(utf8('semi;colon'));
  });

  it('single quotes are literal', () => {
    expect(value('put /cfg \'{"a": 1}\'')).to.deep.equal(utf8('{"a": 1}'));
    expect(value("put /a 'no \\n escape'")).to.deep.equal(utf8('no \\n escape'));
  });

  it('0x is hex bytes when bare and text when quoted', () => {
    expect(value('put /a 0x00ff10')).to.deep.equal(b(0, 255, 16));
    expect(value('put /a 0xABcd')).to.deep.equal(b(0xab, 0xcd));
    expect(value('put /a 0x')).to.deep.equal(b());
    expect(value('put /a "0x00"')).to.deep.equal(utf8('0x00'));
  });

  it('set literals take bare, quoted and hex members and a trailing comma', () => {
    expect(parsedOp('union { a , "b c",0x00, \'d\', }')).to.deep.equal({
      type: 'set_union',
      paths: [],
      sets: [[utf8('a'), utf8('b c'), b(0), utf8('d')]],
    });
  });
});

describe('cli commands: transactions', () => {
  it('takes zero guards', () => {
    expect(parsedOp('cas : put /a x')).to.deep.equal({ type: 'multi_cas', guards: [], ops: [{ type: 'blob_put', path: '/a', value: utf8('x') }] });
  });

  it('takes zero ops (a guard check only)', () => {
    expect(parsedOp('cas /a=3 :')).to.deep.equal({ type: 'multi_cas', guards: [{ path: '/a', version: 3 }], ops: [] });
  });

  it('accepts cas: and a last guard glued to the colon', () => {
    const expected: TreeOp = { type: 'multi_cas', guards: [{ path: '/a', version: 1 }], ops: [{ type: 'blob_get', path: '/a' }] };
    expect(parsedOp('cas /a=1: get /a')).to.deep.equal(expected);
    expect(parsedOp('cas: get /a')).to.deep.equal({ type: 'multi_cas', guards: [], ops: [{ type: 'blob_get', path: '/a' }] });
  });

  it('splits a guard at its last = (paths may contain =)', () => {
    expect(parsedOp('cas /k=v=12 : get /k=v')).to.deep.equal({
      type: 'multi_cas',
      guards: [{ path: '/k=v', version: 12 }],
      ops: [{ type: 'blob_get', path: '/k=v' }],
    });
  });

  it('keeps ; inside quoted values and ignores a trailing ;', () => {
    expect(parsedOp('cas : put /a "x;y" ; get /a ;')).to.deep.equal({
      type: 'multi_cas',
      guards: [],
      ops: [
        { type: 'blob_put', path: '/a', value: utf8('x;y') },
        { type: 'blob_get', path: '/a' },
      ],
    });
  });

  it('takes every kind of op, set literals included', () => {
    expect(parsedOp('cas /=0 : mkdir /d ; sadd /s x ; subset /s {x} ; union /s {y} ; ls /d -r')).to.deep.equal({
      type: 'multi_cas',
      guards: [{ path: '/', version: 0 }],
      ops: [
        { type: 'create', path: '/d', nodeType: 'directory' },
        { type: 'set_insert', path: '/s', value: utf8('x') },
        { type: 'set_is_subset', path: '/s', other: { type: 'literal', members: [utf8('x')] } },
        { type: 'set_union', paths: ['/s'], sets: [[utf8('y')]] },
        { type: 'list', path: '/d', recursive: true },
      ],
    });
  });
});

// ---- parsing: errors -------------------------------------------------------------------------

/** Every way a line can be wrong, with a piece of the message it must give. */
const errorCases: readonly (readonly [string, string])[] = [
  ['frobnicate /a', 'unknown command "frobnicate" (help lists every command)'],
  ['lst /a', 'unknown command "lst"; did you mean "ls"?'],
  ['gett /a', 'did you mean "get"?'],
  ['blob_put /a x', 'did you mean "put"?'],
  ['multi_cas : get /a', 'did you mean "cas"?'],
  ['delete /a', 'did you mean "rm"?'],
  ['constructor', 'unknown command "constructor" (help lists every command)'],
  ['__proto__ /a', 'unknown command "__proto__" (help lists every command)'],
  ['tostring', 'unknown command "tostring" (help lists every command)'],
  ['get', 'get: missing PATH; usage: get PATH'],
  ['get /a /b', 'get: too many arguments: expected 1, got 2; usage: get PATH'],
  ['put', 'put: missing PATH; usage: put PATH VALUE'],
  ['put /a', 'put: missing VALUE; usage: put PATH VALUE'],
  ['put /a hello world', 'put: too many arguments: expected 2, got 3 (quote a value that has spaces); usage: put PATH VALUE'],
  ['push /q', 'push: missing VALUE'],
  ['sadd /s', 'sadd: missing VALUE'],
  ['srem /s a b', 'srem: too many arguments'],
  ['scontains', 'scontains: missing PATH'],
  ['pop', 'pop: missing PATH'],
  ['front /q x', 'front: too many arguments'],
  ['back', 'back: missing PATH'],
  ['qlen', 'qlen: missing PATH'],
  ['size', 'size: missing PATH'],
  ['stat', 'stat: missing PATH'],
  ['rm', 'rm: missing PATH'],
  ['mkdir', 'mkdir: missing PATH; usage: mkdir PATH'],
  ['mkdir /a /b', 'mkdir: too many arguments'],
  ['get a/b', 'get: PATH must be an absolute path starting with /, got a/b'],
  ['get "a b"', 'get: PATH must be an absolute path starting with /, got "a b"'],
  ['get {x}', 'get: PATH must be a path, got a set literal'],
  ['put /a {x}', 'put: VALUE is one value, not a set literal'],
  ['create', 'create: missing TYPE; usage: create TYPE PATH'],
  ['create blob', 'create: missing PATH'],
  ['create file /a', 'create: unknown type file: expected blob, queue, set or directory; usage: create TYPE PATH'],
  ['create /a blob', '(the type comes first: create blob /a)'],
  ['ls /a /b', 'ls: too many arguments: at most one PATH'],
  ['ls -x', 'ls: unknown option -x'],
  ['ls a', 'ls: PATH must be an absolute path'],
  ['inter /a', 'inter: missing PATH2; usage: inter PATH1 PATH2'],
  ['diff', 'diff: missing PATH1'],
  ['diff /a b', 'diff: PATH2 must be an absolute path'],
  ['symdiff /a /b /c', 'symdiff: too many arguments'],
  ['inter {a} /b', 'inter: PATH1 must be a path, got a set literal'],
  ['subset /s', 'subset: missing OTHER; usage: subset PATH PATH2|{SET}'],
  ['superset /s x', 'superset: OTHER must be an absolute path'],
  ['subset {a} {b}', 'subset: PATH must be a path, got a set literal'],
  ['union /a b', 'union: PATH must be an absolute path'],
  ['put /a 0x1', 'hex value 0x1 has an odd number of digits'],
  ['put /a 0xzz', 'bad hex value 0xzz'],
  ['union {0xq}', 'bad hex value 0xq'],
  ['put /a "abc', 'unclosed " quote'],
  ['put /a "abc\\', 'unclosed " quote'],
  ["put /a 'abc", "unclosed ' quote"],
  ['put /a "a\\q"', 'unknown escape \\q'],
  ['put /a "\\u{d800}"', 'bad \\u escape'],
  ['put /a "\\u{110000}"', 'bad \\u escape'],
  ['put /a "\\u{zz}"', 'bad \\u escape'],
  ['put /a "\\u41"', 'bad \\u escape'],
  ['put /a "x"y', 'expected a space after a closing quote'],
  ['union {a,b}c', 'expected a space after a set literal'],
  ['union {a', 'unclosed { set literal'],
  ['union {a,', 'unclosed { set literal'],
  ['union {a b}', "expected ',' or '}' in a set literal"],
  ['union {a,,b}', 'empty member in a set literal'],
  ['union {,}', 'empty member in a set literal'],
  ['union {{a}}', 'set literals do not nest'],
  ['"get" /a', 'expected a command name, got "get"'],
  ['{a} /b', 'expected a command name, got a set literal'],
  [';', 'expected a command name'],
  ['get /a; get /b', "get: ';' separates the ops of a cas transaction; run one command per line"],
  ['cas put /a x', "cas: expected a guard PATH=VERSION or ':', got put (missing ':' before the ops?)"],
  ['cas /a=3 put /a x', "(missing ':' before the ops?)"],
  ['cas /a=3', "cas: missing ':' between the guards and the ops"],
  ['cas', "cas: missing ':'"],
  ['cas a=3 : get /a', 'cas: guard path must be absolute, got a'],
  ['cas /a=x : get /a', 'cas: expected a guard PATH=VERSION'],
  ['cas /a=-1 : get /a', 'cas: expected a guard PATH=VERSION'],
  ['cas "/a=1" : get /a', 'got "/a=1"'],
  ['cas {a} : get /a', 'got a set literal'],
  ['cas /a=99999999999999999999 : get /a', 'cas: guard version 99999999999999999999 is too big'],
  ['cas : get /a ;; get /b', 'cas: op 2 is empty'],
  ['cas : ; get /a', 'cas: op 1 is empty'],
  ['cas : cas : get /a', 'cas: op 1: transactions do not nest'],
  ['cas : get /a ; help', 'cas: op 2: only operations can run inside cas, not help'],
  ['cas : status', 'only operations can run inside cas, not status'],
  ['cas : exit', 'only operations can run inside cas, not quit'],
  ['cas : put /a', 'cas: op 1: put: missing VALUE; usage: put PATH VALUE'],
  ['cas : get /a ; nope /a', 'unknown command "nope"'],
  ['cas : "get" /a', 'cas: op 1: expected a command name, got "get"'],
  ['help a b', 'help: too many arguments; usage: help [COMMAND|values]'],
  ['help nothing-like-this', 'help: unknown topic "nothing-like-this"'],
  ['help {x}', 'help: expected a command name'],
  ['status now', 'status takes no arguments; usage: status'],
  ['quit now', 'quit takes no arguments; usage: quit'],
  ['exit 1', 'quit takes no arguments'],
];

describe('cli commands: errors', () => {
  for (const [line, message] of errorCases) {
    it(`${line} -> ${message}`, () => {
      expect(parseError(line)).to.include(message);
    });
  }

  it('never throws, whatever the line', () => {
    const alphabet = fc.constantFrom(...'ab/ =:;,{}"\'\\0xu-r'.split(''), 'cas', 'put', 'union', 'ls', '\u{1F600}', '\n');
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(alphabet).map((parts) => parts.join(''))), (line) => {
        const parsed: ParsedLine = parseCommand(line);
        expect(['op', 'help', 'status', 'quit', 'empty', 'error']).to.include(parsed.type);
      }),
      { numRuns: 2000 },
    );
  });
});

// ---- parsing: session commands and help --------------------------------------------------------

describe('cli commands: session commands and help', () => {
  const cases: readonly (readonly [string, ParsedLine])[] = [
    ['', { type: 'empty' }],
    ['   \t ', { type: 'empty' }],
    ['# a comment; with {odd "things', { type: 'empty' }],
    ['help', { type: 'help' }],
    ['?', { type: 'help' }],
    ['help put', { type: 'help', topic: 'put' }],
    ['HELP PUT', { type: 'help', topic: 'put' }],
    ['help exit', { type: 'help', topic: 'quit' }],
    ['help values', { type: 'help', topic: 'values' }],
    ['help cas', { type: 'help', topic: 'cas' }],
    ['status', { type: 'status' }],
    ['quit', { type: 'quit' }],
    ['exit', { type: 'quit' }],
  ];
  for (const [line, expected] of cases) {
    it(`${JSON.stringify(line)} parses to ${expected.type}`, () => {
      expect(parseCommand(line)).to.deep.equal(expected);
    });
  }

  it('help lists every command with its syntax', () => {
    const text = helpText();
    for (const name of commandNames) expect(text, name).to.match(new RegExp(`(^|\\s)${name}\\b`, 'm'));
    for (const command of Object.values(commandForOp)) expect(text).to.include(`  ${command} `);
    expect(text).to.include('cas [PATH=VERSION]... : OP [; OP]...');
    expect(text).to.include('0x');
  });

  it('help COMMAND shows the syntax and meaning of every command', () => {
    for (const name of commandNames) {
      const text = helpText(name);
      expect(text, name).not.to.include('unknown topic');
      expect(text.split('\n').length, name).to.be.greaterThanOrEqual(2);
    }
    expect(helpText('diff')).to.include('diff PATH1 PATH2').and.include('PATH1 − PATH2');
    expect(helpText('exit')).to.include('quit').and.include('also: exit');
  });

  it('help cas documents the grammar with an example', () => {
    const text = helpText('cas');
    expect(text).to.include('PATH=VERSION').and.include(';').and.include('Example: cas ');
    const example = /Example: (cas .*)$/m.exec(text)?.[1];
    expect(parseCommand(example ?? '').type).to.equal('op');
  });

  it('help values documents quoting and hex', () => {
    expect(helpText('values')).to.include('\\"').and.include('0x').and.include('{a, "b c", 0x00}');
  });

  it('help on an unknown topic answers instead of throwing', () => {
    expect(helpText('lss')).to.include('unknown topic "lss"; did you mean "ls"?');
  });
});

// ---- formatting --------------------------------------------------------------------------------

describe('cli format: results', () => {
  it('ok, with view and op of the log entry', () => {
    expect(formatResult(done({ type: 'ok', version: 3 }))).to.equal('ok · version 3\nview 2 · op 17');
  });

  it('shows the epoch only once it has moved', () => {
    expect(formatResult(done({ type: 'ok', version: 3 }, 4, 9, 1))).to.equal('ok · version 3\nepoch 1 · view 4 · op 9');
  });

  it('blob: text when printable, quoted when needed, hex otherwise', () => {
    const blob = (value: Uint8Array): string => formatResult(done({ type: 'blob', value, version: 4 })).split('\n')[0]!;
    expect(blob(utf8('hello'))).to.equal('hello · version 4');
    expect(blob(utf8('héllo😀'))).to.equal('héllo😀 · version 4');
    expect(blob(utf8('hello world'))).to.equal('"hello world" · version 4');
    expect(blob(utf8('{"a":1}'))).to.equal('\'{"a":1}\' · version 4');
    expect(blob(utf8('say "it\'s"'))).to.equal('"say \\"it\'s\\"" · version 4');
    expect(blob(utf8('a\nb\tc\\'))).to.equal('"a\\nb\\tc\\\\" · version 4');
    expect(blob(b())).to.equal('"" · version 4');
    expect(blob(utf8('0x12'))).to.equal('"0x12" · version 4');
    expect(blob(b(0, 255, 16))).to.equal('0x00ff10 · version 4');
    expect(blob(b(0xc3))).to.equal('0xc3 · version 4');
    expect(blob(utf8('bell\u0007'))).to.equal('0x62656c6c07 · version 4');
    expect(blob(b(0xef, 0xbb, 0xbf, 0x61))).to.equal('"\u{feff}a" · version 4');
  });

  it('formatted values read back as the same bytes', () => {
    const values = [utf8('plain'), utf8('two words'), utf8('{"json": [1, 2]}'), utf8('q"uo\'te'), utf8('tab\tnl\n'), utf8(';'), utf8('#x'), b(), b(0, 1, 2), utf8('0xab')];
    for (const value of values) {
      const op = parsedOp(`put /a ${formatBytes(value)}`);
      expect(op, formatBytes(value)).to.deep.equal({ type: 'blob_put', path: '/a', value });
    }
  });

  it('element: a value, or an empty queue', () => {
    expect(formatResult(done({ type: 'element', value: utf8('job'), version: 2 }))).to.equal('job · version 2\nview 2 · op 17');
    expect(formatResult(done({ type: 'element', value: null, version: 2 }))).to.equal('(empty queue) · version 2\nview 2 · op 17');
  });

  it('count, bool and answer', () => {
    expect(formatResult(done({ type: 'count', count: 12, version: 5 }))).to.equal('12 · version 5\nview 2 · op 17');
    expect(formatResult(done({ type: 'bool', value: true, version: 1 }))).to.equal('true · version 1\nview 2 · op 17');
    expect(formatResult(done({ type: 'bool', value: false, version: 1 }))).to.equal('false · version 1\nview 2 · op 17');
    expect(formatResult(done({ type: 'answer', value: false }))).to.equal('false\nview 2 · op 17');
  });

  it('set: its members, one a line', () => {
    expect(formatResult(done({ type: 'set', members: [] }))).to.equal('{} (empty set)\nview 2 · op 17');
    expect(formatResult(done({ type: 'set', members: [utf8('a')] }))).to.equal('1 member\n  a\nview 2 · op 17');
    expect(formatResult(done({ type: 'set', members: [b(0), utf8('a'), utf8('b c')] }))).to.equal('3 members\n  0x00\n  a\n  "b c"\nview 2 · op 17');
  });

  it('list: aligned type, version and path', () => {
    const result: OpResult = {
      type: 'list',
      version: 7,
      entries: [
        { name: 'a', path: '/a', nodeType: 'directory', version: 4 },
        { name: 'x', path: '/a/x', nodeType: 'blob', version: 12 },
        { name: 's', path: '/s', nodeType: 'set', version: 0 },
      ],
    };
    expect(formatResult(done(result)).split('\n')).to.deep.equal([
      '3 entries · directory version 7',
      '  directory   v4  /a',
      '  blob       v12  /a/x',
      '  set         v0  /s',
      'view 2 · op 17',
    ]);
    expect(formatResult(done({ type: 'list', version: 1, entries: [] }))).to.equal('(empty directory) · version 1\nview 2 · op 17');
  });

  it('stat: type, version and size in the unit of the type', () => {
    const stat = (nodeType: 'blob' | 'queue' | 'set' | 'directory', size: number): string => formatResult(done({ type: 'stat', nodeType, version: 3, size })).split('\n')[0]!;
    expect(stat('blob', 1)).to.equal('blob · version 3 · size 1 byte');
    expect(stat('blob', 10)).to.equal('blob · version 3 · size 10 bytes');
    expect(stat('queue', 2)).to.equal('queue · version 3 · size 2 elements');
    expect(stat('set', 0)).to.equal('set · version 3 · size 0 members');
    expect(stat('directory', 1)).to.equal('directory · version 3 · size 1 child');
    expect(stat('directory', 5)).to.equal('directory · version 3 · size 5 children');
  });

  it('txn: one line per op result, multi-line results indented', () => {
    const result: OpResult = {
      type: 'txn',
      results: [
        { type: 'ok', version: 1 },
        { type: 'blob', value: utf8('x'), version: 1 },
        { type: 'set', members: [utf8('a'), utf8('b')] },
      ],
    };
    expect(formatResult(done(result)).split('\n')).to.deep.equal(['[0] ok · version 1', '[1] x · version 1', '[2] 2 members', '      a', '      b', 'view 2 · op 17']);
    expect(formatResult(done({ type: 'txn', results: [] }))).to.equal('ok · transaction with no ops\nview 2 · op 17');
  });

  it('txn: labels align past ten results', () => {
    const results: OpResult[] = Array.from({ length: 11 }, (_, i) => ({ type: 'ok', version: i }));
    const lines = formatResult(done({ type: 'txn', results })).split('\n');
    expect(lines[0]).to.equal('[0]  ok · version 0');
    expect(lines[10]).to.equal('[10] ok · version 10');
  });
});

describe('cli format: errors and service results', () => {
  const errors: readonly TreeError[] = [
    treeErrors.alreadyExists('/a'),
    treeErrors.doesNotExist('/a'),
    treeErrors.wrongType('/a', 'queue'),
    treeErrors.notADirectory('/a'),
    treeErrors.badPath('empty component'),
    treeErrors.cannotDeleteRoot(),
    treeErrors.casFailed('/a', 3, null),
    treeErrors.tooLarge('value_bytes', 1024),
    treeErrors.invalidRequest('no such op'),
  ];
  for (const error of errors) {
    it(`${error.code}: the sentence and the code`, () => {
      expect(formatResult(done({ type: 'error', error }))).to.equal(`error: ${describeTreeError(error)} (${error.code})\nview 2 · op 17`);
    });
  }

  it('names the failed op of a transaction', () => {
    expect(formatResult(done({ type: 'error', error: treeErrors.wrongType('/q', 'blob'), at: 1 }))).to.equal(
      'error in transaction op [1]: wrong type: /q is a blob (wrong_type)\nview 2 · op 17',
    );
    expect(formatResult(done({ type: 'error', error: treeErrors.casFailed('/a', 3, 4) }))).to.equal(
      'error: cas failed: /a expected version 3, actual 4 (cas_failed)\nview 2 · op 17',
    );
  });

  it('rejected: not executed, with the reason', () => {
    expect(formatResult({ type: 'rejected', outcome: { type: 'error', error: treeErrors.tooLarge('value_bytes', 1048576) } })).to.equal(
      'rejected before the log, so not executed: error: too large: value_bytes exceeds 1048576 (too_large)',
    );
  });

  it('timeout, session_expired and overloaded: a clear sentence each', () => {
    expect(formatResult({ type: 'timeout' })).to.match(/^timeout: .*may or may not have executed/);
    expect(formatResult({ type: 'session_expired', executed: false })).to.match(/^session expired: .*did not execute/);
    expect(formatResult({ type: 'session_expired', executed: 'maybe' })).to.match(/^session expired while retrying: .*may have executed/);
    expect(formatResult({ type: 'overloaded' })).to.match(/^overloaded: .*was not sent/);
  });

  it('formatError: errors, strings and odd values', () => {
    expect(formatError(new Error('boom'))).to.equal('error: boom');
    expect(formatError(new TypeError('bad'))).to.equal('error: TypeError: bad');
    expect(formatError(new Error(''))).to.equal('error: (no message)');
    expect(formatError('lost')).to.equal('error: lost');
    expect(formatError({ code: 1 })).to.equal('error: {"code":1}');
    expect(formatError(undefined)).to.equal('error: undefined');
    expect(formatError(10n)).to.equal('error: [object BigInt]');
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    expect(formatError(cyclic)).to.equal('error: [object Object]');
  });
});

// ---- the loop ------------------------------------------------------------------------------------

/** A REPL over in-memory streams, with a fake `execute` that records calls. */
function harness(options: { execute?: (op: TreeOp, index: number) => Promise<CallResult>; status?: () => Promise<string>; terminal?: boolean; prompt?: string } = {}) {
  const io = promptStreams();
  const { input, output } = io;
  const ops: TreeOp[] = [];
  let running = 0;
  let maxRunning = 0;
  const execute = async (op: TreeOp): Promise<CallResult> => {
    const index = ops.length;
    ops.push(op);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      return await (options.execute?.(op, index) ?? Promise.resolve(done({ type: 'ok', version: index }, 1, index + 1)));
    } finally {
      running -= 1;
    }
  };
  const done$ = runRepl({
    input,
    output,
    execute,
    ...(options.status === undefined ? {} : { status: options.status }),
    ...(options.terminal === undefined ? {} : { terminal: options.terminal }),
    ...(options.prompt === undefined ? {} : { prompt: options.prompt }),
  });
  return {
    input,
    ops,
    finished: done$,
    output: () => io.text(),
    maxRunning: () => maxRunning,
  };
}

describe('cli repl', () => {
  it('runs piped lines in order, one at a time, and resolves at end of input', async () => {
    // The first op is the slowest: a loop that did not wait would print the others first.
    const delays = [30, 0, 10];
    const h = harness({ execute: async (op, index) => (await sleep(delays[index] ?? 0), done({ type: 'ok', version: index }, 1, index + 1)) });
    h.input.end('mkdir /a\nput /a x\nget /a\n');
    await h.finished;
    expect(h.ops).to.deep.equal([parsedOp('mkdir /a'), parsedOp('put /a x'), parsedOp('get /a')]);
    expect(h.maxRunning()).to.equal(1);
    expect(h.output()).to.equal('ok · version 0\nview 1 · op 1\nok · version 1\nview 1 · op 2\nok · version 2\nview 1 · op 3\n');
  });

  it('keeps lines that arrive while a command runs, and a last line without a newline', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const h = harness({ execute: async (_op, index) => (index === 0 ? await gate : undefined, done({ type: 'ok', version: index })) });
    h.input.write('get /a\n');
    await sleep(5);
    expect(h.ops.length).to.equal(1);
    h.input.write('get /b\nget /c\n');
    h.input.end('get /d');
    await sleep(5);
    expect(h.ops.length, 'nothing runs before the first result').to.equal(1);
    release();
    await h.finished;
    expect(h.ops.map((op) => (op.type === 'blob_get' ? op.path : op.type))).to.deep.equal(['/a', '/b', '/c', '/d']);
    expect(h.output().match(/ok · version \d/g)).to.deep.equal(['ok · version 0', 'ok · version 1', 'ok · version 2', 'ok · version 3']);
  });

  it('resolves on quit, runs nothing after it, and lets go of the input', async () => {
    const h = harness();
    h.input.write('get /a\nquit\nget /b\n');
    await h.finished;
    expect(h.ops).to.deep.equal([parsedOp('get /a')]);
    expect(h.input.listenerCount('data')).to.equal(0);
    expect(h.input.listenerCount('end')).to.equal(0);
    expect(h.input.listenerCount('keypress')).to.equal(0);
    expect(h.input.isPaused()).to.equal(true);
  });

  it('resolves on exit too, and on an input that ends at once', async () => {
    const h1 = harness();
    h1.input.write('exit\n');
    await h1.finished;
    const h2 = harness();
    h2.input.end();
    await h2.finished;
    expect(h1.ops.length + h2.ops.length).to.equal(0);
    expect(h2.output()).to.equal('');
  });

  it('prints a rejected execute and goes on', async () => {
    const h = harness({
      execute: async (_op, index) => {
        if (index === 0) throw new Error('connection lost');
        return { type: 'timeout' };
      },
    });
    h.input.end('get /a\nget /b\n');
    await h.finished;
    expect(h.ops.length).to.equal(2);
    expect(h.output()).to.equal(`error: connection lost\n${formatResult({ type: 'timeout' })}\n`);
  });

  it('prints parse errors and help, skips blank and comment lines, and runs no op for them', async () => {
    const h = harness();
    h.input.end('\n# setup\nlst /\nhelp put\n   \nhelp\n');
    await h.finished;
    expect(h.ops).to.deep.equal([]);
    expect(h.output()).to.equal(`error: ${parseError('lst /')}\n${helpText('put')}\n${helpText()}\n`);
  });

  it('status: asks the node, or says it is not available, or prints the failure', async () => {
    const h1 = harness({ status: async () => 'namespace ns: view 3, primary r1' });
    h1.input.end('status\n');
    await h1.finished;
    expect(h1.output()).to.equal('namespace ns: view 3, primary r1\n');

    const h2 = harness();
    h2.input.end('status\n');
    await h2.finished;
    expect(h2.output()).to.equal('status is not available here\n');

    const h3 = harness({ status: () => Promise.reject(new Error('no node')) });
    h3.input.end('status\nget /a\n');
    await h3.finished;
    expect(h3.output()).to.equal('error: no node\nok · version 0\nview 1 · op 1\n');
  });

  it('prints no prompt when not a terminal', async () => {
    const h = harness({ prompt: 'test> ' });
    h.input.end('get /a\n');
    await h.finished;
    expect(h.output()).not.to.include('test>');
  });

  it('prompts in terminal mode and resolves on end of input', async () => {
    const h = harness({ terminal: true, prompt: 'test> ' });
    h.input.write('get /a\r');
    await sleep(10);
    h.input.end();
    await h.finished;
    expect(h.ops).to.deep.equal([parsedOp('get /a')]);
    const out = h.output();
    expect(out).to.include('test> ');
    expect(out).to.include('ok · version 0');
    expect(out.indexOf('ok · version 0')).to.be.greaterThan(out.indexOf('test> '));
    expect(out.lastIndexOf('test> '), 'a new prompt after the result').to.be.greaterThan(out.indexOf('ok · version 0'));
  });

  it('terminal mode: quit resolves and lets go of the input', async () => {
    const h = harness({ terminal: true });
    h.input.write('quit\r');
    await h.finished;
    // readline's keypress decoder keeps a 'data' listener until the next chunk (Node's own
    // behaviour); what matters is that the input is paused and nobody listens for keys.
    expect(h.input.isPaused()).to.equal(true);
    expect(h.input.listenerCount('keypress')).to.equal(0);
  });

  it('a process whose stdin stays open exits by itself after quit', async function () {
    this.timeout(60_000);
    const script = [
      "import { runRepl } from './src/cli/repl.ts';",
      "await runRepl({ input: process.stdin, output: process.stdout, execute: async () => ({ type: 'timeout' }) });",
      "process.stdout.write('resolved\\n');",
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stdin.write('get /a\nquit\n'); // stdin is never ended: only the loop's own cleanup lets the process exit
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill();
        reject(new Error(`the process did not exit; output so far: ${out}`));
      }, 30_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(code).to.equal(0);
    expect(out).to.equal(`${formatResult({ type: 'timeout' })}\nresolved\n`);
  });
});
