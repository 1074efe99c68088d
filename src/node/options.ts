/**
 * Options of `startNode`, with defaults and one validation pass (DESIGN.md convention 8).
 */

import { serviceClientConfig, validateClientConfig, type ClientConfig } from '../client/config.ts';
import { isLoopbackHost, parseAddress } from '../net/address.ts';
import { clusterSecretBytesMin, type ClusterSecurity } from '../net/cluster_link.ts';
import type { TreeLimits } from '../base/limits.ts';
import { defaultReplicaConfig, validateReplicaConfig, type ReplicaConfig } from '../vr/config.ts';
import type { CodecName } from '../../runtime/codec.ts';
import type { TransportName } from '../../runtime/mesh.ts';
import { isLogLevel, type LogLevel } from '../../runtime/logger.ts';
import { ticksPerMessageMax } from '../../actors/messages.ts';
import { defaultSupervisorOptions, validateSupervisorOptions, type SupervisorOptions } from '../../runtime/supervisor.ts';
import { defaultWatchHubLimits, validateWatchHubLimits, type WatchHubLimits } from '../watch/hub.ts';

export type NamespaceOptions = {
  readonly name: string;
  /** 2f+1 replicas; default 3. */
  readonly replicas?: number;
  /** Protocol limits and timeouts (ticks) of this namespace's group. */
  readonly config?: Partial<Omit<ReplicaConfig, 'replicaCount'>>;
};

/**
 * How replicas are spread over worker threads. `actor_per_worker` (the default in memory): every
 * replica, the proxy and the timer in a worker of its own. `shared`: replica i of every
 * namespace shares worker i, so a node with many namespaces needs only 2f+1 replica workers.
 * `single`: every replica of the node in one worker. A commit then crosses no thread between
 * the primary and its backups (prepare and prepare_ok are handed over inside the thread), which
 * on a machine with few cores is much faster (README "Performance": at one caller a put's p50
 * fell from ~260 to ~100 µs here). A replica's throw (an assertion) stays inside it, as in
 * `shared`: the worker drops that replica alone and the supervisor re-creates it, and it
 * recovers from the others. The price: a failure of the worker itself (out of memory, a crash of
 * the thread) takes every replica of the node down at once. A durable node comes back from its
 * disk (a whole-group restart, PROTOCOL.md "Durability"); an in-memory namespace whose replicas
 * all live in this node cannot, and says so (status, an error log line, typed `unavailable`).
 * So `single` is the default of a durable node (dataDir), `actor_per_worker` in memory.
 * `main_thread`: every replica of the node's own namespaces on the node's main thread, beside
 * its TCP server; no worker runs a replica. A request from a socket then crosses no thread at
 * all (measured with a lock cycle over TCP, paired windows: 1.4x the cycles per second of
 * `single`; a put's p50 from one TCP client ~160 µs against ~260-380). The price: one core
 * for the replicas and the sockets together (on this 2-core machine 1,024 TCP callers measured
 * alike in both layouts; a larger machine could give `single` a core of its own); a slow
 * handler on the main thread (the embedding program's own code, in process) delays them;
 * and, as with `single`, losing the thread loses every replica of the node at once (here the
 * thread is the process; a durable node comes back from its disk). A replica that throws is
 * re-created only once its old self has stopped (its files closed), on the main thread as in
 * a worker. Actor code is the same in every layout.
 */
export type WorkerLayout = 'actor_per_worker' | 'shared' | 'single' | 'main_thread';

/**
 * Which thread runs the client proxy: a worker of its own (the default, DESIGN.md), or the
 * main thread beside the API, which saves two thread hops per request (each ~35 µs on the
 * 2-core development VM) at the cost of running session logic on the embedding application's
 * thread.
 */
export type ProxyThread = 'worker' | 'host';

