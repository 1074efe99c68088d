'use strict';
// Whether dist/ holds a build of this checkout's very sources: every `.ts` of the directories the
// build compiles (tsconfig.build.json `include`) has its `.js` twin in dist/, at least as new.
// An edit, a checkout or a pull makes a source newer; `npm install` (prepare) and `npm run
// build` make the twins newer. Used from a development checkout only, by bin/haret.js (the CLI)
// and runtime/bootstrap.ts (worker threads), and only when HARET_COMPILED=1 asks for it (the
// test suite does, .mocharc.cjs): with a fresh build they run the compiled twins, which start in
// about half the CPU of the sources under tsx; otherwise the sources. Not by default: measured
// here, the compiled twins run the protocol 10-15% slower than the same sources under tsx
// (in-process durable puts at 1,024 callers 20.8k/s against 23.2k/s, four runs each; the
// simulator benchmark's core 30.7k against 36.0k ops/s), a difference not yet explained, and
// the benchmarks and `npm start` keep the faster sources. CommonJS so both can load it
// synchronously.
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const compiledDirs = ['src', 'actors', 'runtime'];
let cached = null;

function freshDir(root, relative) {
  let names;
  try {
    names = readdirSync(join(root, relative));
  } catch {
    return false;
  }
  for (const name of names) {
    const path = `${relative}/${name}`;
    const stat = statSync(join(root, path));
    if (stat.isDirectory()) {
      if (!freshDir(root, path)) return false;
    } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
      const twin = join(root, 'dist', `${path.slice(0, -'.ts'.length)}.js`);
      if (!existsSync(twin) || statSync(twin).mtimeMs < stat.mtimeMs) return false;
    }
  }
  return true;
}

/** Whether `root`/dist is a build of `root`'s sources. */
function isBuildOf(root) {
  return compiledDirs.every((dir) => freshDir(root, dir));
}

/** True when the compiled twins may run instead of the sources (checked once per process, ~180 stats). */
function useCompiled() {
  if (process.env.HARET_COMPILED !== '1') return false;
  cached ??= isBuildOf(join(__dirname, '..'));
  return cached;
}

module.exports = { useCompiled, isBuildOf, compiledDirs };
