/**
 * The interactive prompt's command language: one line of text to one tree operation (or a
 * session command), and the help that documents it.
 *
 * Pure: no I/O, so the same parser serves `npm start`, `haret cli` over TCP and the tests.
 * The parser checks the shape of a line (command, argument count, value syntax) and leaves
 * the meaning of paths and limits to the service's validator, which answers with typed
 * errors; checking paths here too would give two sources of truth that could disagree.
 *
 * Grammar (also in `helpText`):
 *
 *   line    := command args... | 'cas' guard... ':' op (';' op)* | '#' comment | ''
 *   guard   := PATH '=' VERSION              (one word, e.g. /a/b=3)
 *   value   := bare-word | "double quoted" | 'single quoted' | 0xHEX
 *   set     := '{' [value (',' value)* [',']] '}'
 *
 * Bare words run to whitespace or ';'. Double-quoted strings take the escapes \" \\ \n \t
 * \r \0 and \u{HEX}; single-quoted strings are raw (handy for JSON). A bare word starting
 * with 0x is hex bytes; quote it to store the text "0x...". Text is stored as UTF-8.
 */

import { assertNever } from '../base/assert.ts';
import { protocolNumberMax } from '../base/limits.ts';
import { isNodeType, type NodeType } from '../tree/node_type.ts';
import type { Bytes, Guard, LeaseOp, MultiCasOp, SetOperand, SimpleOp, TreeOp, TreeOpType } from '../tree/ops.ts';
import { nearest } from './suggest.ts';

/** `watch PATH [-r] [--from OP] [--values] [--progress]`: what to watch and how to print it. */
export type WatchCommand = {
  readonly path: string;
  readonly recursive: boolean;
  /** Start after this op; null: after the serving replica's commit. */
  readonly fromOp: number | null;
  /** Ask for blob values with the events. */
  readonly values: boolean;
  /** Print progress notices too (normally only the start and the events are printed). */
  readonly progress: boolean;
};

/**
 * `lease grant TTL_MS | revoke ID | keepalive ID... | list`. Only `grant` and `list` need the
 * prompt's own state (the leases it keeps alive); `revoke` and `keepalive` are one op each.
 */
export type LeaseCommand =
  | { readonly action: 'grant'; readonly ttlMs: number }
  | { readonly action: 'revoke'; readonly id: number }
  | { readonly action: 'keepalive'; readonly ids: readonly number[] }
  | { readonly action: 'list' };

/** `lock PATH [--ttl MS] [--timeout MS]`: null where the client library's default applies. */
export type LockCommand = { readonly path: string; readonly ttlMs: number | null; readonly timeoutMs: number | null };

/** `elect PATH VALUE [--ttl MS]`. */
export type ElectCommand = { readonly path: string; readonly value: Bytes; readonly ttlMs: number | null };

/** `leader PATH [--watch]`. */
export type LeaderCommand = { readonly path: string; readonly watch: boolean };

export type ParsedLine =
  | { readonly type: 'op'; readonly op: TreeOp }
  | { readonly type: 'watch'; readonly watch: WatchCommand }
  | { readonly type: 'lease'; readonly lease: LeaseCommand }
  | { readonly type: 'lock'; readonly lock: LockCommand }
  | { readonly type: 'elect'; readonly elect: ElectCommand }
  | { readonly type: 'leader'; readonly leader: LeaderCommand }
  | { readonly type: 'help'; readonly topic?: string }
  | { readonly type: 'status' }
  | { readonly type: 'quit' }
  | { readonly type: 'empty' }
  | { readonly type: 'error'; readonly message: string };

// ---- tokens --------------------------------------------------------------------------------

/** What an argument can be; the quoting is kept so `0x..` is hex only when written bare. */
type Token =
  | { readonly kind: 'word'; readonly text: string }
  | { readonly kind: 'quoted'; readonly text: string }
  | { readonly kind: 'set'; readonly members: readonly Bytes[] };

/** A user error in the line. Thrown inside the parser only; `parseCommand` turns it into data. */
class CommandError extends Error {
  override readonly name = 'CommandError';
}

function fail(message: string): never {
  throw new CommandError(message);
}

const utf8Encoder = new TextEncoder();
const utf8 = (text: string): Bytes => utf8Encoder.encode(text);

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

/**
 * Splits a line into segments separated by ';' (only a transaction has more than one), each a
 * list of tokens. Quotes and '{' are special only at the start of a token, so a bare value may
 * contain them (`it's`, `a{b}`) without quoting.
 */
function tokenize(line: string): Token[][] {
  const segments: Token[][] = [[]];
  let current = segments[0]!;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (isSpace(c)) {
      i += 1;
    } else if (c === ';') {
      current = [];
      segments.push(current);
      i += 1;
    } else if (c === '"' || c === "'") {
      const [text, end] = readQuoted(line, i);
      expectBoundary(line, end, 'a closing quote');
      current.push({ kind: 'quoted', text });
      i = end;
    } else if (c === '{') {
      const [members, end] = readSet(line, i);
      expectBoundary(line, end, 'a set literal');
      current.push({ kind: 'set', members });
      i = end;
    } else {
      let end = i;
      while (end < line.length && !isSpace(line[end]!) && line[end] !== ';') end += 1;
      current.push({ kind: 'word', text: line.slice(i, end) });
      i = end;
    }
  }
  return segments;
}

/** Glued tokens like `"a"b` are almost always a typo; refusing them beats guessing. */
function expectBoundary(line: string, at: number, after: string): void {
  const next = line[at];
  if (next !== undefined && !isSpace(next) && next !== ';') {
    fail(`expected a space after ${after}, got ${JSON.stringify(line.slice(at, at + 10))}`);
  }
}

