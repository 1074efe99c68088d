/**
 * The pure core (DESIGN.md: src/vr, src/tree, src/client, src/api, src/watch) must not do I/O, read a
 * clock, draw randomness or log: that is what lets one seed replay any run exactly.
 * This test scans every core file and fails on a forbidden import or identifier.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const coreFolders = ['src/base', 'src/vr', 'src/tree', 'src/client', 'src/api', 'src/watch'];

const forbiddenModules = [/^node:/, /^pino(\/|$)/, /^piscina(\/|$)/, /^comlink(\/|$)/, /^(fs|path|os|worker_threads|child_process|net|http|https|crypto|timers|perf_hooks)$/];
const forbiddenIdentifiers = ['Date', 'Math.random', 'setTimeout', 'setInterval', 'setImmediate', 'console', 'performance', 'process'];

/** Removes comments and the contents of string and template literals, keeping code tokens. */
export function stripCommentsAndStrings(source: string): string {
  let out = '';
  let i = 0;
  while (i < source.length) {
    const char = source[i] as string;
    const next = source[i + 1];
    if (char === '/' && next === '/') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (char === '/' && next === '*') {
      i += 2;
      while (i < source.length && !(source[i] === '*' && source[i + 1] === '/')) i++;
      i += 2;
    } else if (char === '"' || char === "'" || char === '`') {
      i++;
      while (i < source.length && source[i] !== char) i += source[i] === '\\' ? 2 : 1;
      i++;
      out += '""';
    } else {
      out += char;
      i++;
    }
  }
  return out;
}

/** Every reason a source file breaks purity; empty when it is pure. */
export function purityViolations(source: string): string[] {
  const violations: string[] = [];
  const importPattern = /\b(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;
  for (const match of source.matchAll(importPattern)) {
    const specifier = match[1] ?? match[2] ?? match[3] ?? match[4] ?? '';
    if (forbiddenModules.some((pattern) => pattern.test(specifier))) violations.push(`imports ${specifier}`);
  }
  const code = stripCommentsAndStrings(source);
  for (const identifier of forbiddenIdentifiers) {
    const escaped = identifier.replace('.', '\\s*\\.\\s*');
    if (new RegExp(`(?<![\\w$.])${escaped}(?![\\w$])`).test(code)) violations.push(`uses ${identifier}`);
  }
  return violations;
}

function sourceFiles(folder: string): string[] {
  const absolute = join(repoRoot, folder);
  let names: string[];
  try {
    names = readdirSync(absolute);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(absolute, name);
    if (statSync(path).isDirectory()) return sourceFiles(relative(repoRoot, path));
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(name) ? [path] : [];
  });
}

describe('purity of the core', () => {
  it('flags forbidden imports and identifiers in a sample (the checker itself works)', () => {
    const bad = [
      "import { readFileSync } from 'node:fs';",
      "import pino from 'pino';",
      "const w = await import('piscina');",
      'const t = Date.now();',
      'const r = Math . random();',
      'setTimeout(() => {}, 1);',
      'console.log("x");',
    ].join('\n');
    expect(purityViolations(bad)).to.have.members([
      'imports node:fs',
      'imports pino',
      'imports piscina',
      'uses Date',
      'uses Math.random',
      'uses setTimeout',
      'uses console',
    ]);
  });

  it('ignores forbidden words inside comments and strings', () => {
    const fine = "// Date.now() is not allowed here\nconst s = 'console and setTimeout';\n/* Math.random */\nconst updated = 1;";
    expect(purityViolations(fine)).to.deep.equal([]);
  });

  it('finds the core files it checks', () => {
    expect(sourceFiles('src/tree').length).to.be.greaterThan(5);
  });

  for (const folder of coreFolders) {
    it(`${folder} has no I/O, clock, randomness, timers or logging`, () => {
      const report: string[] = [];
      for (const file of sourceFiles(folder)) {
        for (const violation of purityViolations(readFileSync(file, 'utf8'))) {
          report.push(`${relative(repoRoot, file)}: ${violation}`);
        }
      }
      expect(report, report.join('\n')).to.deep.equal([]);
    });
  }
});
