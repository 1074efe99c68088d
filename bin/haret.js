#!/usr/bin/env node
// The `haret` command. In a development checkout (the TypeScript sources are here) it runs
// them through tsx, so it never runs a stale build; an installed package ships only dist/ and
// bin/, and runs the compiled CLI. Everything lives in src/cli/haret.ts.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/haret.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/cli/haret.js', import.meta.url).href);
}
