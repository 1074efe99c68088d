/**
 * `haret start`: a node serving the TCP client API (and, when asked, the admin API, cluster
 * links and HTTP), until SIGINT or SIGTERM, which stop it cleanly (every worker ended, exit
 * status 0), also under npm (src/cli/stop_signals.ts).
 */

import { startNode } from '../node/index.ts';
import { parseCommandLine, UsageError } from './args.ts';
import { resolveStartConfig } from './node_config.ts';
import { stopRequested } from './stop_signals.ts';

export const startUsage = `usage: haret start [options]

A node serving the TCP client API, until SIGINT or SIGTERM (exit status 0 once every worker
has stopped). Options override the config file's keys.

options:
  --config FILE              a TOML file (keys as the options, with _: client_address, ...)
  --name NAME                the node's name (default haret)
  --client-address ADDR      the client API (default 127.0.0.1:7878)
  --admin-address ADDR       also serve the admin API (haret admin)
  --cluster-address ADDR     links to other nodes (a cluster member)
  --http-address ADDR        /metrics /healthz /readyz /status.json and the status page
  --data-dir DIR             durable replicas and the cluster record in DIR
  --no-durable               replicas in memory even with --data-dir
  --worker-layout LAYOUT     actor_per_worker (a worker per replica; the default in memory),
                             shared, single (every replica in one worker: faster on few
                             cores; the default with --data-dir), or main_thread (every
                             replica beside the sockets: the lowest latency, one core; see
                             README)
  --restore NS=FILE          seed namespace NS from a backup (repeatable; needs --data-dir)
  --join ADDR                join the cluster of the node at cluster address ADDR (repeatable)
  --no-local-namespace       no namespace of the node's own (a member hosting cluster namespaces)
  --namespace NS             the node's own namespace (default default)
  --replicas N               its replicas (default 3)
  --log-level LEVEL          silent, error, warn, info, debug or trace
  --tls-cert FILE --tls-key FILE [--tls-ca FILE]
                             TLS on every port; with --tls-ca, mutual TLS between members
  --cluster-secret-file FILE members authenticate with a shared secret instead
  --auth-token-file FILE     clients must present this token
  --admin-token-file FILE    the admin API (and HTTP, as a Bearer token) needs this token
  -h, --help                 this help

Addresses: host:port, or :port (and port) for 127.0.0.1.
Exit status: 0 after a clean stop, 1 when the node failed, 2 for a usage or config error.`;

const spec = {
  config: { type: 'string' },
  name: { type: 'string' },
  'client-address': { type: 'string' },
  'cluster-address': { type: 'string' },
  'admin-address': { type: 'string' },
  'http-address': { type: 'string' },
  'data-dir': { type: 'string' },
  'no-durable': { type: 'boolean' },
  'worker-layout': { type: 'string' },
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
} as const;

export async function start(args: readonly string[]): Promise<number> {
  const { values, positionals, help } = parseCommandLine('haret start', args, spec);
  if (help) {
    process.stdout.write(`${startUsage}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError('haret start', `unexpected argument ${positionals[0]} (options start with --)`);
  const options = resolveStartConfig({
    config: values.config,
    name: values.name,
    clientAddress: values['client-address'],
    clusterAddress: values['cluster-address'],
    adminAddress: values['admin-address'],
    httpAddress: values['http-address'],
    dataDir: values['data-dir'],
    noDurable: values['no-durable'],
    workerLayout: values['worker-layout'],
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
  // Listening before the node starts: a stop asked for while it starts is honoured once it has.
  const stop = stopRequested();
  try {
    const node = await startNode(options);
    try {
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
        if (options.workerLayout === 'single') {
          process.stderr.write('haret: --worker-layout single in memory: every replica of this node runs in one worker, so a failure of that worker loses its namespaces (durable nodes come back from disk)\n');
        } else if (options.workerLayout === 'main_thread') {
          process.stderr.write("haret: --worker-layout main_thread in memory: every replica of this node runs on the process's main thread, beside the sockets, on one core; the process's end loses its namespaces unless other nodes hold a majority of their replicas\n");
        }
      }
      const reason = await stop.reason;
      process.stderr.write(`haret: stopping (${reason})\n`);
    } finally {
      await node.stop();
    }
    process.stderr.write('haret: stopped\n');
    return 0;
  } finally {
    stop.dispose();
  }
}