export type NodeOptions = {
  /** Namespaces to serve; a string is a 3-replica namespace of that name. Default: `default`. */
  readonly namespaces?: readonly (string | NamespaceOptions)[];
  /** Milliseconds per protocol tick. Default 10. */
  readonly tickMs?: number;
  /** How replicas share worker threads (WorkerLayout): `single` for a durable node, else `actor_per_worker`. */
  readonly workerLayout?: WorkerLayout;
  readonly proxyThread?: ProxyThread;
  /** How envelopes cross between threads. Default `clone` (measured faster; see bench). */
  readonly codec?: CodecName;
  /**
   * How envelopes cross between the node's threads: `port` (a MessagePort per link, the
   * default) or `ring` (SharedArrayBuffer rings; always msgpackr, so `codec` does not apply).
   */
  readonly transport?: TransportName;
  /** pino level; default from HARET_LOG_LEVEL, else `warn`. */
  readonly logLevel?: LogLevel;
  readonly supervisor?: SupervisorOptions;
  /** Deadline of each control call (status, inspect, stop). Default 2000 ms. */
  readonly controlTimeoutMs?: number;
  /**
   * Client session behaviour, in client ticks (`clientTickEvery` protocol ticks each; 50 ms by
   * default). `replicaCount` comes from each namespace.
   */
  readonly client?: Partial<Omit<ClientConfig, 'replicaCount'>>;
  /** Protocol ticks per client-session tick. Default 5. */
  readonly clientTickEvery?: number;
  /**
   * Protocol ticks the timer counts per wake-up and hands to every replica in one message
   * (actors/timer.ts). Default 5 (lowered to the smallest `commitIntervalTicks` served): an idle
   * node wakes its threads every 50 ms instead of every 10 ms (idle CPU 12-19% of a core ->
   * ~7%), and every timeout still counts the same ticks, firing at most `ticksPerWakeup - 1`
   * ticks later. The lease clock begins its intervals only at a message's last tick, so none of
   * a message's ticks counts in an interval begun while it was handled (src/vr/README.md rule
   * 21): a lease ends up to `ticksPerWakeup - 1` ticks later, never earlier. 1 wakes every tick.
   * 1..100, and at most every namespace's `commitIntervalTicks`, so a primary's heartbeat still
   * leaves on time.
   */
  readonly ticksPerWakeup?: number;
  /** Sessions per namespace in the proxy: the most requests in flight per namespace. Default 4096. */
  readonly sessionsMax?: number;
  /** Calls waiting for a session per namespace before `overloaded`. Default 100,000. */
  readonly waitingMax?: number;
  /**
   * Embedded calls in flight across every namespace (sent to the proxy, not yet settled);
   * one more is answered `overloaded` at once, without being sent. Default 100,000.
   */
  readonly callsInFlightMax?: number;
  /** Worker resource limits of each replica worker (e.g. maxOldGenerationSizeMb). */
  readonly replicaResourceLimits?: import('node:worker_threads').ResourceLimits;
  /**
   * Benchmarks only: a module (file: URL) to run in place of the replica actor, e.g. the
   * transport-ceiling echo in bench/. It gets the same init and message flow.
   */
  readonly replicaModule?: string;
  /** Serve the TCP client API (docs/protocol.md) on this address; absent: no listener. */
  readonly clientApi?: import('../net/server.ts').ClientApiOptions;
  /** This node's name, as the client API's `welcome` reports it. Default `haret`. */
  readonly name?: string;
  /** Serve the admin API (src/net/admin.ts) on this address; absent: no listener. */
  readonly adminApi?: import('../net/admin.ts').AdminApiOptions;
  /**
   * Serve HTTP on the admin side (src/net/http.ts): /metrics, /healthz, /readyz, /status.json.
   * Absent: no listener, and no request is measured.
   */
  readonly http?: HttpOptions;
  /**
   * Cluster links: listen for other nodes here (src/net/cluster_link.ts), so that namespaces
   * can be placed across nodes (`join`, then `createNamespace` through the admin API). Absent:
   * a node on its own. With it, `namespaces` may be empty.
   */
  readonly cluster?: ClusterOptions;
  /**
   * Where the node keeps its data: each replica's log, checkpoints and promise (one directory
   * per replica under `replicas/`), and the cluster record (members, namespaces) when the node
   * has cluster links. With a data directory replicas are durable unless `durable` is false.
   */
  readonly dataDir?: string;
  /**
   * Durable replicas (default: true when `dataDir` is given): nothing acknowledged is lost
   * even when every node stops at once. False keeps replicas in memory (the data directory then
   * holds only the cluster record): a replica that restarts recovers from its peers (VRR §4.3),
   * and more than f replicas lost together lose the namespace.
   */
  readonly durable?: boolean;
  /**
   * Namespace name -> backup file (`haret admin snapshot save`): each of the node's own
   * namespaces named here starts from the backup instead of an empty tree. Only on a durable
   * node, and only into replica directories that hold nothing yet.
   */
  readonly restore?: Readonly<Record<string, string>>;
  /**
   * Watch limits of every replica of the node (src/watch/hub.ts `WatchHubLimits`: history
   * retained for resumption, watches served, bytes buffered per watch, value cap, progress and
   * idle periods in ticks); unset fields keep the defaults.
   */
  readonly watch?: Partial<WatchHubLimits>;
  /**
   * Batches one embedded watch stream holds for an application that does not consume them;
   * past it the stream ends `lagging` (default 10,000).
   */
  readonly watchBatchesMax?: number;
};