/** Reads a quoted string starting at `start` (the quote); returns its text and the index after it. */
function readQuoted(line: string, start: number): [string, number] {
  const quote = line[start]!;
  if (quote === "'") {
    const close = line.indexOf("'", start + 1);
    if (close < 0) fail("unclosed ' quote");
    return [line.slice(start + 1, close), close + 1];
  }
  let text = '';
  let i = start + 1;
  while (i < line.length) {
    const c = line[i]!;
    if (c === '"') return [text, i + 1];
    if (c !== '\\') {
      text += c;
      i += 1;
      continue;
    }
    const escaped = line[i + 1];
    switch (escaped) {
      case undefined:
        return fail('unclosed " quote');
      case '"':
      case '\\':
        text += escaped;
        i += 2;
        break;
      case 'n':
        text += '\n';
        i += 2;
        break;
      case 't':
        text += '\t';
        i += 2;
        break;
      case 'r':
        text += '\r';
        i += 2;
        break;
      case '0':
        text += '\0';
        i += 2;
        break;
      case 'u': {
        const match = /^\\u\{([0-9a-fA-F]{1,6})\}/.exec(line.slice(i));
        const codePoint = match?.[1] === undefined ? NaN : Number.parseInt(match[1], 16);
        // Surrogates are not characters: UTF-8 cannot encode them.
        if (match === null || !(codePoint <= 0x10ffff) || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
          return fail('bad \\u escape: write \\u{HEX} with a Unicode code point, e.g. \\u{e9}');
        }
        text += String.fromCodePoint(codePoint);
        i += match[0].length;
        break;
      }
      default:
        fail(`unknown escape \\${escaped} in a quoted string (known: \\" \\\\ \\n \\t \\r \\0 \\u{HEX}; use 0x... for raw bytes)`);
    }
  }
  return fail('unclosed " quote');
}

/** Reads `{a, "b c", 0x00}` starting at `start` (the brace); returns members and the index after it. */
function readSet(line: string, start: number): [Bytes[], number] {
  const members: Bytes[] = [];
  let i = start + 1;
  const skipSpaces = (): void => {
    while (i < line.length && isSpace(line[i]!)) i += 1;
  };
  for (;;) {
    skipSpaces();
    const c = line[i];
    if (c === undefined) fail('unclosed { set literal');
    if (c === '}') return [members, i + 1];
    if (c === ',') fail('empty member in a set literal');
    if (c === '{') fail('set literals do not nest');
    if (c === '"' || c === "'") {
      const [text, end] = readQuoted(line, i);
      members.push(utf8(text));
      i = end;
    } else {
      let end = i;
      while (end < line.length && !isSpace(line[end]!) && !',};'.includes(line[end]!)) end += 1;
      members.push(wordBytes(line.slice(i, end)));
      i = end;
    }
    skipSpaces();
    const after = line[i];
    if (after === ',') {
      i += 1; // a trailing comma before '}' is accepted: the next loop turn sees '}'
    } else if (after === '}') {
      return [members, i + 1];
    } else if (after === undefined) {
      fail('unclosed { set literal');
    } else {
      fail(`expected ',' or '}' in a set literal, got ${JSON.stringify(after)}`);
    }
  }
}

/** A bare word as bytes: `0x...` is hex, anything else its UTF-8 text. */
function wordBytes(text: string): Bytes {
  if (!text.startsWith('0x')) return utf8(text);
  const hex = text.slice(2);
  if (!/^[0-9a-fA-F]*$/.test(hex)) fail(`bad hex value ${text}: write 0x and hex digits, or quote it to store the text`);
  if (hex.length % 2 !== 0) fail(`hex value ${text} has an odd number of digits`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let k = 0; k < bytes.length; k += 1) bytes[k] = Number.parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  return bytes;
}

// ---- arguments -----------------------------------------------------------------------------

/** Where an argument error happened, so every message names its command and usage. */
type Ctx = { readonly name: string; readonly usage: string; readonly takesValue: boolean };

function usageError(ctx: Ctx, message: string): never {
  return fail(`${ctx.name}: ${message}; usage: ${ctx.usage}`);
}

/** Checks the argument count against the names in the usage; returns them as a typed tuple. */
function expectArgs<const N extends readonly string[]>(ctx: Ctx, args: readonly Token[], names: N): { [K in keyof N]: Token } {
  if (args.length < names.length) usageError(ctx, `missing ${names[args.length]}`);
  if (args.length > names.length) {
    // The usual cause of an extra argument is a value with spaces.
    const hint = ctx.takesValue ? ' (quote a value that has spaces)' : '';
    usageError(ctx, `too many arguments: expected ${names.length}, got ${args.length}${hint}`);
  }
  return args as unknown as { [K in keyof N]: Token };
}

function describeToken(token: Token): string {
  switch (token.kind) {
    case 'word':
      return token.text;
    case 'quoted':
      return JSON.stringify(token.text);
    case 'set':
      return 'a set literal';
    default:
      return assertNever(token, 'token');
  }
}

/**
 * Paths are checked only for being absolute: that catches the common slip (`get a/b`) with
 * a clear message, and everything finer is the service validator's job (`bad_path`).
 */
function pathArg(ctx: Ctx, token: Token, what = 'PATH'): string {
  switch (token.kind) {
    case 'word':
    case 'quoted':
      if (!token.text.startsWith('/')) usageError(ctx, `${what} must be an absolute path starting with /, got ${describeToken(token)}`);
      return token.text;
    case 'set':
      return usageError(ctx, `${what} must be a path, got a set literal`);
    default:
      return assertNever(token, 'token');
  }
}

function valueArg(ctx: Ctx, token: Token): Bytes {
  switch (token.kind) {
    case 'word':
      return wordBytes(token.text);
    case 'quoted':
      return utf8(token.text);
    case 'set':
      return usageError(ctx, 'VALUE is one value, not a set literal (quote text that starts with {)');
    default:
      return assertNever(token, 'token');
  }
}

