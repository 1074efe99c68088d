'use strict';
// Mocha's configuration. `npm test` runs the suite as two shards side by side (test/shards.mjs):
// HARET_TEST_SHARD=pure takes the simulator and the unit tests of pure code (deterministic, no
// real time, one core), HARET_TEST_SHARD=rest everything else, unit tests that wait on timers,
// processes or threads included (a new file lands there unless listed here); without it, every
// test file, as before.
const shard = process.env.HARET_TEST_SHARD;
// Nodes the tests start, in this process or as `haret` processes, run their workers (and the
// command) from a fresh dist/ (`npm test` builds it first): half the CPU to start a node. A
// stale build falls back to the sources (bin/compiled_fresh.cjs).
process.env.HARET_COMPILED ??= '1';
const pure = [
  'test/sim/**/*.test.ts',
  'test/unit/tree*.test.ts',
  'test/unit/vr_*.test.ts',
  'test/unit/wire*.test.ts',
  'test/unit/client_*.test.ts',
  'test/unit/storage_checkpoint.test.ts',
  'test/unit/storage_record_log.test.ts',
  'test/unit/storage_superblock.test.ts',
  'test/unit/fields.test.ts',
  'test/unit/cluster_routing.test.ts',
  'test/unit/replica_glue.test.ts',
  'test/unit/watch_hub.test.ts',
  'test/unit/security_options.test.ts',
  'test/unit/cli_output.test.ts',
  'test/unit/no_skips.test.ts',
  'test/unit/compiled_workers.test.ts',
  'test/unit/checkpoint_offload.test.ts',
];
// Mocha adds the files named on its command line to `spec`: with some named
// (`npx mocha test/unit/tree_ops.test.ts`), only those run.
const named = process.argv.slice(2).some((arg) => !arg.startsWith('-') && /\.test\.ts$/.test(arg));

module.exports = {
  spec: named ? [] : shard === 'pure' ? pure : ['test/**/*.test.ts'],
  ...(shard === 'rest' ? { ignore: pure } : {}),
  extension: ['ts'],
  'node-option': ['import=tsx'],
  'forbid-only': true,
  'fail-zero': true,
  timeout: 120000,
  reporter: './test/reporter.cjs',
};
