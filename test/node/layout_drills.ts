/**
 * Drills shared by the layout tests (single_layout, main_thread_layout): a closed-loop writer
 * that creates under `/w` until stopped, keeping what was acknowledged, and the contained-crash
 * drill run under it.
 */

import { expect } from 'chai';
import type { HaretNode } from '../../src/node/index.ts';
import { eventually } from '../runtime/helpers.ts';

/** Closed-loop creates of `/w/v<i>` until stopped: what was acknowledged, and the first errors (a failed call waits 10 ms, so a namespace that refuses at once is not spun on). */
export function writer(node: HaretNode): { readonly acknowledged: string[]; readonly errors: unknown[]; stop(): Promise<void> } {
  const client = node.client();
  const acknowledged: string[] = [];
  const errors: unknown[] = [];
  let writing = true;
  const done = (async () => {
    for (let i = 0; writing; i++) {
      try {
        await client.create(`/w/v${i}`, 'blob');
        acknowledged.push(`v${i}`);
      } catch (error) {
        if (errors.length < 100) errors.push(error);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  })();
  return {
    acknowledged,
    errors,
    stop: async () => {
      writing = false;
      await done;
    },
  };
}

/** Creates /w and starts a writer (kept in `running` at once, so that a `finally` can stop it), then waits until it writes. */
export async function writing(node: HaretNode, running: ReturnType<typeof writer>[]): Promise<ReturnType<typeof writer>> {
  await node.client().create('/w', 'directory');
  const load = writer(node);
  running.push(load);
  await eventually('writes flowing', () => load.acknowledged.length >= 30 || null, 15_000);
  return load;
}

export async function replicaStates(node: HaretNode): Promise<{ actor: string; state: string; status: string | null; restarts: number; worker: string }[]> {
  return (await node.status()).actors.filter((a) => a.ns === 'default' || /^default\/r\d$/.test(a.actor)).map((a) => ({ actor: a.actor, state: a.state, status: a.status, restarts: a.restarts, worker: a.worker }));
}

/**
 * Under writes to `default` (started here): r2's throw; it is re-created and back to normal, and
 * writes go on. Returns the stopped writer, with everything it had acknowledged.
 */
export async function crashR2UnderWrites(node: HaretNode, writers: ReturnType<typeof writer>[]): Promise<ReturnType<typeof writer>> {
  const running = await writing(node, writers);
  await node.faults.crashActor(node.replicaId('default', 2));
  const atCrash = running.acknowledged.length;
  await eventually('r2 back to normal', async () => {
    const r2 = (await replicaStates(node)).find((a) => a.actor === 'default/r2');
    return r2 !== undefined && r2.restarts >= 1 && r2.status === 'normal' ? true : null;
  }, 30_000, 50);
  await eventually('writes go on', () => running.acknowledged.length >= atCrash + 30 || null, 30_000, 50);
  await running.stop();
  return running;
}

/**
 * Under writes to `default`: a backup's throw, then the primary's. Each replica is re-created
 * and back to normal through recovery, writes go on throughout, the namespace is never
 * unavailable, and every acknowledged write is stored. Stops the writer; the caller stops the node.
 */
export async function crashBackupThenPrimary(node: HaretNode, writers: ReturnType<typeof writer>[]): Promise<void> {
  const running = await writing(node, writers);
  await node.faults.crashActor(node.replicaId('default', 1));
  await eventually('r1 re-created and back to normal', async () => {
    const r1 = (await replicaStates(node)).find((a) => a.actor === 'default/r1');
    return r1 !== undefined && r1.restarts >= 1 && r1.state === 'running' && r1.status === 'normal' ? true : null;
  }, 30_000, 50);
  const afterBackup = running.acknowledged.length;
  const primary = (await node.status()).actors.find((a) => a.ns === 'default' && a.role === 'primary')?.actor ?? '';
  expect(primary).to.match(/^default\/r\d$/);
  await node.faults.crashActor(primary);
  await eventually('writes acknowledged after the primary crashed', () => running.acknowledged.length >= afterBackup + 30 || null, 30_000, 50);
  await eventually('every replica normal again', async () => ((await replicaStates(node)).every((a) => a.status === 'normal' && a.state === 'running') ? true : null), 30_000, 50);
  await running.stop();
  expect(node.health.unavailable('default'), 'never unavailable').to.equal(null);
  const states = await replicaStates(node);
  expect(states.find((a) => a.actor === 'default/r1')?.restarts).to.be.at.least(1);
  expect(states.find((a) => a.actor === primary)?.restarts).to.be.at.least(1);
  const stored = new Set((await node.client().list('/w')).entries.map((entry) => entry.name));
  expect(running.acknowledged.filter((name) => !stored.has(name)), 'acknowledged but missing').to.deep.equal([]);
}