/**
 * The HTTP listener. Without `tls` or `authToken` of its own it takes the admin port's (else
 * the client port's TLS), so that a node whose admin side is protected never serves its status
 * in the clear or to anyone (docs/security.md).
 */
export type HttpOptions = Omit<import('../net/http.ts').HttpApiOptions, 'host' | 'port'> & {
  /** "host:port" to listen on; ":port" or "port" mean 127.0.0.1; port 0 picks a free one. Default 127.0.0.1:0. */
  readonly address?: string;
  /**
   * How long a scrape, /readyz or /status.json waits for the replicas' status (the control
   * plane); a replica that has not answered by then is reported absent. Default: the control
   * timeout plus one second.
   */
  readonly statusTimeoutMs?: number;
};

/** The HTTP listener's options with the address parsed and the port's security inherited. */
export type ResolvedHttp = import('../net/http.ts').HttpApiOptions & { readonly host: string; readonly port: number; readonly statusTimeoutMs: number };

export type ClusterOptions = {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port. */
  readonly port?: number;
  /** Cluster addresses (host:port) to join once started. */
  readonly join?: readonly string[];
  /** Protocol limits and timeouts of the namespaces created on this node. */
  readonly namespaceConfig?: Partial<Omit<ReplicaConfig, 'replicaCount'>>;
  /**
   * Mutual TLS between members (PEM strings): every member's certificate is signed by `ca`
   * and names the member (CN or DNS subjectAltName), which binds a link to a node name.
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
  /**
   * A secret every member holds (at least 32 bytes; a string counts its UTF-8 bytes): links
   * authenticate by challenge-response over it, and it never crosses the wire. Without `tls`
   * or `secret` the cluster port binds loopback only (docs/security.md).
   */
  readonly secret?: string | Uint8Array;
};

/** The cluster's authentication mode from its options; RangeError for a bad combination. */
export function clusterSecurityOf(cluster: ClusterOptions): ClusterSecurity {
  const { tls, secret } = cluster;
  if (tls !== undefined && secret !== undefined) throw new RangeError('cluster: give tls or secret, not both');
  if (tls !== undefined) {
    for (const key of ['cert', 'key', 'ca'] as const) {
      if (typeof tls[key] !== 'string' || tls[key].length === 0) throw new RangeError(`cluster.tls.${key} must be a PEM string`);
    }
    return { mode: 'tls', cert: tls.cert, key: tls.key, ca: tls.ca };
  }
  if (secret !== undefined) {
    const bytes = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
    if (!(bytes instanceof Uint8Array) || bytes.byteLength < clusterSecretBytesMin) throw new RangeError(`cluster.secret must hold at least ${clusterSecretBytesMin} bytes`);
    return { mode: 'secret', secret: Uint8Array.from(bytes) };
  }
  return { mode: 'none' };
}

export type ResolvedNamespace = { readonly name: string; readonly config: ReplicaConfig };

export type ResolvedOptions = {
  readonly namespaces: readonly ResolvedNamespace[];
  readonly tickMs: number;
  readonly workerLayout: WorkerLayout;
  readonly proxyThread: ProxyThread;
  readonly codec: CodecName;
  readonly transport: TransportName;
  readonly logLevel: LogLevel | undefined;
  readonly supervisor: SupervisorOptions;
  readonly controlTimeoutMs: number;
  readonly sessionsMax: number;
  readonly waitingMax: number;
  readonly callsInFlightMax: number;
  readonly clientTickEvery: number;
  readonly ticksPerWakeup: number;
  /** Session behaviour of the proxy, in client ticks. */
  readonly client: Omit<ClientConfig, 'replicaCount'>;
  readonly replicaResourceLimits: import('node:worker_threads').ResourceLimits | undefined;
  readonly replicaModule: string | undefined;
  readonly clientApi: import('../net/server.ts').ClientApiOptions | undefined;
  readonly adminApi: import('../net/admin.ts').AdminApiOptions | undefined;
  readonly http: ResolvedHttp | undefined;
  readonly name: string;
  readonly cluster: ClusterOptions | undefined;
  /** How the cluster links authenticate members (`none` when there are no links). */
  readonly clusterSecurity: ClusterSecurity;
  readonly dataDir: string | undefined;
  /** Replicas keep their state in `dataDir` (issue 13). */
  readonly durable: boolean;
  /** Namespace -> backup file to seed it from (issue 13, "Backup"). */
  readonly restore: Readonly<Record<string, string>>;
  /** Host-side backstop for a call: the client's give-up time plus a margin. */
  readonly callDeadlineMs: number;
  /** Every replica's watch limits. */
  readonly watch: WatchHubLimits;
  readonly watchBatchesMax: number;
};

