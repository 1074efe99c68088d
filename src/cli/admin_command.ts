/**
 * `haret admin`: the admin API of a node, one command per `-e` (in order), line by line from a
 * pipe, or at a prompt with history and completion. Exit status 1 when any command failed.
 */

import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AdminClient, type AdminOpenOptions } from '../net/admin_client.ts';
import { assertNever } from '../base/assert.ts';
import { adminCommandNames, adminHelp, adminValueJson, adminValueLines, formatAdminAnswer, parseAdminCommand, type AdminLine, type SnapshotSave } from './admin_lines.ts';
import { parseCommandLine, UsageError } from './args.ts';
import { credentialOptions, credentialsOf, outputOption, outputModeOf } from './common_options.ts';
import { endpointsOf } from './endpoints.ts';
import { historyLinesMax, historyPath, loadHistory, saveHistory } from './history.ts';
import type { OutputMode } from './output.ts';

export const adminUsage = `usage: haret admin ADMIN_ADDRESS [options]
       haret admin --endpoints A,B,C [options]

The admin API of a node (haret start --admin-address): one command per -e, in order; else
line by line from standard input, or a prompt at a terminal.

options:
  -e, --execute COMMAND   run COMMAND (repeatable; they run in order)
  --endpoints A,B,C       admin addresses to try in order (instead of ADMIN_ADDRESS)
  -o, --output FORM       human (default), json (one object per line) or value
  --token-file FILE       the node's admin token (its --admin-token-file)
  --tls-ca FILE           the CA that signed the node's certificate (TLS)
  -h, --help              this help

Addresses: host:port, or :port (and port) for 127.0.0.1.
Exit status: 0 when every command succeeded, 1 when one failed (its result goes to standard
error), 2 for a usage error.

${adminHelp}`;

const spec = {
  execute: { type: 'string', short: 'e', multiple: true },
  endpoints: { type: 'string' },
  ...outputOption,
  ...credentialOptions,
} as const;

type Streams = { readonly out: NodeJS.WritableStream; readonly err: NodeJS.WritableStream };

/** A command's outcome in every form, printed by `report`. */
type Outcome =
  | { readonly ok: true; readonly human: string; readonly value: unknown }
  | { readonly ok: false; readonly human: string; readonly code: string; readonly message: string };

function report(mode: OutputMode, streams: Streams, command: string, outcome: Outcome): void {
  const stream = outcome.ok ? streams.out : streams.err;
  switch (mode) {
    case 'human':
      stream.write(`${outcome.human}\n`);
      return;
    case 'json':
      stream.write(`${JSON.stringify(outcome.ok ? { ok: true, command, result: adminValueJson(outcome.value) } : { ok: false, command, error: { code: outcome.code, message: outcome.message } })}\n`);
      return;
    case 'value':
      if (outcome.ok) for (const line of adminValueLines(outcome.value)) stream.write(`${line}\n`);
      else stream.write(`${outcome.human}\n`);
      return;
    default:
      assertNever(mode, 'output mode');
  }
}

/** Opens the first admin address that answers, in order. */
async function openAny(addresses: readonly string[], options: AdminOpenOptions): Promise<AdminClient> {
  const failures: string[] = [];
  for (const address of addresses) {
    try {
      return await AdminClient.open(address, options);
    } catch (error) {
      failures.push(`${address}: ${error instanceof Error ? error.message : String(error)}`);
      // A refused token is the same at every address of the cluster.
      if (error instanceof Error && /unauthenticated/.test(error.message)) break;
    }
  }
  throw new Error(addresses.length === 1 ? (failures[0] ?? 'no address') : `no admin API answered: ${failures.join('; ')}`);
}

/** Runs one parsed line; 'quit' ends the session. */
async function runLine(client: AdminClient, line: string, parsed: AdminLine, mode: OutputMode, streams: Streams): Promise<boolean | 'quit'> {
  const command = line.trim();
  switch (parsed.type) {
    case 'empty':
      return true;
    case 'quit':
      return 'quit';
    case 'help':
      report(mode, streams, command, { ok: true, human: adminHelp, value: adminHelp });
      return true;
    case 'error':
      report(mode, streams, command, { ok: false, human: `error: ${parsed.message}`, code: 'usage', message: parsed.message });
      return false;
    case 'save': {
      const outcome = await saveSnapshot(client, parsed.save);
      report(mode, streams, command, outcome);
      return outcome.ok;
    }
    case 'query': {
      const answer = await client.request(parsed.query);
      const human = formatAdminAnswer(parsed.query, answer);
      report(mode, streams, command, answer.type === 'ok' ? { ok: true, human, value: answer.value } : { ok: false, human, code: answer.code, message: answer.message });
      return answer.type === 'ok';
    }
    default:
      return assertNever(parsed, 'admin line');
  }
}

