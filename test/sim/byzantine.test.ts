/**
 * The forged-message injector (./byzantine.ts) and the `forged_accepted` check (issue 12):
 * swarm-drawn per seed, every kind of forgery reaches replicas and is dropped by the gate with
 * the checkers green, and a core whose gate lets a forgery through is caught.
 */

import { expect } from 'chai';
import { protocolNumberMax } from '../../src/base/limits.ts';
import type { ReplicaInput } from '../../src/vr/io.ts';
import type { ReplicaMessage } from '../../src/vr/messages.ts';
import { stepAll } from '../../src/vr/step.ts';
import { ByzantineInjector, forgeryKinds } from './byzantine.ts';
import { Cluster, type StepFunction } from './cluster.ts';
import { Prng } from './prng.ts';
import { drawParams, formatFailure, runSeed } from './vopr.ts';

/**
 * A broken gate: protocol numbers beyond the bound are clamped to it instead of refused, so the
 * message goes on to its handler (no `drop_malformed`).
 */
const clampingGate: StepFunction = (_index, state, inputs) => {
  const clamp = (message: ReplicaMessage): ReplicaMessage => {
    const out: Record<string, unknown> = { ...message };
    for (const [key, value] of Object.entries(out)) if (typeof value === 'number' && value > protocolNumberMax && key !== 'replica') out[key] = protocolNumberMax;
    return out as ReplicaMessage;
  };
  const clamped: ReplicaInput[] = inputs.map((input) => (input.type === 'receive' && typeof input.message === 'object' && input.message !== null ? { type: 'receive', message: clamp(input.message) } : input));
  return stepAll(state, clamped);
};

describe('sim: forged messages on the wire (./byzantine.ts)', () => {
  it('is drawn per seed (on for some seeds, off for others) and can be forced either way', () => {
    const rates = Array.from({ length: 60 }, (_, i) => drawParams(new Prng(i + 1).fork(), {}).byzantineProbability);
    expect(rates.filter((rate) => rate === 0).length, 'seeds without forgeries').to.be.above(10);
    expect(rates.filter((rate) => rate > 0).length, 'seeds with forgeries').to.be.above(10);
    for (let seed = 1; seed <= 20; seed++) {
      expect(drawParams(new Prng(seed).fork(), { byzantine: true }).byzantineProbability).to.be.above(0);
      expect(drawParams(new Prng(seed).fork(), { byzantine: false }).byzantineProbability).to.equal(0);
    }
  });

  it('forging leaves every other draw of a seed as it was', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { byzantineProbability: _on, ...on } = drawParams(new Prng(seed).fork(), { byzantine: true });
      const { byzantineProbability: _off, ...off } = drawParams(new Prng(seed).fork(), { byzantine: false });
      expect(on).to.deep.equal(off);
    }
  });

  it('VOPR seeds with forgeries forced on: every kind is injected, every malformed one that arrives is dropped, no violation', function () {
    this.timeout(240_000);
    const injected = Object.fromEntries(forgeryKinds.map((kind) => [kind, 0])) as Record<string, number>;
    let delivered = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const report = runSeed(seed, { byzantine: true, durable: seed % 2 === 0 });
      expect(report.ok, formatFailure(report)).to.equal(true);
      for (const kind of forgeryKinds) injected[kind] = (injected[kind] ?? 0) + report.forged[kind];
      delivered += report.forgedDelivered;
    }
    for (const kind of forgeryKinds) expect(injected[kind], kind).to.be.above(10);
    expect(delivered).to.be.above(100);
  });

  it('a gate that clamps out-of-range numbers instead of refusing them is caught (forged_accepted or worse)', () => {
    const caught = (stepFunction: StepFunction | undefined): { kinds: string[]; injected: number } => {
      const cluster = new Cluster({ seed: 5, ...(stepFunction === undefined ? {} : { stepFunction }) });
      const injector = new ByzantineInjector(new Prng(77), cluster, 0.3);
      for (let tick = 0; tick < 400 && !cluster.halted; tick++) {
        injector.beforeTick();
        cluster.tick();
      }
      return { kinds: cluster.violations.map((violation) => violation.kind), injected: injector.total };
    };
    const real = caught(undefined);
    expect(real.kinds, 'the real core').to.deep.equal([]);
    expect(real.injected, 'forgeries over 400 ticks').to.be.above(60);
    const { kinds } = caught(clampingGate);
    expect(kinds.length, 'the broken gate').to.be.above(0);
    expect(['forged_accepted', 'exception']).to.include(kinds[0]);
  });
});