const namespaceName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Protocol defaults of a node, where they differ from the core's. A log entry holds a batch
 * of up to `batchMax` requests, so the log's memory is entries x batch: checkpoints every 16
 * entries let the log truncate often, and at most 256 committed entries are kept for a
 * replica that is away (beyond that it catches up from a checkpoint). Measured by the
 * runtime benchmark's memory row.
 */
export const nodeProtocolDefaults: Partial<ReplicaConfig> = { checkpointIntervalOps: 16, logRetainOps: 256 };

/** Options renamed so that each name means one thing (issue 11): old name, new name. */
const renamedOptions: readonly (readonly [string, keyof NodeOptions])[] = [
  ['placement', 'workerLayout'],
  ['proxyPlacement', 'proxyThread'],
];

/** Validates and fills defaults; throws a RangeError naming the first bad option. */
export function resolveOptions(options: NodeOptions = {}): ResolvedOptions {
  const tickMs = options.tickMs ?? 10;
  if (!Number.isFinite(tickMs) || tickMs < 1 || tickMs > 10_000) throw new RangeError('tickMs must be between 1 and 10000');
  // A JavaScript caller still using an old name would otherwise silently get the default.
  for (const [old, renamed] of renamedOptions) if (Object.hasOwn(options, old)) throw new RangeError(`option ${old} is now called ${renamed}`);
  // A durable node's replicas share one worker unless told otherwise (WorkerLayout, README
  // "Performance today"): a failure of that worker is a whole-group restart from disk, which
  // loses nothing acknowledged, and a commit then crosses no thread. In memory the same failure
  // would lose the namespace, so there each replica keeps a worker of its own.
  const durableByOptions = options.dataDir !== undefined && options.durable !== false;
  const workerLayout = options.workerLayout ?? (durableByOptions ? 'single' : 'actor_per_worker');
  if (workerLayout !== 'actor_per_worker' && workerLayout !== 'shared' && workerLayout !== 'single' && workerLayout !== 'main_thread') throw new RangeError('workerLayout must be actor_per_worker, shared, single or main_thread');
  const proxyThread = options.proxyThread ?? 'worker';
  if (proxyThread !== 'worker' && proxyThread !== 'host') throw new RangeError('proxyThread must be worker or host');
  const codec = options.codec ?? 'clone';
  if (codec !== 'clone' && codec !== 'msgpack') throw new RangeError('codec must be clone or msgpack');
  const transport = options.transport ?? 'port';
  if (transport !== 'port' && transport !== 'ring') throw new RangeError('transport must be port or ring');
  if (options.logLevel !== undefined && !isLogLevel(options.logLevel)) throw new RangeError(`logLevel ${String(options.logLevel)} is not a pino level`);
  const supervisor = options.supervisor ?? defaultSupervisorOptions;
  const supervisorProblem = validateSupervisorOptions(supervisor);
  if (supervisorProblem !== null) throw new RangeError(supervisorProblem);
  const positive = (value: number | undefined, fallback: number, name: string): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
    return v;
  };
  const sessionsMax = positive(options.sessionsMax, 4096, 'sessionsMax');
  const waitingMax = positive(options.waitingMax, 100_000, 'waitingMax');
  const callsInFlightMax = positive(options.callsInFlightMax, 100_000, 'callsInFlightMax');
  const watchBatchesMax = positive(options.watchBatchesMax, 10_000, 'watchBatchesMax');
  if (callsInFlightMax > 1_000_000) throw new RangeError('callsInFlightMax must be at most 1000000');
  const clientTickEvery = positive(options.clientTickEvery, 5, 'clientTickEvery');
  const controlTimeoutMs = positive(options.controlTimeoutMs, 2000, 'controlTimeoutMs');
  const list = options.namespaces ?? ['default'];
  if (list.length === 0 && options.cluster === undefined) throw new RangeError('a node needs at least one namespace (or cluster links)');
  if (options.dataDir !== undefined && (typeof options.dataDir !== 'string' || options.dataDir.length === 0)) throw new RangeError('dataDir must be a path');
  if (options.durable !== undefined && typeof options.durable !== 'boolean') throw new RangeError('durable must be a boolean');
  if (options.durable === true && options.dataDir === undefined) throw new RangeError('durable replicas need a dataDir');
  const durable = options.dataDir !== undefined && options.durable !== false;
  const restore = options.restore ?? {};
  if (typeof restore !== 'object' || restore === null) throw new RangeError('restore must map namespace names to backup files');
  for (const [ns, file] of Object.entries(restore)) {
    if (!durable) throw new RangeError(`restore ${ns}: restoring needs a durable node (dataDir)`);
    if (!(options.namespaces ?? ['default']).some((entry) => (typeof entry === 'string' ? entry : entry.name) === ns)) throw new RangeError(`restore ${ns}: not one of this node's namespaces`);
    if (typeof file !== 'string' || file.length === 0) throw new RangeError(`restore ${ns}: the backup must be a file path`);
  }
  const name = options.name ?? 'haret';
  if (typeof name !== 'string' || !namespaceName.test(name)) throw new RangeError(`node name ${JSON.stringify(name)} must be 1-64 letters, digits, '_', '.', '-'`);
  const seen = new Set<string>();
  const namespaces = list.map((entry): ResolvedNamespace => {
    const ns: NamespaceOptions = typeof entry === 'string' ? { name: entry } : entry;
    if (seen.has(ns.name)) throw new RangeError(`namespace ${ns.name} is listed twice`);
    seen.add(ns.name);
    return resolveNamespace(ns, durable, tickMs);
  });
  const clusterNamespace = options.cluster?.namespaceConfig === undefined ? null : resolveNamespace({ name: 'check', config: options.cluster.namespaceConfig }, durable, tickMs);
  const ticksPerWakeup = resolveTicksPerWakeup(options.ticksPerWakeup, [...namespaces, ...(clusterNamespace === null ? [] : [clusterNamespace])]);
  const watch: WatchHubLimits = { ...defaultWatchHubLimits, ...options.watch };
  const watchProblem = validateWatchHubLimits(watch);
  if (watchProblem !== null) throw new RangeError(`watch: ${watchProblem}`);
  const http = options.http === undefined ? undefined : resolveHttp(options.http, options, controlTimeoutMs);
  const client: Omit<ClientConfig, 'replicaCount'> = { ...serviceClientConfig, ...options.client };
  const clientProblem = validateClientConfig({ ...client, replicaCount: 1 });
  if (clientProblem !== null) throw new RangeError(clientProblem);
  return {
    namespaces,
    tickMs,
    workerLayout,
    proxyThread,
    codec,
    transport,
    logLevel: options.logLevel,
    supervisor,
    controlTimeoutMs,
    sessionsMax,
    waitingMax,
    callsInFlightMax,
    clientTickEvery,
    ticksPerWakeup,
    client,
    replicaResourceLimits: options.replicaResourceLimits,
    replicaModule: options.replicaModule,
    clientApi: options.clientApi,
    adminApi: options.adminApi,
    http,
    name,
    cluster: options.cluster,
    clusterSecurity: options.cluster === undefined ? { mode: 'none' } : clusterSecurityOf(options.cluster),
    dataDir: options.dataDir,
    durable,
    restore,
    callDeadlineMs: client.giveUpTicks * clientTickEvery * tickMs * 2 + 5_000,
    watch,
    watchBatchesMax,
  };
}

