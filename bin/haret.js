#!/usr/bin/env node
// The `haret` command. In a development checkout (the TypeScript sources are here) it runs
// them through tsx (or, asked to, a dist/ built from these very sources), so it never runs a
// stale build; an installed package ships only dist/ and bin/, and runs the compiled CLI. Everything
// lives in src/cli/haret.ts.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const source = new URL('../src/cli/haret.ts', import.meta.url);
// A development checkout asked to (HARET_COMPILED=1, the test suite) whose dist/ is a build of
// these very sources runs it: the same code, started in about half the CPU (bin/compiled_fresh.cjs).
const { useCompiled } = createRequire(import.meta.url)('./compiled_fresh.cjs');
if (existsSync(source) && !useCompiled()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/cli/haret.js', import.meta.url).href);
}
