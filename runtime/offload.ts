/**
 * Stateless CPU work off an actor's thread, on a piscina pool (DESIGN.md "piscina"): encoding
 * and checksumming snapshots, long checks, load generation. Never hosts an actor: its threads
 * are interchangeable. The pool is created on first use and its threads exit when idle, so an
 * actor that never offloads costs nothing.
 */

import { Piscina } from 'piscina';
import { tsxExecArgv } from './bootstrap.ts';

export type Offload = {
  /** Runs export `name` of module `module` (a file: URL) with `payload`, on a pool thread. */
  run<T>(module: string, name: string, payload: unknown, transfer?: ArrayBuffer[]): Promise<T>;
  /** Tasks completed so far. */
  completed(): number;
  close(): Promise<void>;
};

export type OffloadOptions = { readonly maxThreads: number; readonly idleTimeoutMs: number };

export const defaultOffloadOptions: OffloadOptions = { maxThreads: 1, idleTimeoutMs: 2000 };

/**
 * The pool's threads inherit this thread's flags, which is what they need, unless the task is
 * TypeScript and the tsx loader is not among them; only then are flags passed explicitly, less
 * the V8 flags Node refuses for a worker (`--expose-gc`: passing it made every pool start fail,
 * and each failed start leaked memory in the calling thread).
 */
function poolExecArgv(module: string): { execArgv?: string[] } {
  const extra = tsxExecArgv(module);
  if (extra.length === 0) return {};
  return { execArgv: [...process.execArgv.filter((arg) => !/^--expose[-_]gc/.test(arg)), ...extra] };
}

export function makeOffload(options: OffloadOptions = defaultOffloadOptions): Offload {
  let pool: Piscina | null = null;
  let done = 0;
  let closed = false;
  return {
    async run<T>(module: string, name: string, payload: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
      if (closed) throw new Error('offload pool is closed');
      pool ??= new Piscina({
        minThreads: 0,
        maxThreads: options.maxThreads,
        idleTimeout: options.idleTimeoutMs,
        ...poolExecArgv(module),
      });
      const result = (await pool.run(payload, { filename: module, name, transferList: transfer })) as T;
      done += 1;
      return result;
    },
    completed: () => done,
    async close() {
      closed = true;
      const current = pool;
      pool = null;
      await current?.destroy();
    },
  };
}
