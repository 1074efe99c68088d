/**
 * FROZEN REFERENCE: a verbatim copy of src/tree/validate.ts, src/tree/path.ts (the helpers it
 * uses) and src/base/fields.ts as they were at commit bfbba3e, before validateOp's fast path.
 * test/unit/tree_validate_fast.test.ts checks that the live validateOp gives exactly the
 * same result as this one on generated valid and hostile input. Do not edit to match the
 * live code: a difference is what the test is for.
 */
/**
 * Paths: absolute, UTF-8, `/`-separated (DATA_MODEL.md). `/` is the root.
 *
 * The accepted form is canonical so that one node has exactly one spelling: a leading `/`,
 * no trailing `/` (except the root itself), no empty, `.` or `..` components, no NUL.
 */

import { treeErrors, type TreeError } from '../../../src/tree/errors.ts';
import type { TreeLimits } from '../../../src/base/limits.ts';

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

/**
 * Returns a typed error for a path that is malformed or over a limit, else null. It runs for
 * every op a replica validates (the primary at admission, each backup for every prepared
 * entry), so it walks the components in place rather than splitting the path into an array.
 */
export function checkPath(path: unknown, limits: TreeLimits): TreeError | null {
  if (typeof path !== 'string') return treeErrors.badPath('a path must be a string');
  if (!path.startsWith('/')) return treeErrors.badPath(`path must be absolute: ${JSON.stringify(path.slice(0, 64))}`);
  const bytes = utf8Length(path);
  if (bytes > limits.pathBytesMax) return treeErrors.tooLarge('path_bytes', limits.pathBytesMax);
  if (path === rootPath) return null;
  if (path.endsWith('/')) return treeErrors.badPath(`path must not end with '/': ${JSON.stringify(path)}`);
  if (path.includes('\u0000')) return treeErrors.badPath('path must not contain NUL');
  if (!isWellFormedUtf16(path)) return treeErrors.badPath('path must be valid Unicode');
  // One component per '/', the leading one included.
  let depth = 0;
  for (let slash = 0; slash >= 0; slash = path.indexOf('/', slash + 1)) depth++;
  if (depth > limits.pathDepthMax) return treeErrors.tooLarge('path_depth', limits.pathDepthMax);
  // UTF-8 takes at least one byte per UTF-16 unit, and exactly one only for ASCII.
  const ascii = bytes === path.length;
  for (let start = 1; start <= path.length; ) {
    const slash = path.indexOf('/', start);
    const end = slash < 0 ? path.length : slash;
    const length = end - start;
    if (length === 0) return treeErrors.badPath(`path has an empty component: ${JSON.stringify(path)}`);
    if (path.charCodeAt(start) === dot && (length === 1 || (length === 2 && path.charCodeAt(start + 1) === dot))) {
      return treeErrors.badPath(`path components '.' and '..' are not allowed: ${JSON.stringify(path)}`);
    }
    if ((ascii ? length : utf8Length(path.slice(start, end))) > limits.componentBytesMax) {
      return treeErrors.tooLarge('component_bytes', limits.componentBytesMax);
    }
    start = end + 1;
  }
  return null;
}

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
