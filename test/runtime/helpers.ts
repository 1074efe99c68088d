/** Shared helpers of the real-worker tests: event waits with deadlines, never bare sleeps. */

import { spawn } from 'node:child_process';

/** Resolves once `check()` is truthy, re-checking whenever `signal` fires or every `pollMs`; rejects after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000, pollMs = 25): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== null && value !== undefined && value !== false) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === null ? '' : `: ${String(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** A mailbox the test reads: messages pushed by a host actor, awaited by predicate. */
export class Probe {
  readonly messages: unknown[] = [];
  #waiters: { predicate: (messages: readonly unknown[]) => boolean; resolve: () => void }[] = [];

  push(message: unknown): void {
    this.messages.push(message);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.predicate(this.messages)) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves when the predicate holds over everything received; rejects after `timeoutMs`. */
  until(what: string, predicate: (messages: readonly unknown[]) => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate(this.messages)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`probe: timed out waiting for ${what} (have ${this.messages.length})`)), timeoutMs);
      this.#waiters.push({
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

export type ChildResult = { readonly code: number | null; readonly stdout: string; readonly stderr: string; readonly ms: number };

/** Runs a node script in a child process; kills it (and fails the caller) after `timeoutMs`. */
export function runChild(args: readonly string[], timeoutMs: number, input?: string, env?: NodeJS.ProcessEnv): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(env === undefined ? {} : { env: { ...process.env, ...env } }) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}
