/**
 * The `haret` command (bin/haret.js loads it):
 *
 *   haret start [--config FILE] [--name N] [--client-address HOST:PORT] [--namespace NS]
 *               [--replicas R] [--log-level L]      a node serving the TCP client API
 *   haret cli ADDRESS [-n NS] [-e COMMAND]         the prompt against a node (or one command)
 *   haret --version | --help
 *
 * Exit codes: 0 success, 1 a failure (a command's error result, a lost node), 2 bad usage.
 */

import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from '../net/index.ts';
import { startNode } from '../node/index.ts';
import { parseCommand, helpText } from './commands.ts';
import { formatError, formatResult } from './format.ts';
import { asCallResult } from './node_prompt.ts';
import { ConfigError, resolveStartConfig } from './node_config.ts';
import { runRepl } from './repl.ts';

/** package.json: two levels up from the sources (src/cli), three from the compiled output (dist/src/cli). */
function readPackage(): { version: string } {
  for (const relative of ['../../package.json', '../../../package.json']) {
    const url = new URL(relative, import.meta.url);
    if (existsSync(url)) return JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  }
  return { version: 'unknown' };
}

const pkg = readPackage();

const usage = `haret ${pkg.version}: a strongly consistent coordination service

usage:
  haret start [--config FILE] [--name NAME] [--client-address HOST:PORT]
              [--namespace NS] [--replicas N] [--log-level LEVEL]
  haret cli ADDRESS [--namespace NS] [-e COMMAND]
  haret --version | --help

Not yet available: haret admin, cluster links (see README.md, "What does not work yet").`;

class UsageError extends Error {}

async function start(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: 'string' },
      name: { type: 'string' },
      'client-address': { type: 'string' },
      'cluster-address': { type: 'string' },
      'admin-address': { type: 'string' },
      'data-dir': { type: 'string' },
      namespace: { type: 'string' },
      replicas: { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  });
  const options = resolveStartConfig({
    config: values.config,
    name: values.name,
    clientAddress: values['client-address'],
    clusterAddress: values['cluster-address'],
    adminAddress: values['admin-address'],
    dataDir: values['data-dir'],
    namespace: values.namespace,
    replicas: values.replicas,
    logLevel: values['log-level'],
  });
  const node = await startNode(options);
  const address = node.clientApiAddress;
  process.stdout.write(`haret: node ${options.name ?? 'haret'} serving ${node.namespaces.join(', ')} on ${address?.host}:${address?.port}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await node.stop();
  return 0;
}

async function cli(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { namespace: { type: 'string', short: 'n', default: 'default' }, e: { type: 'string', short: 'e' } },
    allowPositionals: true,
    strict: true,
  });
  const [address] = positionals;
  if (address === undefined || positionals.length > 1) throw new UsageError('haret cli takes one ADDRESS (host:port)');
  const remote = await connect([address]);
  try {
    const client = remote.client(values.namespace);
    if (values.e !== undefined) {
      const parsed = parseCommand(values.e);
      switch (parsed.type) {
        case 'op': {
          const result = asCallResult(await client.raw(parsed.op));
          process.stdout.write(`${formatResult(result)}\n`);
          return result.type === 'done' && result.outcome.type !== 'error' ? 0 : 1;
        }
        case 'help':
          process.stdout.write(`${helpText(parsed.topic)}\n`);
          return 0;
        case 'error':
          process.stderr.write(`error: ${parsed.message}\n`);
          return 2;
        default:
          return 0;
      }
    }
    await runRepl({
      input: process.stdin,
      output: process.stdout,
      terminal: process.stdin.isTTY === true,
      execute: async (op) => asCallResult(await client.raw(op)),
      status: async () => `connected to ${remote.node} at ${address}; namespaces: ${remote.namespaces.join(', ')}`,
    });
    return 0;
  } finally {
    await remote.close();
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case '--version':
      case '-v':
        process.stdout.write(`${pkg.version}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write(`${usage}\n`);
        return 0;
      case 'start':
        return await start(rest);
      case 'cli':
        return await cli(rest);
      default:
        process.stderr.write(`haret: unknown or not yet available command: ${command}\n\n${usage}\n`);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true)) {
      process.stderr.write(`haret: ${error.message}\n\n${usage}\n`);
      return 2;
    }
    process.stderr.write(`haret: ${formatError(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