/** The second operand of subset/superset: a path or a literal set. */
function setOperandArg(ctx: Ctx, token: Token): SetOperand {
  if (token.kind === 'set') return { type: 'literal', members: token.members };
  return { type: 'path', path: pathArg(ctx, token, 'OTHER') };
}

function nodeTypeArg(ctx: Ctx, token: Token, pathToken: Token): NodeType {
  const text = token.kind === 'set' ? '' : token.text.toLowerCase();
  if (text === 'dir') return 'directory'; // the short form people type
  if (isNodeType(text)) return text;
  // `create /a blob` is the likely slip: say so rather than only "unknown type".
  const swapped = token.kind !== 'set' && token.text.startsWith('/') && pathToken.kind !== 'set' && isNodeType(pathToken.text);
  const hint = swapped ? ` (the type comes first: create ${pathToken.text} ${token.text})` : '';
  return usageError(ctx, `unknown type ${describeToken(token)}: expected blob, queue, set or directory${hint}`);
}

// ---- commands ------------------------------------------------------------------------------

type Group = 'tree' | 'blob' | 'queue' | 'set' | 'transaction' | 'watch' | 'coordination' | 'session';

type CommandBase = {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly usage: string;
  readonly summary: string;
  readonly group: Group;
  /** A command with sub-commands lists each as its own line of the help: [usage, summary]. */
  readonly forms?: readonly (readonly [string, string])[];
  /** Extra lines for `help <command>`. */
  readonly details?: readonly string[];
};

/** An operation command: valid on its own line and inside `cas`. */
type OpCommand = CommandBase & {
  readonly kind: 'op';
  readonly takesValue: boolean;
  readonly parse: (ctx: Ctx, args: readonly Token[]) => SimpleOp;
};

type SpecialCommand = CommandBase & { readonly kind: 'cas' | 'watch' | 'lease' | 'lock' | 'elect' | 'leader' | 'help' | 'status' | 'quit' };

type Command = OpCommand | SpecialCommand;

type PathOnlyType = 'stat' | 'blob_get' | 'blob_size' | 'queue_front' | 'queue_back' | 'queue_len' | 'delete' | 'queue_pop';
type PathValueType = 'blob_put' | 'queue_push' | 'set_insert' | 'set_remove' | 'set_contains';
type BinaryType = 'set_intersection' | 'set_difference' | 'set_symmetric_difference';

function pathOnly(type: PathOnlyType): OpCommand['parse'] {
  return (ctx, args) => {
    const [path] = expectArgs(ctx, args, ['PATH']);
    return { type, path: pathArg(ctx, path) };
  };
}

function pathValue(type: PathValueType): OpCommand['parse'] {
  return (ctx, args) => {
    const [path, value] = expectArgs(ctx, args, ['PATH', 'VALUE']);
    return { type, path: pathArg(ctx, path), value: valueArg(ctx, value) };
  };
}

function binary(type: BinaryType): OpCommand['parse'] {
  return (ctx, args) => {
    const [path1, path2] = expectArgs(ctx, args, ['PATH1', 'PATH2']);
    return { type, path1: pathArg(ctx, path1, 'PATH1'), path2: pathArg(ctx, path2, 'PATH2') };
  };
}

function compare(type: 'set_is_subset' | 'set_is_superset'): OpCommand['parse'] {
  return (ctx, args) => {
    const [path, other] = expectArgs(ctx, args, ['PATH', 'OTHER']);
    return { type, path: pathArg(ctx, path), other: setOperandArg(ctx, other) };
  };
}

const watchUsage = 'watch PATH [-r] [--from OP] [--values] [--progress]';

/**
 * An op number typed by the user. Digits only (no sign, exponent or hex), and within the
 * protocol's bound, so what is sent is exactly what was typed and the replicas never see
 * a number they would call malformed.
 */
