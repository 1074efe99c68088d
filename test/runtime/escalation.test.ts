/**
 * Escalation on a node: an actor past its restart limit is `failed`, the node says it is not
 * serving and why, calls fail at once instead of waiting out their deadline, and after the
 * supervisor's cool-down the actor is started afresh and the node serves again.
 */

import { expect } from 'chai';
import { HaretError, startNode, type HaretNode, type NodeStatus } from '../../src/node/index.ts';
import { eventually } from './helpers.ts';

/** One restart allowed per minute, so the second death is a failure; a short cool-down. */
const coolDownMs = 2_000;
const supervisor = { maxRestarts: 1, windowMs: 60_000, backoffMinMs: 5, backoffMaxMs: 20, failedCoolDownMs: coolDownMs };

async function proxyReport(node: HaretNode): Promise<NodeStatus['actors'][number] | undefined> {
  return (await node.status()).actors.find((actor) => actor.actor === 'proxy');
}

/** A call's outcome as a code, and how long it took to settle. */
async function timedCall(node: HaretNode): Promise<{ readonly code: string; readonly ms: number }> {
  const started = performance.now();
  const code = await node.client().blobPut('/x', 'v').then(
    () => 'ok',
    (error: unknown) => (error instanceof HaretError ? error.code : String(error)),
  );
  return { code, ms: performance.now() - started };
}

/**
 * Kills the proxy twice (the second death is past the limit), then checks the failed window
 * and the recovery. `kill` is how the proxy dies in each placement.
 */
async function failAndRecover(node: HaretNode, kill: () => Promise<void> | void): Promise<void> {
  await node.client().create('/x', 'blob');
  expect((await node.status()).serving).to.equal(true);
  await kill();
  await eventually('the proxy restarted once', async () => {
    const report = await proxyReport(node);
    return report?.state === 'running' && report.restarts === 1;
  });
  expect((await timedCall(node)).code).to.equal('ok');
  await kill();
  const failed = await eventually('the node reports that it is not serving', async () => {
    const status = await node.status();
    return status.serving ? null : status;
  });
  const failedAt = performance.now();
  expect(failed.problems).to.have.length(1);
  expect(failed.problems[0]).to.match(/^proxy failed: .*restarts within.*; restarts after the cool-down/);
  expect((await proxyReport(node))?.state).to.equal('failed');
  // Calls fail at once, typed, and say they were not sent; far below the call deadline.
  const refused = await timedCall(node);
  expect(refused.code).to.equal('unavailable');
  expect(refused.ms).to.be.below(100);
  expect(node.options.callDeadlineMs).to.be.above(5_000);
  expect(performance.now() - failedAt, 'the failed window was observed before the cool-down ended').to.be.below(coolDownMs);
  // After the cool-down the proxy is started afresh and the node serves again.
  const back = await eventually('the node serves again with the proxy running', async () => {
    const status = await node.status();
    return status.serving && status.actors.find((actor) => actor.actor === 'proxy')?.state === 'running' ? status : null;
  }, 20_000);
  expect(back.problems).to.deep.equal([]);
  expect(performance.now() - failedAt, 'not before the cool-down').to.be.above(coolDownMs / 2);
  expect((await proxyReport(node))?.restarts).to.equal(2);
  const after = await node.client().blobPut('/x', 'after the cool-down');
  expect(after.version).to.be.at.least(2);
}

describe('node: escalation past the restart limit', function () {
  this.timeout(60_000);

  it('a proxy worker killed past its restart limit: not serving, calls unavailable at once, then serving again after the cool-down', async () => {
    const node = await startNode({ logLevel: 'silent', supervisor });
    try {
      await failAndRecover(node, () => node.faults.terminate('proxy'));
    } finally {
      await node.stop();
    }
  });

  it('the same with the proxy on the main thread (host actor failure and re-creation)', async () => {
    const node = await startNode({ logLevel: 'silent', proxyThread: 'host', supervisor });
    try {
      // The proxy throws at its next message; ticks reach it every client tick.
      await failAndRecover(node, () => node.faults.crashHostActor('proxy'));
    } finally {
      await node.stop();
    }
  });

  it('a timer killed past its restart limit is named in status until its cool-down restart', async () => {
    const node = await startNode({ logLevel: 'silent', supervisor });
    try {
      await node.faults.terminate('timer');
      await eventually('the timer restarted once', async () => {
        const report = (await node.status()).actors.find((a) => a.actor === 'timer');
        return report?.state === 'running' && report.restarts === 1;
      });
      await node.faults.terminate('timer');
      const failed = await eventually('the node reports the timer', async () => {
        const status = await node.status();
        return status.serving ? null : status;
      });
      expect(failed.problems).to.have.length(1);
      expect(failed.problems[0]).to.match(/^timer failed: /);
      const timer = await eventually('the timer is back', async () => {
        const status = await node.status();
        const report = status.actors.find((a) => a.actor === 'timer');
        return status.serving && report?.state === 'running' ? report : null;
      }, 20_000);
      expect(timer.restarts).to.equal(2);
    } finally {
      await node.stop();
    }
  });
});
