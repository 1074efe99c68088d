/**
 * CI run of the VOPR: a fixed set of seeds through `runSeed`, 0 violations expected. A failure
 * names the seed, the violation and the exact replay command.
 */

import { expect } from 'chai';
import { formatFailure, runSeed, type SeedReport } from './vopr.ts';

/** Seeds 1..200, in batches of 20. */
const firstSeed = 1;
const seedCount = 200;
const batchSize = 20;

describe('vopr: seeded simulation (safety, liveness, linearizability)', function () {
  for (let from = firstSeed; from < firstSeed + seedCount; from += batchSize) {
    const to = Math.min(from + batchSize, firstSeed + seedCount) - 1;
    it(`seeds ${from}..${to} run without a violation`, function () {
      this.timeout(240_000);
      const failures: SeedReport[] = [];
      for (let seed = from; seed <= to; seed++) {
        const report = runSeed(seed);
        if (!report.ok) failures.push(report);
      }
      const detail = failures.slice(0, 3).map(formatFailure);
      const rest = failures.slice(3).map((report) => `seed ${report.seed}: ${report.violation?.kind ?? '?'} (${report.replay})`);
      expect(failures.length, `${failures.length} seed(s) failed:\n${[...detail, ...rest].join('\n')}`).to.equal(0);
    });
  }

  it('replays a seed exactly', function () {
    this.timeout(60_000);
    const strip = (report: SeedReport): unknown => ({ ...report, elapsedMs: 0 });
    expect(strip(runSeed(7))).to.deep.equal(strip(runSeed(7)));
  });
});
