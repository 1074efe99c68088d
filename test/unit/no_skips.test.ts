/**
 * No test is skipped, pending or exclusive, except one: the status page's browser tests skip,
 * saying why, on a machine without Chromium (issue 17 allows exactly that; CI installs
 * Chromium, so there they run). `.mocharc.cjs` no longer forbids pending tests for that one
 * case, so this scan is what keeps every other test from being skipped.
 */

import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const allowed = new Map<string, number>([['test/net/status_page.test.ts', 1]]);
const forbidden = /\b(?:it|describe|context|specify)\.(?:skip|only)\s*\(|\bx(?:it|describe|specify)\s*\(|\bthis\.skip\s*\(|\bit\s*\(\s*(['"`])[^'"`]*\1\s*\)/g;

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'fixtures' || name === 'node_modules' ? [] : testFiles(path);
    return /\.(ts|mts|cjs|js)$/.test(name) ? [path] : [];
  });
}

describe('no skipped tests', () => {
  it('no file skips, marks pending or isolates a test, but the status page\'s Chromium check', () => {
    const found: string[] = [];
    const seen = new Map<string, number>();
    for (const file of testFiles(join(root, 'test'))) {
      const name = relative(root, file);
      if (name === 'test/unit/no_skips.test.ts') continue;
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(forbidden)) {
        const count = (seen.get(name) ?? 0) + 1;
        seen.set(name, count);
        if (count > (allowed.get(name) ?? 0)) found.push(`${name}: ${match[0]}`);
      }
    }
    expect(found).to.deep.equal([]);
    // The allowed skip is still there and still guarded by the Chromium check.
    const page = readFileSync(join(root, 'test/net/status_page.test.ts'), 'utf8');
    expect(page).to.match(/if \(executablePath === null\) \{[^}]*SKIPPED[^}]*this\.skip\(\);/s);
  });

  it('the scan itself catches each form', () => {
    // Assembled at run time, so this file's own text holds none of the forms it checks for.
    const dot = '.';
    const samples = [`it${dot}skip("x", () => {})`, `describe${dot}only("x", () => {})`, `x${'it'}("x")`, `this${dot}skip();`, `it${'('}'pending')`];
    for (const sample of samples) {
      expect(sample.match(forbidden), sample).to.not.equal(null);
      forbidden.lastIndex = 0;
    }
    expect('it("runs", () => {})'.match(forbidden)).to.equal(null);
  });
});
