/**
 * The `haret` command (bin/haret.js loads it):
 *
 *   haret start [--config FILE] [--name N] [--client-address HOST:PORT] [--namespace NS]
 *               [--replicas R] [--log-level L] [--admin-address A] [--cluster-address A]
 *               [--http-address A]
 *               [--data-dir DIR [--no-durable]] [--join A]... [--no-local-namespace]
 *                                                  a node serving the TCP client API
 *   haret cli ADDRESS [-n NS] [-e COMMAND]         the prompt against a node (or one command)
 *   haret --version | --help
 *
 * Exit codes: 0 success, 1 a failure (a command's error result, a lost node), 2 bad usage.
 */

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { AdminAnswer } from '../api/admin_wire.ts';
import { assertNever } from '../base/assert.ts';
import { AdminClient, type AdminQuery } from '../net/admin_client.ts';
import { connect } from '../net/index.ts';
import { startNode } from '../node/index.ts';
import { leaseOp, parseCommand, helpText } from './commands.ts';
import { formatError, formatKeepAlive, formatResult, formatWatchError } from './format.ts';
import { asCallResult, formatActorLine, type ActorLine } from './node_prompt.ts';
import { ConfigError, readPemFile, readTokenFile, resolveStartConfig } from './node_config.ts';
import { holdElection, holdLock, oneShotLeaseRefusal, printWatch, runRepl, showLeader, watchWith } from './repl.ts';

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
              [--admin-address HOST:PORT] [--cluster-address HOST:PORT]
              [--http-address HOST:PORT]   (/metrics /healthz /readyz /status.json)
              [--data-dir DIR [--no-durable] [--restore NS=FILE]...]
              [--join HOST:PORT]... [--no-local-namespace]
              [--namespace NS] [--replicas N] [--log-level LEVEL]
              [--tls-cert FILE --tls-key FILE [--tls-ca FILE]] [--cluster-secret-file FILE]
              [--auth-token-file FILE] [--admin-token-file FILE]
  haret cli ADDRESS [--namespace NS] [--token-file FILE] [--tls-ca FILE] [-e COMMAND]
  haret admin ADMIN_ADDRESS [--token-file FILE] [--tls-ca FILE] [-e COMMAND]
                                           status | health | namespaces | primary NS | replica ACTOR
                                           | config | metrics | cluster join ADDR
                                           | cluster status | namespace create NS
                                           | snapshot save NS FILE | help
  haret --version | --help`;

class UsageError extends Error {}

/** What `haret cli` and `haret admin` present to a node: a token, and the CA its TLS certificate is signed by. */
const credentialFlags = { 'token-file': { type: 'string' }, 'tls-ca': { type: 'string' } } as const;

function credentialsOf(values: { readonly 'token-file'?: string | undefined; readonly 'tls-ca'?: string | undefined }): { token?: string; tls?: { ca: string } } {
  return {
    ...(values['token-file'] === undefined ? {} : { token: readTokenFile(values['token-file'], '--token-file') }),
    ...(values['tls-ca'] === undefined ? {} : { tls: { ca: readPemFile(values['tls-ca'], '--tls-ca') } }),
  };
}

async function start(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: 'string' },
      name: { type: 'string' },
      'client-address': { type: 'string' },
      'cluster-address': { type: 'string' },
      'admin-address': { type: 'string' },
      'http-address': { type: 'string' },
      'data-dir': { type: 'string' },
      'no-durable': { type: 'boolean' },
      restore: { type: 'string', multiple: true },
      join: { type: 'string', multiple: true },
      'no-local-namespace': { type: 'boolean' },
      namespace: { type: 'string' },
      replicas: { type: 'string' },
      'log-level': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'cluster-secret-file': { type: 'string' },
      'auth-token-file': { type: 'string' },
      'admin-token-file': { type: 'string' },
    },
    strict: true,
  });
  const options = resolveStartConfig({
    config: values.config,
    name: values.name,
    clientAddress: values['client-address'],
    clusterAddress: values['cluster-address'],
    adminAddress: values['admin-address'],
    httpAddress: values['http-address'],
    dataDir: values['data-dir'],
    noDurable: values['no-durable'],
    restore: values.restore,
    join: values.join,
    noLocalNamespace: values['no-local-namespace'],
    namespace: values.namespace,
    replicas: values.replicas,
    logLevel: values['log-level'],
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    tlsCa: values['tls-ca'],
    clusterSecretFile: values['cluster-secret-file'],
    authTokenFile: values['auth-token-file'],
    adminTokenFile: values['admin-token-file'],
  });
  const node = await startNode(options);
  const address = node.clientApiAddress;
  const admin = node.adminApiAddress;
  const cluster = node.cluster;
  process.stdout.write(
    `haret: node ${options.name ?? 'haret'} serving ${node.namespaces.join(', ') || 'no namespace yet'} on ${address?.host}:${address?.port}` +
      `${admin === null ? '' : `, admin on ${admin.host}:${admin.port}`}${cluster === null ? '' : `, cluster on ${cluster.address}`}\n`,
  );
  const http = node.httpAddress;
  // A line of its own, so that scripts reading the line above keep working.
  if (http !== null) process.stdout.write(`haret: http on ${http.host}:${http.port} (/metrics /healthz /readyz /status.json)\n`);
  // What survives a crash, said where an operator looks first (README "Durability").
  if (options.dataDir !== undefined && options.durable !== false) {
    process.stderr.write(`haret: durable: replicas keep their log and checkpoints in ${options.dataDir}; every acknowledged write survives a crash of every node\n`);
  } else {
    process.stderr.write('haret: in memory only (no --data-dir, or --no-durable): a namespace survives while a majority of its replicas runs; stopping every replica loses it\n');
  }
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
    options: { namespace: { type: 'string', short: 'n', default: 'default' }, e: { type: 'string', short: 'e' }, ...credentialFlags },
    allowPositionals: true,
    strict: true,
  });
  const [address] = positionals;
  if (address === undefined || positionals.length > 1) throw new UsageError('haret cli takes one ADDRESS (host:port)');
  const remote = await connect([address], credentialsOf(values));
  try {
    const client = remote.client(values.namespace);
    if (values.e !== undefined) {
      const parsed = parseCommand(values.e);
      const print = (line: string): void => {
        process.stdout.write(`${line}\n`);
      };
      /** A command that runs until Ctrl-C (exit 0) or until it fails (exit 1). */
      const untilSigint = async (task: (stopped: Promise<void>) => Promise<boolean>): Promise<number> => {
        let stop: () => void = () => undefined;
        const stopped = new Promise<void>((resolve) => (stop = resolve));
        process.on('SIGINT', stop);
        try {
          return (await task(stopped)) ? 0 : 1;
        } finally {
          process.off('SIGINT', stop);
        }
      };
      switch (parsed.type) {
        case 'op': {
          const result = asCallResult(await client.raw(parsed.op));
          print(formatResult(result));
          return result.type === 'done' && result.outcome.type !== 'error' ? 0 : 1;
        }
        case 'watch':
          return await untilSigint(async (stopped) => {
            try {
              return await printWatch(parsed.watch, watchWith(client)(parsed.watch), print, stopped);
            } catch (error) {
              print(formatWatchError(error));
              return false;
            }
          });
        case 'lease': {
          // A lease outlives no process: grant and list make sense only in the prompt.
          const refusal = oneShotLeaseRefusal(parsed.lease);
          const op = leaseOp(parsed.lease);
          if (refusal !== null || op === null) {
            process.stderr.write(`error: ${refusal ?? 'not a one-shot command'}\n`);
            return 2;
          }
          const result = asCallResult(await client.raw(op));
          print(parsed.lease.action === 'keepalive' ? formatKeepAlive(parsed.lease.ids, result) : formatResult(result));
          return result.type === 'done' && result.outcome.type !== 'error' ? 0 : 1;
        }
        case 'lock':
          return await untilSigint((stopped) => holdLock(client, parsed.lock, print, stopped));
        case 'elect':
          return await untilSigint((stopped) => holdElection(client, parsed.elect, print, stopped));
        case 'leader':
          return await untilSigint((stopped) => showLeader(client, parsed.leader, print, stopped));
        case 'help':
          print(helpText(parsed.topic));
          return 0;
        case 'error':
          process.stderr.write(`error: ${parsed.message}\n`);
          return 2;
        case 'status':
        case 'quit':
        case 'empty':
          return 0;
        default:
          return assertNever(parsed, 'parsed line');
      }
    }
    await runRepl({
      input: process.stdin,
      output: process.stdout,
      terminal: process.stdin.isTTY === true,
      execute: async (op) => asCallResult(await client.raw(op)),
      watch: watchWith(client),
      coord: client,
      status: async () => `connected to ${remote.node} at ${address}; namespaces: ${remote.namespaces.join(', ')}`,
    });
    return 0;
  } finally {
    await remote.close();
  }
}

const adminHelp = `admin commands:
  status              every actor: worker state, restarts, role, status, view, op, commit
  health              whether the node serves, and one line per problem (a failed actor, a
                      failing disk, a namespace that cannot recover)
  namespaces          the namespaces this node serves
  primary NS          the replica that is primary of NS
  replica ACTOR       a replica's protocol state (e.g. replica default/r0)
  config              the node's resolved options
  metrics             per worker: heap, transport, event loop, mailboxes
  cluster join ADDR   join the cluster of the node whose cluster address is ADDR
  cluster status      members (with their addresses and link state) and namespaces
  namespace create NS [REPLICAS] [NODE,NODE,...]
                      a namespace of REPLICAS (default 3) replicas across the members
  namespace list      the same as namespaces
  snapshot save NS FILE
                      a backup of NS (its committed state, checksummed) written to FILE here;
                      haret start --restore NS=FILE seeds a new namespace from it`;

/** `snapshot save NS FILE`: the query, and where the client writes the answer. */
type SnapshotSave = { readonly type: 'snapshot'; readonly ns: string; readonly file: string };

/** One admin command line to a query, or a usage error. */
function parseAdminCommand(line: string): AdminQuery | SnapshotSave | 'help' | 'quit' | null | string {
  const words = line.trim().split(/\s+/).filter((word) => word.length > 0);
  const [command, arg, third, fourth] = words;
  switch (command) {
    case undefined:
      return null;
    case 'help':
    case '?':
      return 'help';
    case 'quit':
    case 'exit':
      return 'quit';
    case 'status':
    case 'health':
    case 'namespaces':
    case 'config':
    case 'metrics':
      return { type: command };
    case 'primary':
      return arg === undefined ? 'usage: primary NS' : { type: 'primary', ns: arg };
    case 'replica':
      return arg === undefined ? 'usage: replica ACTOR' : { type: 'replica', actor: arg };
    case 'cluster':
      if (arg === 'status' && third === undefined) return { type: 'cluster_status' };
      if (arg === 'join' && third !== undefined && fourth === undefined) return { type: 'cluster_join', address: third };
      return 'usage: cluster join ADDR | cluster status';
    case 'snapshot':
      if (arg !== 'save' || third === undefined || fourth === undefined || words.length > 4) return 'usage: snapshot save NS FILE';
      return { type: 'snapshot', ns: third, file: fourth };
    case 'namespace': {
      if (arg === 'list' && third === undefined) return { type: 'namespaces' };
      if (arg !== 'create' || third === undefined || words.length > 5) return 'usage: namespace create NS [REPLICAS] [NODE,NODE,...] | namespace list';
      const replicas = fourth === undefined || fourth.includes(',') || !/^\d+$/.test(fourth) ? 3 : Number(fourth);
      const nodeList = words.slice(4).join(',') || (fourth !== undefined && !/^\d+$/.test(fourth) ? fourth : '');
      return { type: 'namespace_create', ns: third, replicas, nodes: nodeList.split(',').filter((node) => node.length > 0) };
    }
    default:
      return `unknown admin command ${command}; try help`;
  }
}

function formatAdminAnswer(query: AdminQuery, answer: AdminAnswer): string {
  if (answer.type === 'error') return `error: ${answer.message} (${answer.code})`;
  if (query.type === 'health' && typeof answer.value === 'object' && answer.value !== null) {
    const health = answer.value as { serving?: unknown; problems?: unknown };
    const problems = Array.isArray(health.problems) ? health.problems.map((line) => `  - ${String(line)}`) : [];
    return [health.serving === true ? 'serving' : 'not serving', ...problems].join('\n');
  }
  if (query.type === 'status' && Array.isArray(answer.value)) {
    return (answer.value as ActorLine[]).map(formatActorLine).join('\n');
  }
  return JSON.stringify(answer.value, null, 2);
}

async function admin(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], options: { e: { type: 'string', short: 'e' }, ...credentialFlags }, allowPositionals: true, strict: true });
  const [address] = positionals;
  if (address === undefined || positionals.length > 1) throw new UsageError('haret admin takes one ADMIN_ADDRESS (host:port)');
  const client = await AdminClient.open(address, credentialsOf(values));
  const run = async (line: string, out: NodeJS.WritableStream): Promise<number | 'quit'> => {
    const parsed = parseAdminCommand(line);
    if (parsed === null) return 0;
    if (parsed === 'quit') return 'quit';
    if (parsed === 'help') {
      out.write(`${adminHelp}\n`);
      return 0;
    }
    if (typeof parsed === 'string') {
      out.write(`error: ${parsed}\n`);
      return 2;
    }
    if ('file' in parsed) return saveSnapshot(client, parsed, out);
    const answer = await client.request(parsed);
    out.write(`${formatAdminAnswer(parsed, answer)}\n`);
    return answer.type === 'ok' ? 0 : 1;
  };
  try {
    if (values.e !== undefined) {
      const code = await run(values.e, process.stdout);
      return code === 'quit' ? 0 : code;
    }
    const lines = createInterface({ input: process.stdin, ...(process.stdin.isTTY === true ? { output: process.stdout, prompt: 'haret admin> ' } : {}), terminal: process.stdin.isTTY === true });
    if (process.stdin.isTTY === true) lines.prompt();
    for await (const line of lines) {
      if ((await run(line, process.stdout)) === 'quit') break;
      if (process.stdin.isTTY === true) lines.prompt();
    }
    lines.close();
    return 0;
  } finally {
    client.close();
  }
}

/** Asks for a backup and writes it to the file (temporary file, fsync, rename: never half a backup under its name). */
async function saveSnapshot(client: AdminClient, command: SnapshotSave, out: NodeJS.WritableStream): Promise<number> {
  const answer = await client.request({ type: 'snapshot', ns: command.ns });
  if (answer.type === 'error') {
    out.write(`${formatAdminAnswer({ type: 'snapshot', ns: command.ns }, answer)}\n`);
    return 1;
  }
  const value = answer.value as { op?: unknown; file?: unknown };
  if (!(value.file instanceof Uint8Array) || typeof value.op !== 'number') {
    out.write('error: the node answered something that is not a backup\n');
    return 1;
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
  out.write(`saved ${command.ns} at op ${value.op} to ${command.file} (${value.file.length} bytes)\n`);
  return 0;
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
      case 'admin':
        return await admin(rest);
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