/** Asks for a backup and writes it to the file (temporary file, fsync, rename: never half a backup under its name). */
async function saveSnapshot(client: AdminClient, command: SnapshotSave): Promise<Outcome> {
  const answer = await client.request({ type: 'snapshot', ns: command.ns });
  if (answer.type === 'error') return { ok: false, human: formatAdminAnswer({ type: 'snapshot', ns: command.ns }, answer), code: answer.code, message: answer.message };
  const value = answer.value as { op?: unknown; file?: unknown };
  if (!(value.file instanceof Uint8Array) || typeof value.op !== 'number') {
    const message = 'the node answered something that is not a backup';
    return { ok: false, human: `error: ${message}`, code: 'malformed', message };
  }
  const tmp = `${command.file}.tmp-${process.pid}`;
  writeFileSync(tmp, value.file, { flag: 'w' });
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, command.file);
  const human = `saved ${command.ns} at op ${value.op} to ${command.file} (${value.file.length} bytes)`;
  return { ok: true, human, value: { ns: command.ns, op: value.op, file: command.file, bytes: value.file.length } };
}

/** Lines from standard input: a prompt with history and completion at a terminal. */
async function runLines(client: AdminClient, mode: OutputMode): Promise<number> {
  const terminal = process.stdin.isTTY === true;
  const streams: Streams = { out: process.stdout, err: terminal ? process.stdout : process.stderr };
  const historyFile = terminal ? historyPath('admin') : null;
  let history: string[] = [];
  if (historyFile !== null) {
    try {
      history = loadHistory(historyFile);
    } catch {
      // No history this time; the prompt works without it.
    }
  }
  const lines = terminal
    ? createInterface({
        input: process.stdin,
        output: process.stdout,
        prompt: 'haret admin> ',
        terminal: true,
        history,
        historySize: historyLinesMax,
        removeHistoryDuplicates: true,
        completer: (line: string): [string[], string] => {
          const word = line.trimStart();
          if (/\s/.test(word)) return [[], line];
          const hits = adminCommandNames.filter((name) => name.startsWith(word.toLowerCase()));
          return [hits.length > 0 ? hits : [...adminCommandNames], word];
        },
      })
    : createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
  if (historyFile !== null) {
    lines.on('history', (newestFirst: string[]) => {
      try {
        saveHistory(historyFile, newestFirst);
      } catch {
        // A history that cannot be written is not worth interrupting the operator for.
      }
    });
  }
  let failures = 0;
  try {
    if (terminal) lines.prompt();
    for await (const line of lines) {
      const outcome = await runLine(client, line, parseAdminCommand(line), mode, streams);
      if (outcome === 'quit') break;
      if (!outcome) failures += 1;
      if (terminal) lines.prompt();
    }
  } finally {
    lines.close();
  }
  return failures > 0 && !terminal ? 1 : 0;
}

export async function admin(args: readonly string[]): Promise<number> {
  const name = 'haret admin';
  const { values, positionals, help } = parseCommandLine(name, args, spec);
  if (help) {
    process.stdout.write(`${adminUsage}\n`);
    return 0;
  }
  const addresses = endpointsOf(name, positionals, values.endpoints);
  const mode = outputModeOf(name, values.output);
  const commands = (values.execute ?? []).map((line) => ({ line, parsed: parseAdminCommand(line) }));
  for (const { line, parsed } of commands) {
    if (parsed.type === 'error') throw new UsageError(name, `-e ${JSON.stringify(line)}: ${parsed.message}`, `Try '${name} --help' for the commands.`);
  }
  const client = await openAny(addresses, credentialsOf(values));
  try {
    if (commands.length === 0) return await runLines(client, mode);
    let failed = false;
    for (const { line, parsed } of commands) {
      const outcome = await runLine(client, line, parsed, mode, { out: process.stdout, err: process.stderr });
      if (outcome === 'quit') break;
      if (!outcome) failed = true;
    }
    return failed ? 1 : 0;
  } finally {
    client.close();
  }
}
