'use strict';
// Mocha's spec reporter plus the closing line CI reads: "N passed, N failed".
// CommonJS because mocha loads custom reporters with require().
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class HaretReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      // Printed after the spec summary. The only test that may be skipped is the status page's
      // browser test on a machine without Chromium (test/unit/no_skips.test.ts enforces it).
      process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
    });
  }
}

module.exports = HaretReporter;