/** The HTTP listener's address and limits; its TLS and token are its own, else the admin port's (TLS: else the client port's). */
function resolveHttp(http: HttpOptions, options: NodeOptions, controlTimeoutMs: number): ResolvedHttp {
  if (typeof http !== 'object' || http === null) throw new RangeError('http must be an object ({ address })');
  let listen: { host: string; port: number };
  try {
    listen = parseAddress(http.address ?? '127.0.0.1:0', true);
  } catch (error) {
    throw new RangeError(`http.address: ${error instanceof Error ? error.message : String(error)}`);
  }
  const statusTimeoutMs = http.statusTimeoutMs ?? controlTimeoutMs + 1_000;
  if (!Number.isSafeInteger(statusTimeoutMs) || statusTimeoutMs < 1) throw new RangeError('http.statusTimeoutMs must be a positive integer');
  const { address: _address, statusTimeoutMs: _timeout, ...limits } = http;
  const tls = http.tls ?? options.adminApi?.tls ?? options.clientApi?.tls;
  const authToken = http.authToken ?? options.adminApi?.authToken;
  return { ...limits, ...listen, statusTimeoutMs, ...(tls === undefined ? {} : { tls }), ...(authToken === undefined ? {} : { authToken }) };
}

/**
 * Ticks per timer wake-up when the options do not say (actors/timer.ts): an idle node wakes its
 * threads every 50 ms instead of every 10 ms (see `NodeOptions.ticksPerWakeup`).
 */
