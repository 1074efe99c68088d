/**
 * `npm start`: a node with a default 3-replica namespace in this process, serving the TCP
 * client API on 127.0.0.1, and an interactive prompt connected to it through the client
 * library, exactly as a remote client would be (line by line when stdin is not a terminal).
 * Each result prints with its versions, view and the op that committed it. Ctrl-D (end of
 * input) or `quit` stops every worker cleanly and the process exits by itself, with status 0;
 * so do SIGTERM, and SIGINT while no watch or lock runs (a process manager's stop; see
 * src/cli/stop_signals.ts for what npm does with signals). At a terminal the prompt keeps its
 * history in ~/.haret_history (HARET_HISTORY_FILE).
 *
 * Flags: --namespace NAME (default `default`), --replicas N (default 3), --port P (default 0:
 * any free port), --log-level LEVEL, --http-address HOST:PORT (serve /metrics, /healthz,
 * /readyz and /status.json; ":PORT" means 127.0.0.1).
 */

import { parseArgs } from 'node:util';
import { connect } from '../net/index.ts';
import { startNode } from '../node/index.ts';
import { isLogLevel } from '../../runtime/logger.ts';
import { historyPath } from './history.ts';
import { asCallResult, describeStatus } from './node_prompt.ts';
import { runRepl, watchWith } from './repl.ts';
import { stopRequested } from './stop_signals.ts';

export async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', default: 'default' },
      replicas: { type: 'string', default: '3' },
      port: { type: 'string', default: '0' },
      'log-level': { type: 'string' },
      'http-address': { type: 'string' },
    },
    strict: true,
  });
  const replicas = Number(values.replicas);
  const port = Number(values.port);
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new RangeError(`--log-level ${logLevel} is not a level`);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`--port ${values.port} is not a port`);
  const started = performance.now();
  // Listening before the node starts, so that a stop asked for while it starts is not lost:
  // SIGTERM (and npm's shell dying) throughout; SIGINT until the prompt handles it itself.
  const stop = stopRequested(['SIGTERM']);
  const aborter = new AbortController();
  void stop.reason.then(() => aborter.abort());
  const sigintWhileStarting = (): void => aborter.abort();
  process.on('SIGINT', sigintWhileStarting);
  try {
    const node = await startNode({
      namespaces: [{ name: values.namespace, replicas }],
      clientApi: { port },
      ...(logLevel === undefined ? {} : { logLevel }),
      ...(values['http-address'] === undefined ? {} : { http: { address: values['http-address'] } }),
    });
    try {
      const address = node.clientApiAddress;
      if (address === null) throw new Error('the client API did not start');
      const remote = await connect([`${address.host}:${address.port}`]);
      try {
        const client = remote.client(values.namespace);
        const terminal = process.stdin.isTTY === true;
        const http = node.httpAddress;
        const banner = `haret: namespace ${values.namespace} on ${replicas} replicas, client API on ${address.host}:${address.port}${http === null ? '' : `, http on ${http.host}:${http.port}`}, ready in ${Math.round(performance.now() - started)} ms. In memory only: what you write is gone when this process stops. Type help; Ctrl-D stops.`;
        if (terminal) process.stdout.write(`${banner}\n`);
        else process.stderr.write(`${banner}\n`);
        // Synchronously before the prompt installs its own SIGINT handling.
        process.off('SIGINT', sigintWhileStarting);
        // Keeps SIGINT's default action (death, with no clean stop) away from the moment the
        // prompt ends until the stop's own handler is in place below: one Ctrl-C reaches us
        // twice (the terminal's, and npm's forward), and the second one used to land in that
        // gap and kill the process mid-stop. While the prompt runs, its handler acts.
        process.on('SIGINT', ignoreSigint);
        await runRepl({
          input: process.stdin,
          output: process.stdout,
          terminal,
          execute: async (op) => asCallResult(await client.raw(op)),
          watch: watchWith(client),
          coord: client,
          status: () => describeStatus(node),
          historyFile: terminal ? historyPath('cli') : null,
          signal: aborter.signal,
          endOnSigint: true,
        });
      } finally {
        await remote.close();
      }
    } finally {
      // One Ctrl-C can arrive twice: from the terminal to the whole process group, and
      // forwarded by npm (`npm start` execs us). A repeat within a moment is that same Ctrl-C
      // and must not cut the stop short; a later one (an impatient user) ends the process now.
      const stoppingSince = performance.now();
      const sigintWhileStopping = (): void => {
        if (performance.now() - stoppingSince > sigintRepeatMs) process.exit(130);
      };
      process.on('SIGINT', sigintWhileStopping);
      process.off('SIGINT', ignoreSigint);
      try {
        await node.stop();
      } finally {
        process.off('SIGINT', sigintWhileStopping);
      }
    }
    // Said last, so that whoever stopped us (a test, an operator reading a log) knows every worker has.
    process.stderr.write('haret: stopped\n');
  } finally {
    process.off('SIGINT', sigintWhileStarting);
    stop.dispose();
  }
}

/** A SIGINT listener that does nothing: while it is registered, SIGINT does not kill the process. */
function ignoreSigint(): void {}

/** A second SIGINT within this long of the stop is the first one delivered twice. */
const sigintRepeatMs = 2_000;

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`haret: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
