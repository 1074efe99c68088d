/**
 * Paths: absolute, UTF-8, `/`-separated (DATA_MODEL.md). `/` is the root.
 *
 * The accepted form is canonical so that one node has exactly one spelling: a leading `/`,
 * no trailing `/` (except the root itself), no empty, `.` or `..` components, no NUL.
 */

import { treeErrors, type TreeError } from './errors.ts';
import type { TreeLimits } from '../base/limits.ts';

export const rootPath = '/';

/** Path components; the root has none. Assumes a path that passed `checkPath`. */
export function splitPath(path: string): string[] {
  return path === rootPath ? [] : path.slice(1).split('/');
}

export function joinPath(parent: string, name: string): string {
  return parent === rootPath ? `/${name}` : `${parent}/${name}`;
}

/** The path of the first `depth` components of `components`. */
export function prefixPath(components: readonly string[], depth: number): string {
  return depth === 0 ? rootPath : `/${components.slice(0, depth).join('/')}`;
}

const encoder = new TextEncoder();

export function utf8Length(text: string): number {
  // Fast path: ASCII strings have one byte per code unit.
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? text.length : encoder.encode(text).length;
}

/** Returns a typed error for a path that is malformed or over a limit, else null. */
export function checkPath(path: unknown, limits: TreeLimits): TreeError | null {
  if (typeof path !== 'string') return treeErrors.badPath('a path must be a string');
  const measured = measurePath(path, limits);
  return typeof measured === 'number' ? null : measured;
}

/**
 * `checkPath` for a string, returning the path's UTF-8 length when it is canonical and within
 * the limits (what the validator charges to the request), else the same typed error. It runs
 * for every op a replica validates (the client, the primary at admission, each backup for
 * every prepared entry), so an ASCII path, nearly every path, is checked in one pass over its
 * characters with no allocation; anything else goes the general way.
 */
export function measurePath(path: string, limits: TreeLimits): number | TreeError {
  if (path.charCodeAt(0) !== slashUnit) return treeErrors.badPath(`path must be absolute: ${JSON.stringify(path.slice(0, 64))}`);
  // UTF-8 takes at least one byte per UTF-16 unit (a lone surrogate three), so a path longer
  // than the byte limit in units is over it in bytes, whatever its characters.
  if (path.length > limits.pathBytesMax) return treeErrors.tooLarge('path_bytes', limits.pathBytesMax);
  if (path.length === 1) return 1;
  const error = scanAsciiPath(path, limits);
  if (error === notAscii) return measurePathGeneral(path, limits);
  if (error === null) return path.length;
  return error;
}

/** `scanAsciiPath`'s answer when it met a non-ASCII unit: its checks do not apply. */
const notAscii = 'not ascii';

/**
 * The remaining checks for a path that starts with '/', is not the root and is not over the
 * byte limit in units, if it is ASCII (then its bytes are its units, so it is within the byte
 * limit too). One pass, keeping the general order of precedence: a trailing '/', then NUL
 * anywhere, then the depth, then the first bad component (empty, then `.` or `..`, then too
 * long). Messages are built only on a refusal.
 */
function scanAsciiPath(path: string, limits: TreeLimits): TreeError | null | typeof notAscii {
  const length = path.length;
  let nul = false;
  let depth = 1;
  let bad = badNone;
  let start = 1;
  for (let i = 1; i <= length; i++) {
    // i === length ends the last component as a '/' would.
    const unit = i === length ? slashUnit : path.charCodeAt(i);
    if (unit > 0x7f) return notAscii;
    if (unit === 0) nul = true;
    if (unit !== slashUnit) continue;
    if (i < length) depth++;
    if (bad === badNone) bad = componentFault(path, start, i - start, limits);
    start = i + 1;
  }
  if (path.charCodeAt(length - 1) === slashUnit) return treeErrors.badPath(`path must not end with '/': ${JSON.stringify(path)}`);
  if (nul) return treeErrors.badPath('path must not contain NUL');
  if (depth > limits.pathDepthMax) return treeErrors.tooLarge('path_depth', limits.pathDepthMax);
  return bad === badNone ? null : componentError(bad, path, limits);
}

const badNone = 0;
const badEmpty = 1;
const badDot = 2;
const badLong = 3;

/** What is wrong with the ASCII component of `length` units at `start`, if anything. */
function componentFault(path: string, start: number, length: number, limits: TreeLimits): number {
  if (length === 0) return badEmpty;
  if (path.charCodeAt(start) === dot && (length === 1 || (length === 2 && path.charCodeAt(start + 1) === dot))) return badDot;
  if (length > limits.componentBytesMax) return badLong;
  return badNone;
}

function componentError(bad: number, path: string, limits: TreeLimits): TreeError {
  if (bad === badEmpty) return treeErrors.badPath(`path has an empty component: ${JSON.stringify(path)}`);
  if (bad === badDot) return treeErrors.badPath(`path components '.' and '..' are not allowed: ${JSON.stringify(path)}`);
  return treeErrors.tooLarge('component_bytes', limits.componentBytesMax);
}

/**
 * The checks one after another, for a non-ASCII path that starts with '/' (so not the root)
 * and is not over the byte limit in units.
 */
function measurePathGeneral(path: string, limits: TreeLimits): number | TreeError {
  const bytes = utf8Length(path);
  if (bytes > limits.pathBytesMax) return treeErrors.tooLarge('path_bytes', limits.pathBytesMax);
  if (path.endsWith('/')) return treeErrors.badPath(`path must not end with '/': ${JSON.stringify(path)}`);
  if (path.includes('\u0000')) return treeErrors.badPath('path must not contain NUL');
  if (!isWellFormedUtf16(path)) return treeErrors.badPath('path must be valid Unicode');
  // One component per '/', the leading one included.
  let depth = 0;
  for (let slash = 0; slash >= 0; slash = path.indexOf('/', slash + 1)) depth++;
  if (depth > limits.pathDepthMax) return treeErrors.tooLarge('path_depth', limits.pathDepthMax);
  for (let start = 1; start <= path.length; ) {
    const slash = path.indexOf('/', start);
    const end = slash < 0 ? path.length : slash;
    const length = end - start;
    if (length === 0) return treeErrors.badPath(`path has an empty component: ${JSON.stringify(path)}`);
    if (path.charCodeAt(start) === dot && (length === 1 || (length === 2 && path.charCodeAt(start + 1) === dot))) {
      return treeErrors.badPath(`path components '.' and '..' are not allowed: ${JSON.stringify(path)}`);
    }
    if (utf8Length(path.slice(start, end)) > limits.componentBytesMax) {
      return treeErrors.tooLarge('component_bytes', limits.componentBytesMax);
    }
    start = end + 1;
  }
  return bytes;
}

const slashUnit = 0x2f;
const dot = 0x2e;

/** Lone surrogates cannot be encoded as UTF-8, so they would not survive the wire. */
function isWellFormedUtf16(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return false;
    }
  }
  return true;
}