export const defaultTicksPerWakeup = 5;

/**
 * The timer's ticks per wake-up: as asked, or the default lowered to the smallest
 * `commitIntervalTicks` the node serves (a heartbeat is due every that many ticks, and a
 * wake-up may carry no more). An explicit value above it is refused.
 */
function resolveTicksPerWakeup(asked: number | undefined, namespaces: readonly ResolvedNamespace[]): number {
  const heartbeat = Math.min(...namespaces.map((ns) => ns.config.commitIntervalTicks));
  if (asked === undefined) return Math.max(1, Math.min(defaultTicksPerWakeup, heartbeat));
  if (!Number.isSafeInteger(asked) || asked < 1 || asked > ticksPerMessageMax) throw new RangeError(`ticksPerWakeup must be an integer in 1..${ticksPerMessageMax}`);
  if (asked > heartbeat) throw new RangeError(`ticksPerWakeup ${asked} exceeds a namespace's commitIntervalTicks (${heartbeat}): its primary's heartbeat would leave late`);
  return asked;
}

/**
 * One namespace's protocol configuration; throws a RangeError naming the problem. Durability is
 * the node's (`durable`), not a namespace's: a namespace config asking for it is refused.
 */
export function resolveNamespace(ns: NamespaceOptions, durable: boolean, tickMs: number): ResolvedNamespace {
  if (typeof ns.name !== 'string' || !namespaceName.test(ns.name)) {
    throw new RangeError(`namespace name ${JSON.stringify(ns.name)} must be 1-64 letters, digits, '_', '.', '-'`);
  }
  if (ns.config?.durable !== undefined) throw new RangeError(`namespace ${ns.name}: durability is the node's choice (dataDir, durable), not a namespace option`);
  // Lease TTLs are converted with the timer's real period, so it is the node's, never a namespace's.
  if (ns.config?.tickMs !== undefined) throw new RangeError(`namespace ${ns.name}: tickMs is the node's option, not a namespace option`);
  const config: ReplicaConfig = { ...defaultReplicaConfig, ...nodeProtocolDefaults, ...ns.config, replicaCount: ns.replicas ?? 3, durable, tickMs };
  const problem = validateReplicaConfig(config);
  if (problem !== null) throw new RangeError(`namespace ${ns.name}: ${problem}`);
  return { name: ns.name, config };
}

/** The tree limits of every namespace the node may serve: its own, and those it would create in a cluster. */
export function servedTreeLimits(options: ResolvedOptions): TreeLimits[] {
  const limits = options.namespaces.map((ns) => ns.config.treeLimits);
  const cluster = options.cluster?.namespaceConfig;
  if (options.cluster !== undefined) limits.push(resolveNamespace({ name: 'cluster', ...(cluster === undefined ? {} : { config: cluster }) }, options.durable, options.tickMs).config.treeLimits);
  return limits;
}

/**
 * The client, admin and HTTP ports reachable from other machines with neither TLS nor a token: they
 * serve anyone who finds them. The cluster port is not listed: without TLS or a secret it
 * refuses to bind beyond loopback (src/net/cluster_link.ts).
 */
export function unprotectedPorts(resolved: Pick<ResolvedOptions, 'clientApi' | 'adminApi'> & Partial<Pick<ResolvedOptions, 'http'>>): { readonly port: 'client' | 'admin' | 'http'; readonly host: string }[] {
  const ports = [
    { port: 'client' as const, listen: resolved.clientApi },
    { port: 'admin' as const, listen: resolved.adminApi },
    { port: 'http' as const, listen: resolved.http },
  ];
  const open: { port: 'client' | 'admin' | 'http'; host: string }[] = [];
  for (const { port, listen } of ports) {
    if (listen === undefined) continue;
    const host = listen.host ?? '127.0.0.1';
    if (isLoopbackHost(host) || listen.tls !== undefined || listen.authToken !== undefined) continue;
    open.push({ port, host });
  }
  return open;
}
