/**
 * One worker bootstrap for both ways haret runs: from compiled JavaScript (dist/) and from
 * TypeScript sources under the tsx loader (tests, `npm start`, benchmarks). Worker threads
 * are started from this small script with `eval`, so no separate JavaScript file has to be
 * shipped beside the compiled output; it loads tsx first when the entry is a `.ts` file and the
 * thread did not inherit the loader.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { ActorSpec } from './actor.ts';

/** The entry module every runtime worker runs. */
export function workerEntryUrl(): string {
  const here = import.meta.url;
  const extension = here.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker_entry${extension}`, here).href;
}

/** What a worker thread runs: its entry, the tsx API to register first (or null), its actors. */
export type WorkerModules = { readonly entry: string; readonly tsx: string | null; readonly actors: readonly ActorSpec[] };

/**
 * A worker's modules. From compiled output, as given. From TypeScript sources with
 * HARET_COMPILED=1 (the test suite), the worker runs the compiled twins in dist/ instead when
 * the build is of these very sources (bin/compiled_fresh.cjs) and every actor of the worker is
 * one of the package's own modules: under tsx a worker costs about twice the CPU to start
 * (measured: `startNode` from sources 3.5 CPU-s and 1.8 s, with compiled workers 1.6 CPU-s and
 * 0.8 s). Without it, a stale or missing build, or a test's own actor module: the sources.
 */
export function workerModules(actors: readonly ActorSpec[]): WorkerModules {
  const entry = workerEntryUrl();
  if (entry.endsWith('.ts') && compiledIsFresh()) {
    const twins = actors.map((spec) => compiledTwin(spec.module));
    const entryTwin = compiledTwin(entry);
    if (entryTwin !== null && twins.every((twin) => twin !== null)) {
      return { entry: entryTwin, tsx: null, actors: actors.map((spec, i) => ({ ...spec, module: twins[i] as string })) };
    }
  }
  return { entry, tsx: tsxRegisterUrl(entry), actors };
}

/** The package root (this file is runtime/bootstrap.ts in the sources). */
const packageRoot = new URL('../', import.meta.url);

/** bin/compiled_fresh.cjs, typed. */
export type CompiledFresh = { readonly useCompiled: () => boolean; readonly isBuildOf: (root: string) => boolean; readonly compiledDirs: readonly string[] };

let compiledFreshModule: CompiledFresh | null = null;

/** Loaded only from the sources: bin/ sits beside runtime/ there, not beside dist/runtime/. */
export function compiledFresh(): CompiledFresh {
  compiledFreshModule ??= createRequire(import.meta.url)('../bin/compiled_fresh.cjs') as CompiledFresh;
  return compiledFreshModule;
}

function compiledIsFresh(): boolean {
  return compiledFresh().useCompiled();
}

/** `dist/<path>.js` for a `.ts` module of the package's compiled directories, else null. */
function compiledTwin(url: string): string | null {
  if (!url.startsWith(packageRoot.href) || !url.endsWith('.ts') || url.endsWith('.d.ts')) return null;
  const relative = url.slice(packageRoot.href.length);
  if (!compiledFresh().compiledDirs.some((dir) => relative.startsWith(`${dir}/`))) return null;
  return new URL(`dist/${relative.slice(0, -'.ts'.length)}.js`, packageRoot).href;
}

function hasTsxLoader(execArgv: readonly string[]): boolean {
  return execArgv.some((arg) => arg.includes('tsx'));
}

/** Extra `execArgv` a thread needs to run `module`: the tsx loader for a `.ts` file, unless inherited. */
export function tsxExecArgv(module: string): string[] {
  if (!module.endsWith('.ts') || hasTsxLoader(process.execArgv)) return [];
  return ['--import', resolveUrl('tsx')];
}

/**
 * The script a worker evaluates. `workerData.haretEntry` is the module to import and
 * `workerData.haretTsx` the tsx API to register first (or null).
 */
export const bootstrapScript = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.haretTsx) {
    const api = await import(workerData.haretTsx);
    api.register();
  }
  await import(workerData.haretEntry);
})().catch((error) => {
  process.nextTick(() => { throw error; });
});
`;

/**
 * The tsx API URL to register inside a worker, or null for compiled output. Registered even
 * when the host runs with `--import tsx`: an `eval` worker does not apply inherited `--import`
 * hooks to its dynamic imports.
 */
export function tsxRegisterUrl(entry: string): string | null {
  if (!entry.endsWith('.ts')) return null;
  return resolveUrl('tsx/esm/api');
}

/**
 * A package's URL as seen from this file. `createRequire` rather than `import.meta.resolve`:
 * under a test runner this file may be loaded as CommonJS, where the latter does not exist.
 */
function resolveUrl(specifier: string): string {
  const path = createRequire(import.meta.url).resolve(specifier);
  // require() resolves the package's "require" condition; dynamic import needs its ESM twin.
  const esm = path.replace(/\.cjs$/, '.mjs');
  return pathToFileURL(esm !== path && existsSync(esm) ? esm : path).href;
}
