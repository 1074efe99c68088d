// `npm test`'s runner: the suite in two mocha processes side by side, then one closing line
// "N passed, N failed" for both (CI reads it).
// - `pure`: the simulator and the unit tests of pure code (listed in .mocharc.cjs).
//   Deterministic and single-threaded (the vopr test keeps to one thread here), they use one
//   core and nothing they assert depends on time.
// - `rest`: the runtime, node, network and durability tests and the unit tests that wait on
//   timers, processes or threads, which mostly wait on timeouts, restarts and disks.
// On 2 cores the suite takes the longer of the two instead of their sum. The pure shard runs at
// the lowest CPU priority (nice 19, inherited by its threads): it takes only the CPU the rest
// leaves idle, so the timing-sensitive tests run as if alone (a run with both at equal priority
// failed once in three: a `haret admin` command past its deadline; and a test that waits on
// real time starves there, so none is in the pure shard). Each shard's report is
// printed whole when it ends, the pure one first.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const mocha = createRequire(import.meta.url).resolve('mocha/bin/mocha.js');
const summary = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/gm;

function run(shard) {
  return new Promise((resolve) => {
    const started = performance.now();
    const command = [process.execPath, mocha, ...process.argv.slice(2)];
    const [file, ...args] = shard === 'pure' ? ['nice', '-n', '19', ...command] : command;
    const child = spawn(file, args, { env: { ...process.env, HARET_TEST_SHARD: shard }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('close', (code, signal) => resolve({ shard, out, code, signal, seconds: (performance.now() - started) / 1000 }));
  });
}

const results = await Promise.all([run('pure'), run('rest')]);
let passed = 0;
let failed = 0;
let skipped = 0;
for (const result of results) {
  process.stdout.write(`\n===== shard ${result.shard} (${result.seconds.toFixed(0)} s) =====\n${result.out}`);
  const counts = [...result.out.matchAll(summary)].at(-1);
  if (counts === undefined) {
    // A shard that died before its reporter's line counts as one failure, never as a pass.
    failed += 1;
    process.stdout.write(`\nshard ${result.shard} ended without a summary (exit ${result.code ?? result.signal})\n`);
    continue;
  }
  passed += Number(counts[1]);
  failed += Number(counts[2]);
  skipped += Number(counts[3] ?? 0);
  if (result.code !== 0 && Number(counts[2]) === 0) {
    failed += 1;
    process.stdout.write(`\nshard ${result.shard} exited ${result.code ?? result.signal} with no failed test\n`);
  }
}
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed === 0 ? 0 : 1;
