/**
 * `haret cli`: the prompt's commands against a node over TCP, from `-e` (each in order), line by
 * line from a pipe, or at a prompt (history across sessions, completion of commands and
 * paths). Exit status 1 when any command failed, 2 for a usage error (a bad `-e` line included:
 * then nothing runs).
 */

import { connect } from '../net/index.ts';
import { parseCommandLine, UsageError } from './args.ts';
import { parseCommand, type ParsedLine } from './commands.ts';
import { credentialOptions, credentialsOf, outputModeOf, outputOption } from './common_options.ts';
import { endpointsOf } from './endpoints.ts';
import { historyPath } from './history.ts';
import { asCallResult } from './node_prompt.ts';
import { oneShotLeaseRefusal } from './coordination.ts';
import { createPrinter } from './output.ts';
import { runRepl } from './repl.ts';
import { CommandSession } from './session.ts';
import { watchWith } from './watching.ts';

export const cliUsage = `usage: haret cli ADDRESS [options]
       haret cli --endpoints A,B,C [options]

The prompt's commands against a node's client API: one command per -e, in order; else line by
line from standard input, or a prompt at a terminal (history in ~/.haret_history, or
HARET_HISTORY_FILE; TAB completes commands and paths).

options:
  -n, --namespace NS      the namespace (default: default)
  -e, --execute COMMAND   run COMMAND (repeatable; they run in order, each even if one failed)
  --endpoints A,B,C       node addresses, tried in order as connect() does (instead of ADDRESS)
  -o, --output FORM       human (default), json or value:
                            json: one object per result, {"ok":..., "command":..., ...};
                                  bytes (values, members) are base64
                            value: only the value (a blob's bytes, a count, a version, ...)
  --token-file FILE       the node's client token (its --auth-token-file)
  --tls-ca FILE           the CA that signed the node's certificate (TLS)
  -h, --help              this help

Addresses: host:port, or :port (and port) for 127.0.0.1.
Results go to standard output, failures to standard error. Exit status: 0 when every command
succeeded, 1 when one failed, 2 for a usage error. watch, lock, elect and leader --watch run
until Ctrl-C (SIGINT), then the next command runs.
Commands: haret cli ADDRESS -e help.`;

const spec = {
  namespace: { type: 'string', short: 'n' },
  execute: { type: 'string', short: 'e', multiple: true },
  endpoints: { type: 'string' },
  ...outputOption,
  ...credentialOptions,
} as const;

/** Each -e line parsed, refusing (before anything runs) what cannot run as a one-shot command. */
function parseExecuteLines(name: string, lines: readonly string[]): { line: string; parsed: ParsedLine }[] {
  return lines.map((line) => {
    const parsed = parseCommand(line);
    const refusal = parsed.type === 'error' ? parsed.message : parsed.type === 'lease' ? oneShotLeaseRefusal(parsed.lease) : null;
    if (refusal !== null) throw new UsageError(name, `-e ${JSON.stringify(line)}: ${refusal}`, `Try '${name} ADDRESS -e help' for the commands.`);
    return { line, parsed };
  });
}

export async function cli(args: readonly string[]): Promise<number> {
  const name = 'haret cli';
  const { values, positionals, help } = parseCommandLine(name, args, spec);
  if (help) {
    process.stdout.write(`${cliUsage}\n`);
    return 0;
  }
  const addresses = endpointsOf(name, positionals, values.endpoints);
  const mode = outputModeOf(name, values.output);
  const commands = parseExecuteLines(name, values.execute ?? []);
  const namespace = values.namespace ?? 'default';
  const remote = await connect(addresses, credentialsOf(values));
  try {
    const client = remote.client(namespace);
    const execute = async (op: Parameters<typeof client.raw>[0]) => asCallResult(await client.raw(op));
    const where = addresses.length === 1 ? `at ${addresses[0]}` : `through ${addresses.join(', ')}`;
    const status = async (): Promise<string> => `connected to ${remote.node} ${where}; namespaces: ${remote.namespaces.join(', ')}`;
    if (commands.length > 0) {
      const printer = createPrinter(mode, { out: process.stdout, err: process.stderr });
      const session = new CommandSession({ execute, status, watch: watchWith(client), coord: client, printer });
      try {
        for (const { line, parsed } of commands) {
          if (!(await session.runParsed(line, parsed))) break;
        }
      } finally {
        await session.close();
      }
      return printer.failures > 0 ? 1 : 0;
    }
    const terminal = process.stdin.isTTY === true;
    const summary = await runRepl({
      input: process.stdin,
      output: process.stdout,
      errorOutput: terminal ? process.stdout : process.stderr,
      mode,
      terminal,
      execute,
      watch: watchWith(client),
      coord: client,
      status,
      historyFile: terminal ? historyPath('cli') : null,
    });
    // At a terminal the user saw each failure; from a pipe the status is the script's verdict.
    return summary.failures > 0 && !terminal ? 1 : 0;
  } finally {
    await remote.close();
  }
}
