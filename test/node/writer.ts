/**
 * A closed-loop writer for the layout tests (single_layout, main_thread_layout): creates under
 * `/w` until stopped, keeping what was acknowledged, so a test can check that every
 * acknowledged write survived the faults it drove.
 */

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
