'use strict';
// Mocha's configuration. `npm test` runs the suite as two shards side by side (test/shards.mjs):
// HARET_TEST_SHARD=pure takes the simulator and the unit tests (deterministic, one core),
// HARET_TEST_SHARD=rest everything else; without it, every test file, as before.
const shard = process.env.HARET_TEST_SHARD;
const pure = ['test/sim/**/*.test.ts', 'test/unit/**/*.test.ts'];

module.exports = {
  spec: shard === 'pure' ? pure : ['test/**/*.test.ts'],
  ...(shard === 'rest' ? { ignore: pure } : {}),
  extension: ['ts'],
  'node-option': ['import=tsx'],
  'forbid-only': true,
  'fail-zero': true,
  timeout: 120000,
  reporter: './test/reporter.cjs',
};
