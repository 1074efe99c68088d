/**
 * Benchmark entry: `npm run bench -- [suite ...] [--quick] [--out DIR]`.
 *
 * Runs the named suites in the order given, or every registered suite when none is named.
 * Each suite prints its tables to stdout (progress goes to stderr) and writes
 * `<DIR>/<suite>-<timestamp>.json` and `<DIR>/<suite>-latest.json` (default DIR: bench/results).
 *
 * Exit codes: 0 success, 1 a suite threw, 2 bad command line.
 */

import type { WorkerLayout } from '../src/node/options.ts';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultOutDir, type Suite } from './report.ts';
import { durableSuite } from './durable.bench.ts';
import { netSuite } from './net.bench.ts';
import { recipesSuite } from './recipes.bench.ts';
import { runtimeSuite } from './runtime.bench.ts';
import { simSuite } from './sim.bench.ts';
import { treeSuite } from './tree.bench.ts';
import { watchSuite } from './watch.bench.ts';

/** The registered suites, in the order `npm run bench` with no suite runs them. */
const suites: ReadonlyMap<string, Suite> = new Map<string, Suite>([
  ['tree', treeSuite],
  ['sim', simSuite],
  ['runtime', runtimeSuite],
  ['net', netSuite],
  ['durable', durableSuite],
  ['watch', watchSuite],
  ['recipes', recipesSuite],
]);

const workerLayouts: readonly WorkerLayout[] = ['actor_per_worker', 'shared', 'single', 'main_thread'];

const usage = `usage: npm run bench -- [suite ...] [--quick] [--out DIR] [--worker-layout LAYOUT]

  suite                   one of: ${[...suites.keys()].join(', ')} (default: all)
  --quick                 smaller sizes and shorter runs, for a smoke run
  --out DIR               where the JSON result files go (default: bench/results)
  --worker-layout LAYOUT  the durable and recipes suites' haret nodes run with this
                          workerLayout (${workerLayouts.join(', ')}; default: the
                          node's default, and main_thread for recipes)
  -h, --help              this text`;

/** A command-line mistake: reported with the usage text, exit code 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Command = {
  readonly help: boolean;
  readonly quick: boolean;
  readonly outDir: string;
  readonly suites: readonly string[];
  readonly workerLayout: WorkerLayout | undefined;
};

/** Flags and positionals; a UsageError for an unknown or malformed flag. */
function parseFlags(args: readonly string[]) {
  try {
    return parseArgs({
      args: [...args],
      options: {
        quick: { type: 'boolean', default: false },
        out: { type: 'string' },
        'worker-layout': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error: unknown) {
    // parseArgs throws a TypeError for unknown options and missing option values.
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function parseCommand(args: readonly string[]): Command {
  const parsed = parseFlags(args);
  const names = parsed.positionals;
  const unknown = names.filter((name) => !suites.has(name));
  if (unknown.length > 0) {
    const known = [...suites.keys()].join(', ');
    const plural = unknown.length === 1 ? 'suite' : 'suites';
    throw new UsageError(`unknown ${plural}: ${unknown.join(', ')} (known suites: ${known})`);
  }
  const layout = parsed.values['worker-layout'];
  if (layout !== undefined && !(workerLayouts as readonly string[]).includes(layout)) throw new UsageError(`--worker-layout must be one of ${workerLayouts.join(', ')}, got ${layout}`);
  return {
    workerLayout: layout as WorkerLayout | undefined,
    help: parsed.values.help,
    quick: parsed.values.quick,
    outDir: parsed.values.out === undefined ? defaultOutDir : path.resolve(parsed.values.out),
    // Each suite runs once, even when named twice.
    suites: names.length === 0 ? [...suites.keys()] : [...new Set(names)],
  };
}

async function main(): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(process.argv.slice(2));
  } catch (error: unknown) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  if (command.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  for (const name of command.suites) {
    const suite = suites.get(name);
    if (suite === undefined) throw new Error(`suite ${name} vanished from the registry`);
    process.stdout.write(`== ${name}${command.quick ? ' (quick)' : ''} ==\n\n`);
    await suite({ quick: command.quick, outDir: command.outDir, ...(command.workerLayout === undefined ? {} : { workerLayout: command.workerLayout }) });
  }
  return 0;
}

try {
  process.exitCode = await main();
} catch (error: unknown) {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