function opNumber(text: string): number {
  const fromUsage = (message: string): never => fail(`watch: ${message}; usage: ${watchUsage}`);
  if (!/^[0-9]+$/.test(text)) return fromUsage(`--from takes an op number (0 or more digits), got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (!(value <= protocolNumberMax)) return fromUsage(`--from ${text} is beyond the largest op (${protocolNumberMax})`);
  return value;
}

/** Flags may come before or after PATH, like `ls -r`; `--from=OP` is accepted too. */
function parseWatch(args: readonly Token[]): WatchCommand {
  const ctx: Ctx = { name: 'watch', usage: watchUsage, takesValue: false };
  let path: string | null = null;
  let recursive = false;
  let fromOp: number | null = null;
  let values = false;
  let progress = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    const flag = arg.kind === 'word' && arg.text.startsWith('-') ? arg.text : null;
    if (flag === null) {
      if (path !== null) usageError(ctx, 'too many arguments: one PATH (quote a path that has spaces)');
      path = pathArg(ctx, arg);
    } else if (flag === '-r' || flag === '-R' || flag === '--recursive') {
      recursive = true;
    } else if (flag === '--values') {
      values = true;
    } else if (flag === '--progress') {
      progress = true;
    } else if (flag === '--from' || flag.startsWith('--from=')) {
      if (fromOp !== null) usageError(ctx, '--from given twice');
      let text: string;
      if (flag === '--from') {
        const next = args[i + 1];
        if (next === undefined) return usageError(ctx, '--from needs an op number');
        if (next.kind === 'set') return usageError(ctx, '--from takes an op number, got a set literal');
        text = next.text;
        i += 1;
      } else {
        text = flag.slice('--from='.length);
      }
      fromOp = opNumber(text);
    } else {
      usageError(ctx, `unknown option ${flag}`);
    }
  }
  if (path === null) return usageError(ctx, 'missing PATH');
  return { path, recursive, fromOp, values, progress };
}

// ---- flags and numbers of the coordination commands ------------------------------------------

const createUsage = 'create TYPE PATH [--lease ID] [--seq]';
const leaseUsage = 'lease grant TTL_MS | lease revoke ID | lease keepalive ID... | lease list';
const lockUsage = 'lock PATH [--ttl MS] [--timeout MS]';
const electUsage = 'elect PATH VALUE [--ttl MS]';
const leaderUsage = 'leader PATH [--watch]';

/** What a number's placeholder in a usage means, for the messages. */
const numberMeaning: Readonly<Record<string, string>> = {
  MS: 'a whole number of milliseconds',
  TTL_MS: 'a whole number of milliseconds',
  ID: 'a lease id (a whole number)',
};

/**
 * A number typed by the user: digits only (no sign, fraction, exponent or hex) and within the
 * protocol's bound, so what is sent is what was typed. Ranges (a TTL's minimum, say) are the
 * service's to judge: it answers with a typed error that names the bound.
 */
function wholeNumber(ctx: Ctx, what: string, placeholder: string, token: Token): number {
  const meaning = numberMeaning[placeholder] ?? 'a whole number';
  if (token.kind === 'set') return usageError(ctx, `${what} takes ${meaning}, got a set literal`);
  if (!/^[0-9]+$/.test(token.text)) return usageError(ctx, `${what} takes ${meaning}, got ${JSON.stringify(token.text)}`);
  const value = Number(token.text);
  if (!(value <= protocolNumberMax)) return usageError(ctx, `${what} ${token.text} is beyond the largest number the protocol carries (${protocolNumberMax})`);
  return value;
}

type Flags = { readonly positionals: Token[]; readonly numbers: Map<string, number>; readonly switches: Set<string> };

/**
 * Splits arguments into positionals and `--name NUMBER` / `--name=NUMBER` / `--switch` flags,
 * anywhere on the line. A bare word starting with '-' is a flag (an unknown one is refused);
 * quote a value that starts with '-'.
 */
function parseFlags(ctx: Ctx, args: readonly Token[], numberFlags: Readonly<Record<string, string>>, switchFlags: readonly string[]): Flags {
  const flags: Flags = { positionals: [], numbers: new Map(), switches: new Set() };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg.kind !== 'word' || !arg.text.startsWith('-') || arg.text === '-') {
      flags.positionals.push(arg);
      continue;
    }
    const equals = arg.text.indexOf('=');
    const name = (equals < 0 ? arg.text : arg.text.slice(0, equals)).replace(/^--?/, '');
    const placeholder = Object.hasOwn(numberFlags, name) ? numberFlags[name] : undefined;
    if (placeholder !== undefined && arg.text.startsWith('--')) {
      if (flags.numbers.has(name)) usageError(ctx, `--${name} given twice`);
      let value: Token;
      if (equals >= 0) {
        value = { kind: 'word', text: arg.text.slice(equals + 1) };
      } else {
        const next = args[i + 1];
        if (next === undefined) return usageError(ctx, `--${name} needs ${placeholder}`);
        value = next;
        i += 1;
      }
      flags.numbers.set(name, wholeNumber(ctx, `--${name}`, placeholder, value));
    } else if (switchFlags.includes(name) && equals < 0 && arg.text.startsWith('--')) {
      flags.switches.add(name);
    } else {
      usageError(ctx, `unknown option ${arg.text}`);
    }
  }
  return flags;
}

function parseLease(args: readonly Token[]): LeaseCommand {
  const ctx: Ctx = { name: 'lease', usage: leaseUsage, takesValue: false };
  const [action, ...rest] = args;
  if (action === undefined) return usageError(ctx, 'missing grant, revoke, keepalive or list');
  const word = action.kind === 'set' ? '' : action.text.toLowerCase();
  switch (word) {
    case 'grant': {
      const sub: Ctx = { ...ctx, name: 'lease grant', usage: 'lease grant TTL_MS' };
      const [ttl] = expectArgs(sub, rest, ['TTL_MS']);
      return { action: 'grant', ttlMs: wholeNumber(sub, 'TTL_MS', 'TTL_MS', ttl) };
    }
    case 'revoke': {
      const sub: Ctx = { ...ctx, name: 'lease revoke', usage: 'lease revoke ID' };
      const [id] = expectArgs(sub, rest, ['ID']);
      return { action: 'revoke', id: wholeNumber(sub, 'ID', 'ID', id) };
    }
    case 'keepalive': {
      const sub: Ctx = { ...ctx, name: 'lease keepalive', usage: 'lease keepalive ID...' };
      if (rest.length === 0) return usageError(sub, 'missing ID');
      return { action: 'keepalive', ids: rest.map((id) => wholeNumber(sub, 'ID', 'ID', id)) };
    }
    case 'list':
      if (rest.length > 0) usageError({ ...ctx, name: 'lease list', usage: 'lease list' }, 'takes no arguments');
      return { action: 'list' };
    default:
      return usageError(ctx, `unknown sub-command ${describeToken(action)}: expected grant, revoke, keepalive or list`);
  }
}

function parseLock(args: readonly Token[]): LockCommand {
  const ctx: Ctx = { name: 'lock', usage: lockUsage, takesValue: false };
  const { positionals, numbers } = parseFlags(ctx, args, { ttl: 'MS', timeout: 'MS' }, []);
  const [path] = expectArgs(ctx, positionals, ['PATH']);
  return { path: pathArg(ctx, path), ttlMs: numbers.get('ttl') ?? null, timeoutMs: numbers.get('timeout') ?? null };
}

function parseElect(args: readonly Token[]): ElectCommand {
  const ctx: Ctx = { name: 'elect', usage: electUsage, takesValue: true };
  const { positionals, numbers } = parseFlags(ctx, args, { ttl: 'MS' }, []);
  const [path, value] = expectArgs(ctx, positionals, ['PATH', 'VALUE']);
  return { path: pathArg(ctx, path), value: valueArg(ctx, value), ttlMs: numbers.get('ttl') ?? null };
}

function parseLeader(args: readonly Token[]): LeaderCommand {
  const ctx: Ctx = { name: 'leader', usage: leaderUsage, takesValue: false };
  const { positionals, switches } = parseFlags(ctx, args, {}, ['watch']);
  const [path] = expectArgs(ctx, positionals, ['PATH']);
  return { path: pathArg(ctx, path), watch: switches.has('watch') };
}

/**
 * The one op a lease command is, when it is one: `grant` here is the bare op (the prompt
 * itself keeps its leases alive instead), `list` is the prompt's own state only.
 */
export function leaseOp(command: LeaseCommand): LeaseOp | null {
  switch (command.action) {
    case 'grant':
      return { type: 'lease_grant', ttlMs: command.ttlMs };
    case 'revoke':
      return { type: 'lease_revoke', id: command.id };
    case 'keepalive':
      return { type: 'lease_keepalive', ids: command.ids };
    case 'list':
      return null;
    default:
      return assertNever(command, 'lease command');
  }
}

function op(name: string, usage: string, summary: string, group: Group, parse: OpCommand['parse'], extra: Partial<CommandBase> = {}): OpCommand {
  return { kind: 'op', name, usage, summary, group, parse, takesValue: usage.includes('VALUE'), ...extra };
}

const commands: readonly Command[] = [
  op('mkdir', 'mkdir PATH', 'create a directory (and any missing parents)', 'tree', (ctx, args) => {
    const [path] = expectArgs(ctx, args, ['PATH']);
    return { type: 'create', path: pathArg(ctx, path), nodeType: 'directory' };
  }),
  op(
    'create',
    createUsage,
    'create a node of TYPE: blob, queue, set or directory (dir); makes missing parents',
    'tree',
    (ctx, args) => {
      const { positionals, numbers, switches } = parseFlags(ctx, args, { lease: 'ID' }, ['seq', 'sequential']);
      const [type, path] = expectArgs(ctx, positionals, ['TYPE', 'PATH']);
      const nodeType = nodeTypeArg(ctx, type, path);
      const lease = numbers.get('lease');
      // The canonical op has no lease/sequential field at all when they are not used.
      return {
        type: 'create',
        path: pathArg(ctx, path),
        nodeType,
        ...(lease === undefined ? {} : { lease }),
        ...(switches.has('seq') || switches.has('sequential') ? { sequential: true } : {}),
      };
    },
    {
      details: [
        'A new node starts at version 0; existing ancestors get their versions bumped.',
        '--lease ID  an ephemeral node: deleted when lease ID ends (revoked, or expired because',
        '            nobody kept it alive); never a directory. See lease grant.',
        '--seq       (or --sequential) a sequential name: PATH followed by the parent\'s version,',
        '            zero-padded to 10 digits; the name made is printed (created /q/job-0000000004).',
        'Example: create blob /workers/w- --lease 1 --seq',
      ],
    },
  ),
  op('rm', 'rm PATH', 'delete a node and its whole subtree (never /)', 'tree', pathOnly('delete')),
  op(
    'ls',
    'ls [PATH] [-r]',
    'list a directory (default /); -r lists the whole subtree',
    'tree',
    (ctx, args) => {
      let path: string | null = null;
      let recursive = false;
      for (const arg of args) {
        if (arg.kind === 'word' && (arg.text === '-r' || arg.text === '-R' || arg.text === '--recursive')) {
          recursive = true;
        } else if (arg.kind === 'word' && arg.text.startsWith('-')) {
          usageError(ctx, `unknown option ${arg.text}`);
        } else if (path === null) {
          path = pathArg(ctx, arg);
        } else {
          usageError(ctx, 'too many arguments: at most one PATH');
        }
      }
      return { type: 'list', path: path ?? '/', recursive };
    },
    { details: ['Entries come in ascending name order; -r walks depth-first, pre-order.'] },
  ),
  op('stat', 'stat PATH', 'type, version and size of a node', 'tree', pathOnly('stat')),

  op('put', 'put PATH VALUE', "replace a blob's bytes", 'blob', pathValue('blob_put')),
  op('get', 'get PATH', "read a blob's bytes", 'blob', pathOnly('blob_get')),
  op('size', 'size PATH', "a blob's length in bytes", 'blob', pathOnly('blob_size')),

  op('push', 'push PATH VALUE', 'append an element to the back of a queue', 'queue', pathValue('queue_push')),
  op('pop', 'pop PATH', 'remove and show the front element of a queue', 'queue', pathOnly('queue_pop')),
  op('front', 'front PATH', 'show the front element of a queue', 'queue', pathOnly('queue_front')),
  op('back', 'back PATH', 'show the back element of a queue', 'queue', pathOnly('queue_back')),
  op('qlen', 'qlen PATH', 'number of elements in a queue', 'queue', pathOnly('queue_len')),

  op('sadd', 'sadd PATH VALUE', 'insert a member into a set (true if it was added)', 'set', pathValue('set_insert')),
  op('srem', 'srem PATH VALUE', 'remove a member from a set (true if it was present)', 'set', pathValue('set_remove')),
  op('scontains', 'scontains PATH VALUE', 'is VALUE a member of the set?', 'set', pathValue('set_contains')),
  op(
    'union',
    'union [PATH|{SET}]...',
    'union of the sets at the paths and the literal sets',
    'set',
    (ctx, args) => {
      const paths: string[] = [];
      const sets: (readonly Bytes[])[] = [];
      for (const arg of args) {
        if (arg.kind === 'set') sets.push(arg.members);
        else paths.push(pathArg(ctx, arg));
      }
      return { type: 'set_union', paths, sets };
    },
    { details: ['Example: union /s1 /s2 {a,b,"c d"}. With no operand the result is the empty set.'] },
  ),
  op('inter', 'inter PATH1 PATH2', 'intersection of two sets', 'set', binary('set_intersection')),
  op('diff', 'diff PATH1 PATH2', 'difference PATH1 − PATH2 (order matters)', 'set', binary('set_difference')),
  op('symdiff', 'symdiff PATH1 PATH2', 'symmetric difference of two sets', 'set', binary('set_symmetric_difference')),
  op('subset', 'subset PATH PATH2|{SET}', 'is the set at PATH a subset of the other?', 'set', compare('set_is_subset')),
  op('superset', 'superset PATH PATH2|{SET}', 'is the set at PATH a superset of the other?', 'set', compare('set_is_superset')),

  {
    kind: 'cas',
    name: 'cas',
    usage: 'cas [PATH=VERSION]... : OP [; OP]...',
    summary: 'atomic transaction: check version guards, then run the ops in order',
    group: 'transaction',
    details: [
      'Guards are single words PATH=VERSION (e.g. /a=3), written before a lone ":".',
      'Ops are any operation commands above, separated by ";" (reads see earlier writes).',
      'Every guard is checked before any op runs; any failure aborts the whole transaction.',
      'Zero guards (cas : ...) and zero ops (cas /a=3 :) are allowed; a trailing ";" is ignored.',
      'Example: cas /cfg=4 /lock=0 : put /cfg "v2" ; push /log changed ; get /cfg',
    ],
  },

  {
    kind: 'watch',
    name: 'watch',
    usage: watchUsage,
    summary: 'print the changes to PATH as they commit, until Ctrl-C',
    group: 'watch',
    details: [
      'One line per changed node: op  kind  path  type  version  [value], where op is the log entry',
      'that committed the change. A transaction that changes several nodes prints them all at its op.',
      '-r (--recursive)  PATH and everything below it; without it, PATH itself only.',
      '--from OP         start after op OP (to resume where an earlier watch stopped, or to see',
      '                  changes since a read at op OP); default: after the current commit.',
      '--values          show blob values (too large ones say so); other types: read them.',
      '--progress        also print the op the watch is complete through while nothing changes.',
      'Ctrl-C stops the watch and returns to the prompt.',
      'Example: watch /config -r --values',
    ],
  },

  {
    kind: 'lease',
    name: 'lease',
    usage: leaseUsage,
    summary: 'grant, revoke, keep alive or list leases',
    group: 'coordination',
    forms: [
      ['lease grant TTL_MS', 'a lease this prompt keeps alive until lease revoke or quit'],
      ['lease revoke ID', 'end a lease now; its ephemeral nodes are deleted'],
      ['lease keepalive ID...', 'one keep-alive: alive or gone, per lease'],
      ['lease list', 'the leases this prompt keeps alive, and their state'],
    ],
    details: [
      'A lease ends when nobody keeps it alive for TTL_MS (from its last keep-alive), or when',
      'revoked; every node created with --lease ID is deleted with it, all in one op.',
      'grant      prints the id and TTL; the prompt sends keep-alives in the background and',
      '           prints a line if the lease is lost anyway. Leaving the prompt revokes it.',
      'revoke     works for any lease of this connection (not another client\'s).',
      'keepalive  sends one keep-alive for each id (the prompt\'s own leases need none).',
      'Example: lease grant 5000, then create blob /workers/w1 --lease ID',
    ],
  },
  {
    kind: 'lock',
    name: 'lock',
    usage: lockUsage,
    summary: 'wait for the lock at PATH and hold it until Ctrl-C',
    group: 'coordination',
    details: [
      'Waits its turn (first come, first served), then prints holding PATH token N. The token',
      'grows with every holder: a fencing token for whatever the lock protects.',
      '--ttl MS      the TTL of the lease behind the lock (default 10000, the client library\'s).',
      '--timeout MS  give up waiting after MS milliseconds.',
      'Ctrl-C releases the lock (or stops waiting) and returns to the prompt. If the lease is',
      'lost (the node is unreachable for longer than the TTL), lost is printed.',
      'Example: lock /locks/report --ttl 2000',
    ],
  },
  {
    kind: 'elect',
    name: 'elect',
    usage: electUsage,
    summary: 'campaign to lead PATH with VALUE; lead until Ctrl-C',
    group: 'coordination',
    details: [
      'Waits until elected, then prints leader of PATH token N; Ctrl-C resigns (or withdraws',
      'while waiting) and returns to the prompt. Others see VALUE with leader PATH.',
      '--ttl MS  the TTL of the lease behind the candidacy (default 10000, the client library\'s).',
      'Example: elect /election/scheduler host-a:7000',
    ],
  },
  {
    kind: 'leader',
    name: 'leader',
    usage: leaderUsage,
    summary: 'the current leader of PATH (value and token)',
    group: 'coordination',
    details: ['Prints the leader\'s value and token, or no leader.', '--watch  print every change of leader until Ctrl-C.', 'Example: leader /election/scheduler --watch'],
  },

  { kind: 'help', name: 'help', aliases: ['?'], usage: 'help [COMMAND|values]', summary: 'this list, or the details of one command', group: 'session' },
  { kind: 'status', name: 'status', usage: 'status', summary: 'the status of the node and its namespaces', group: 'session' },
  { kind: 'quit', name: 'quit', aliases: ['exit'], usage: 'quit', summary: 'leave the prompt (also exit, or Ctrl-D)', group: 'session' },
];

const byName: ReadonlyMap<string, Command> = new Map(commands.flatMap((command) => [command.name, ...(command.aliases ?? [])].map((name) => [name, command] as const)));

/** Every command name and alias, for completion. */
export const commandNames: readonly string[] = [...byName.keys()].filter((name) => name !== '?');

/**
 * The command that produces each operation. Being a Record over every TreeOpType, it fails to
 * compile when an operation is added without a command; it also feeds "did you mean".
 */
export const commandForOp: Readonly<Record<TreeOpType, string>> = {
  list: 'ls',
  stat: 'stat',
  blob_get: 'get',
  blob_size: 'size',
  queue_front: 'front',
  queue_back: 'back',
  queue_len: 'qlen',
  set_contains: 'scontains',
  set_union: 'union',
  set_intersection: 'inter',
  set_difference: 'diff',
  set_symmetric_difference: 'symdiff',
  set_is_subset: 'subset',
  set_is_superset: 'superset',
  create: 'create',
  delete: 'rm',
  blob_put: 'put',
  queue_push: 'push',
  queue_pop: 'pop',
  set_insert: 'sadd',
  set_remove: 'srem',
  multi_cas: 'cas',
  lease_grant: 'lease',
  lease_keepalive: 'lease',
  lease_revoke: 'lease',
};

/** Words people reach for that are not commands here. */
const synonyms: Readonly<Record<string, string>> = {
  list: 'ls',
  dir: 'ls',
  delete: 'rm',
  del: 'rm',
  remove: 'rm',
  read: 'get',
  write: 'put',
  set: 'put',
  len: 'qlen',
  length: 'qlen',
  enqueue: 'push',
  dequeue: 'pop',
  insert: 'sadd',
  add: 'sadd',
  contains: 'scontains',
  intersection: 'inter',
  intersect: 'inter',
  difference: 'diff',
  txn: 'cas',
  transaction: 'cas',
  subscribe: 'watch',
  follow: 'watch',
  tail: 'watch',
  bye: 'quit',
  mutex: 'lock',
  acquire: 'lock',
  election: 'elect',
  campaign: 'elect',
  leases: 'lease',
  keepalive: 'lease',
  grant: 'lease',
  revoke: 'lease',
  ephemeral: 'create',
};

/** The closest command name, if one is close enough to be a plausible typo. */
function suggest(word: string): string | null {
  // Own keys only: a word like "constructor" must not find Object.prototype's members.
  if (Object.hasOwn(commandForOp, word)) return (commandForOp as Readonly<Record<string, string>>)[word] ?? null;
  if (Object.hasOwn(synonyms, word)) return synonyms[word] ?? null;
  return nearest(word, commandNames);
}

function unknown(what: string, word: string): string {
  const suggestion = suggest(word);
  const hint = suggestion === null ? '' : `; did you mean ${JSON.stringify(suggestion)}?`;
  return `unknown ${what} ${JSON.stringify(word)}${hint} (help lists every command)`;
}

/** The command word of a line or a transaction op; `where` prefixes errors inside `cas`. */
function commandWord(token: Token | undefined, where: string | null): string {
  const prefix = where === null ? '' : `${where}: `;
  if (token === undefined) return fail(`${prefix}expected a command name`);
  if (token.kind !== 'word') return fail(`${prefix}expected a command name, got ${describeToken(token)}`);
  return token.text.toLowerCase();
}

function resolve(word: string): Command {
  return byName.get(word) ?? fail(unknown('command', word));
}

function ctxOf(command: OpCommand): Ctx {
  return { name: command.name, usage: command.usage, takesValue: command.takesValue };
}

// ---- transactions --------------------------------------------------------------------------

/**
 * `cas` GUARD... `:` OP (`;` OP)*. The ':' must be its own word, except that `cas:` and a
 * last guard ending in ':' (`/a=3:`) are accepted, since that is how people type it.
 */
function parseCas(segments: readonly (readonly Token[])[]): MultiCasOp {
  const usage = 'cas [PATH=VERSION]... : OP [; OP]...';
  const head = segments[0] ?? [];
  const guards: Guard[] = [];
  let colon = -1;
  for (let i = 0; i < head.length && colon < 0; i += 1) {
    const token = head[i]!;
    if (token.kind === 'word' && token.text === ':') {
      colon = i;
      continue;
    }
    const text = token.kind === 'word' ? token.text : '';
    const glued = text.length > 1 && text.endsWith(':');
    const match = /^(.+)=([0-9]+)$/.exec(glued ? text.slice(0, -1) : text);
    if (match === null) {
      const what = describeToken(token);
      const hint = token.kind === 'word' && byName.has(token.text.toLowerCase()) ? " (missing ':' before the ops?)" : '';
      fail(`cas: expected a guard PATH=VERSION or ':', got ${what}${hint}; usage: ${usage}`);
    }
    const [, path, versionText] = match as unknown as [string, string, string];
    if (!path.startsWith('/')) fail(`cas: guard path must be absolute, got ${path}; usage: ${usage}`);
    const version = Number(versionText);
    if (!Number.isSafeInteger(version)) fail(`cas: guard version ${versionText} is too big; usage: ${usage}`);
    guards.push({ path, version });
    if (glued) colon = i;
  }
  if (colon < 0) fail(`cas: missing ':' between the guards and the ops; usage: ${usage}`);

  const opSegments = [head.slice(colon + 1), ...segments.slice(1)];
  // A trailing ';' leaves an empty last segment; it is harmless, so it is ignored.
  if (opSegments.length > 1 && opSegments[opSegments.length - 1]!.length === 0) opSegments.pop();
  if (opSegments.length === 1 && opSegments[0]!.length === 0) return { type: 'multi_cas', guards, ops: [] };

  const ops = opSegments.map((tokens, index): SimpleOp => {
    const where = `cas: op ${index + 1}`;
    if (tokens.length === 0) fail(`${where} is empty (two ';' in a row?)`);
    const command = resolve(commandWord(tokens[0], where));
    switch (command.kind) {
      case 'op':
        try {
          return command.parse(ctxOf(command), tokens.slice(1));
        } catch (error) {
          if (error instanceof CommandError) fail(`${where}: ${error.message}`);
          throw error;
        }
      case 'cas':
        return fail(`${where}: transactions do not nest`);
      case 'lease':
        // The service refuses lease ops inside multi_cas; saying so here is clearer.
        return fail(`${where}: lease commands cannot run inside cas (ephemeral and sequential creates can)`);
      case 'watch':
      case 'lock':
      case 'elect':
      case 'leader':
      case 'help':
      case 'status':
      case 'quit':
        return fail(`${where}: only operations can run inside cas, not ${command.name}`);
      default:
        return assertNever(command, 'command');
    }
  });
  return { type: 'multi_cas', guards, ops };
}

// ---- lines ---------------------------------------------------------------------------------

function noArgs(command: SpecialCommand, args: readonly Token[]): void {
  if (args.length > 0) fail(`${command.name} takes no arguments; usage: ${command.usage}`);
}

/** Topics `help` knows: every command (aliases resolve to it) and the value syntax. */
function helpTopic(word: string): string {
  if (word === 'values' || word === 'value') return 'values';
  const command = byName.get(word);
  if (command === undefined) return fail(`help: ${unknown('topic', word)}`);
  return command.name;
}

function parseLine(line: string): ParsedLine {
  const trimmed = line.trim();
  // '#' lines let scripts piped into the prompt carry comments.
  if (trimmed === '' || trimmed.startsWith('#')) return { type: 'empty' };
  const segments = tokenize(line);
  // `get /a;` is harmless: a trailing ';' is ignored everywhere.
  if (segments.length > 1 && segments[segments.length - 1]!.length === 0) segments.pop();
  const first = segments[0]!;
  let word = commandWord(first[0], null);
  let args = first.slice(1);
  if (word === 'cas:') {
    word = 'cas';
    args = [{ kind: 'word', text: ':' }, ...args];
  }
  const command = resolve(word);
  if (command.kind !== 'cas' && segments.length > 1) {
    fail(`${command.name}: ';' separates the ops of a cas transaction; run one command per line`);
  }
  switch (command.kind) {
    case 'op':
      return { type: 'op', op: command.parse(ctxOf(command), args) };
    case 'cas':
      return { type: 'op', op: parseCas([args, ...segments.slice(1)]) };
    case 'watch':
      return { type: 'watch', watch: parseWatch(args) };
    case 'lease':
      return { type: 'lease', lease: parseLease(args) };
    case 'lock':
      return { type: 'lock', lock: parseLock(args) };
    case 'elect':
      return { type: 'elect', elect: parseElect(args) };
    case 'leader':
      return { type: 'leader', leader: parseLeader(args) };
    case 'help': {
      if (args.length > 1) fail(`help: too many arguments; usage: ${command.usage}`);
      const topic = args[0];
      if (topic === undefined) return { type: 'help' };
      if (topic.kind !== 'word') fail(`help: expected a command name; usage: ${command.usage}`);
      return { type: 'help', topic: helpTopic(topic.text.toLowerCase()) };
    }
    case 'status':
      noArgs(command, args);
      return { type: 'status' };
    case 'quit':
      noArgs(command, args);
      return { type: 'quit' };
    default:
      return assertNever(command, 'command');
  }
}

/** Parses one line of the prompt. Never throws: a bad line is `{ type: 'error', message }`. */
export function parseCommand(line: string): ParsedLine {
  try {
    return parseLine(line);
  } catch (error) {
    if (error instanceof CommandError) return { type: 'error', message: error.message };
    // A bug of ours; still an answer, since the prompt must survive any input.
    return { type: 'error', message: `internal error while parsing: ${error instanceof Error ? error.message : String(error)}` };
  }
}

// ---- help ----------------------------------------------------------------------------------

const groupTitles: Readonly<Record<Group, string>> = {
  tree: 'tree',
  blob: 'blobs',
  queue: 'queues',
  set: 'sets',
  transaction: 'transactions',
  watch: 'watches',
  coordination: 'coordination (leases, locks, elections)',
  session: 'session',
};

const valuesHelp = [
  'values (VALUE, set members):',
  '  word            a bare word, stored as its UTF-8 bytes (runs to a space or ;)',
  '  "text"          double quotes; escapes \\" \\\\ \\n \\t \\r \\0 \\u{HEX}',
  "  'text'          single quotes, taken literally (handy for JSON)",
  '  0x68690a        hex bytes (quote it to store the text "0x...")',
  '  {a, "b c", 0x00}  a literal set, where a set operand is expected',
  'Paths are absolute (/a/b); quote a path that has spaces. Lines starting with # are comments.',
];

/** The help text for the whole language, or for one topic (a command or "values"). */
export function helpText(topic?: string): string {
  if (topic === undefined) {
    const formsOf = (command: Command): readonly (readonly [string, string])[] => command.forms ?? [[command.usage, command.summary]];
    const width = Math.max(...commands.flatMap(formsOf).map(([usage]) => usage.length));
    const lines: string[] = [];
    for (const group of Object.keys(groupTitles) as Group[]) {
      lines.push(`${groupTitles[group]}:`);
      for (const command of commands.filter((c) => c.group === group)) {
        for (const [usage, summary] of formsOf(command)) lines.push(`  ${usage.padEnd(width)}  ${summary}`);
      }
    }
    lines.push('', ...valuesHelp, '', 'help COMMAND shows details, e.g. help cas.');
    return lines.join('\n');
  }
  const word = topic.toLowerCase();
  if (word === 'values' || word === 'value') return valuesHelp.join('\n');
  const command = byName.get(word);
  if (command === undefined) return unknown('topic', topic);
  const aliases = command.aliases?.filter((alias) => alias !== '?') ?? [];
  const formWidth = Math.max(0, ...(command.forms ?? []).map(([usage]) => usage.length));
  return [
    `${command.usage}`,
    `  ${command.summary}`,
    ...(command.forms ?? []).map(([usage, summary]) => `  ${usage.padEnd(formWidth)}  ${summary}`),
    ...(command.details ?? []).map((line) => `  ${line}`),
    ...(aliases.length > 0 ? [`  also: ${aliases.join(', ')}`] : []),
  ].join('\n');
}
