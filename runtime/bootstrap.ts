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

/** The entry module every runtime worker runs. */
export function workerEntryUrl(): string {
  const here = import.meta.url;
  const extension = here.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker_entry${extension}`, here).href;
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
