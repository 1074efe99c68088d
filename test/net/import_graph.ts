/**
 * The run-time import graph of a source file, read from the source text: what a module loads
 * when it is imported (type-only imports are erased), for tests that bound what a piece of
 * the product may pull in.
 */

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (absolute). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Every file `entry` (absolute) imports at run time, transitively, and the packages. */
export function runtimeImports(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^\s*(import|export)\s+(?!type\b)([^'";]*?\bfrom\s+)?['"]([^'"]+)['"]/gm)) {
      const clause = match[2] ?? '';
      // `import { type A, type B } from` is erased too.
      if (/^\{\s*(type\s+[\w$]+\s*(as\s+[\w$]+\s*)?,?\s*)+\}\s*from\s+$/.test(clause.trim() + ' ')) continue;
      const target = match[3] as string;
      if (target.startsWith('.')) visit(resolve(dirname(file), target));
      else packages.add(target.startsWith('node:') ? target : (target.split('/')[0] as string));
    }
  };
  visit(entry);
  return { files, packages };
}
