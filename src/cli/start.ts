/**
 * `npm start`: a node with a default 3-replica namespace in this process, and an interactive
 * prompt on stdin for every tree operation (line by line when stdin is not a terminal). Each
 * result prints with its versions, view and the op that committed it. Ctrl-D (end of input) or
 * `quit` stops every worker cleanly and the process exits by itself.
 *
 * Flags: --namespace NAME (default `default`), --replicas N (default 3), --log-level LEVEL.
 */

import { parseArgs } from 'node:util';
import type { ProxyOutcome } from '../../actors/messages.ts';
import type { CallResult } from '../client/io.ts';
import { startNode, type HaretNode } from '../node/index.ts';
import { isLogLevel } from '../../runtime/logger.ts';
import { runRepl } from './repl.ts';

function asCallResult(outcome: ProxyOutcome): CallResult {
  switch (outcome.type) {
    case 'unknown_namespace':
      return { type: 'rejected', outcome: { type: 'error', error: { code: 'invalid_request', reason: `no namespace ${outcome.ns}` } } };
    case 'invalid_call':
      return { type: 'rejected', outcome: { type: 'error', error: { code: 'invalid_request', reason: outcome.reason } } };
    default:
      return outcome;
  }
}

async function describeStatus(node: HaretNode): Promise<string> {
  const { actors } = await node.status();
  return actors
    .map((actor) => {
      const position = actor.view === null ? '' : ` view ${actor.view} op ${actor.op} commit ${actor.commit}`;
      const role = actor.role ?? '-';
      const restarts = actor.restarts > 0 ? ` restarts ${actor.restarts}` : '';
      const failure = actor.failure === null ? '' : ` FAILED: ${actor.failure}`;
      return `${actor.actor.padEnd(14)} ${actor.state.padEnd(10)} ${role.padEnd(8)}${actor.status === null ? '' : ` ${actor.status}`}${position}${restarts}${failure}`;
    })
    .join('\n');
}

export async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', default: 'default' },
      replicas: { type: 'string', default: '3' },
      'log-level': { type: 'string' },
    },
    strict: true,
  });
  const replicas = Number(values.replicas);
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new RangeError(`--log-level ${logLevel} is not a level`);
  const started = performance.now();
  const node = await startNode({
    namespaces: [{ name: values.namespace, replicas }],
    ...(logLevel === undefined ? {} : { logLevel }),
  });
  const client = node.client(values.namespace);
  const terminal = process.stdin.isTTY === true;
  const banner = `haret: namespace ${values.namespace} on ${replicas} replicas, ready in ${Math.round(performance.now() - started)} ms. Type help; Ctrl-D stops.`;
  if (terminal) process.stdout.write(`${banner}\n`);
  else process.stderr.write(`${banner}\n`);
  try {
    await runRepl({
      input: process.stdin,
      output: process.stdout,
      terminal,
      execute: async (op) => asCallResult(await client.raw(op)),
      status: () => describeStatus(node),
    });
  } finally {
    await node.stop();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`haret: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
