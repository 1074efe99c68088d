/**
 * When a serving process should stop: SIGINT or SIGTERM (Ctrl-C, a process manager), or, when
 * npm started it (`npm start`, `npx haret`), the death of npm's shell.
 *
 * npm runs a script through `sh -c` and forwards SIGINT and SIGTERM to that shell only.
 * Debian's sh (dash) neither execs the command nor passes signals on: on SIGTERM it dies and
 * leaves our process running with a new parent; on SIGINT it waits for us, and we never hear
 * of it. A process started by npm therefore also watches its parent: once it changes, npm's
 * shell is gone and the process stops as on SIGTERM. (SIGINT to npm's own process alone still
 * cannot reach us; a terminal's Ctrl-C goes to the whole process group and does.)
 *
 * After the first signal the handlers are gone, so a second Ctrl-C ends the process at once
 * if stopping takes too long.
 */

/** How often a process started by npm looks at its parent. */
const parentPollMs = 250;

export type StopRequest = {
  /** Resolves with the reason: 'SIGINT', 'SIGTERM' or 'parent exited'. */
  readonly reason: Promise<string>;
  /** Removes the handlers (a later signal then acts as by default). */
  dispose(): void;
};

/** `signals`: the signals that stop the process (a prompt handles SIGINT itself). */
export function stopRequested(signals: readonly ('SIGINT' | 'SIGTERM')[] = ['SIGINT', 'SIGTERM'], env: NodeJS.ProcessEnv = process.env): StopRequest {
  let resolve: (reason: string) => void = () => undefined;
  const reason = new Promise<string>((settle) => (resolve = settle));
  const onSigint = (): void => finish('SIGINT');
  const onSigterm = (): void => finish('SIGTERM');
  const startedByNpm = env['npm_lifecycle_event'] !== undefined;
  const parent = process.ppid;
  const poll = startedByNpm
    ? setInterval(() => {
        if (process.ppid !== parent) finish('parent exited');
      }, parentPollMs)
    : null;
  poll?.unref();
  const dispose = (): void => {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    if (poll !== null) clearInterval(poll);
  };
  function finish(why: string): void {
    dispose();
    resolve(why);
  }
  if (signals.includes('SIGINT')) process.on('SIGINT', onSigint);
  if (signals.includes('SIGTERM')) process.on('SIGTERM', onSigterm);
  return { reason, dispose };
}
