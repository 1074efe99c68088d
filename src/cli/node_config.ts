/**
 * `haret start` configuration: a TOML file and/or flags (flags win), validated into
 * `startNode` options. Unknown keys are refused by name, so a typo never silently falls back to
 * a default.
 *
 * ```toml
 * name = "node-a"
 * client_address = "127.0.0.1:7878"
 * admin_address = "127.0.0.1:7879"     # optional
 * http_address = "127.0.0.1:7881"      # optional: /metrics, /healthz, /readyz, /status.json
 * cluster_address = "127.0.0.1:7880"   # optional: links to other nodes
 * data_dir = "/var/lib/haret/node-a"   # optional (needs cluster_address): the cluster record
 * join = ["127.0.0.1:7890"]            # optional: cluster addresses to join at start
 * log_level = "info"
 * worker_layout = "single"             # optional: actor_per_worker (default), shared or single
 * tls_cert = "/etc/haret/node-a.crt"   # optional, with tls_key: TLS on the client and admin ports
 * tls_key = "/etc/haret/node-a.key"
 * tls_ca = "/etc/haret/ca.crt"         # with cluster_address: mutual TLS between members
 * cluster_secret_file = "/etc/haret/cluster.secret"   # or a shared secret (>= 32 bytes)
 * auth_token_file = "/etc/haret/client.token"         # optional: clients send it in hello
 * admin_token_file = "/etc/haret/admin.token"         # optional: the admin API needs it
 * [[namespaces]]
 * name = "default"
 * replicas = 3
 * ```
 */

import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import type { NodeOptions, WorkerLayout } from '../node/index.ts';
import { isLogLevel } from '../../runtime/logger.ts';
import { formatAddress, parseAddress } from '../net/address.ts';

export type StartFlags = {
  readonly config?: string | undefined;
  readonly name?: string | undefined;
  readonly clientAddress?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly namespace?: string | undefined;
  readonly replicas?: string | undefined;
  readonly clusterAddress?: string | undefined;
  readonly adminAddress?: string | undefined;
  /** `--http-address`: serve /metrics, /healthz, /readyz and /status.json here. */
  readonly httpAddress?: string | undefined;
  readonly dataDir?: string | undefined;
  /** `--no-durable`: keep replicas in memory even with a data directory. */
  readonly noDurable?: boolean | undefined;
  /** `--worker-layout`: how the node's replicas are spread over worker threads (NodeOptions.workerLayout). */
  readonly workerLayout?: string | undefined;
  /** `--restore NS=FILE`: seed the node's namespace NS from a backup. */
  readonly restore?: readonly string[] | undefined;
  readonly join?: readonly string[] | undefined;
  /** No namespace of the node's own (a cluster member that only hosts cluster namespaces). */
  readonly noLocalNamespace?: boolean | undefined;
  /** PEM files: certificate and key for TLS on every port; the CA for the members' mutual TLS. */
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsCa?: string | undefined;
  /** A file of at least 32 bytes every member holds (cluster links without certificates). */
  readonly clusterSecretFile?: string | undefined;
  /** Files whose first line is the token clients (admin clients) must present. */
  readonly authTokenFile?: string | undefined;
  readonly adminTokenFile?: string | undefined;
};

const workerLayouts: readonly WorkerLayout[] = ['actor_per_worker', 'shared', 'single', 'main_thread'];

function isWorkerLayout(value: unknown): value is WorkerLayout {
  return typeof value === 'string' && (workerLayouts as readonly string[]).includes(value);
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const knownKeys = new Set([
  'name',
  'client_address',
  'log_level',
  'namespaces',
  'cluster_address',
  'admin_address',
  'http_address',
  'data_dir',
  'durable',
  'worker_layout',
  'join',
  'tls_cert',
  'tls_key',
  'tls_ca',
  'cluster_secret_file',
  'auth_token_file',
  'admin_token_file',
]);

/** A token file's first line, without surrounding whitespace; 1..1024 characters. */
export const tokenCharsMax = 1024;

/** A secret, certificate, key or token file is small: anything larger is the wrong file. */
const credentialFileBytesMax = 1024 * 1024;

function readCredential(path: unknown, key: string): Buffer {
  if (typeof path !== 'string' || path.length === 0) throw new ConfigError(`${key} must be a file path`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ConfigError(`cannot read ${key} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (bytes.byteLength > credentialFileBytesMax) throw new ConfigError(`${key} ${path} is larger than ${credentialFileBytesMax} bytes`);
  return bytes;
}

/** The token on a token file's first line (what `haret cli/admin --token-file` read too). */
export function readTokenFile(path: unknown, key: string): string {
  const token = (readCredential(path, key).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
  if (token.length === 0 || token.length > tokenCharsMax) throw new ConfigError(`${key}: the first line must hold a token of 1..${tokenCharsMax} characters`);
  return token;
}

/** A PEM file (certificate, key or CA) as text. */
export function readPemFile(path: unknown, key: string): string {
  const text = readCredential(path, key).toString('utf8');
  if (!text.includes('-----BEGIN ')) throw new ConfigError(`${key} ${String(path)} is not a PEM file`);
  return text;
}

/** "host:port" to listen on; the host defaults to 127.0.0.1 when only ":port" or "port" is given. */
function parseListenAddress(value: string): { host: string; port: number } {
  try {
    return parseAddress(value, true);
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`config ${path} is not valid TOML: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function resolveStartConfig(flags: StartFlags): NodeOptions & { clientApi: { host: string; port: number } } {
  const file = flags.config === undefined ? {} : readFile(flags.config);
  for (const key of Object.keys(file)) {
    if (!knownKeys.has(key)) throw new ConfigError(`unknown config key ${key} (known: ${[...knownKeys].join(', ')})`);
  }
  const pick = (key: string, flag: string | undefined): unknown => flag ?? file[key];
  const name = pick('name', flags.name) ?? 'haret';
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw new ConfigError('name must be a string of 1..256 characters');
  const address = pick('client_address', flags.clientAddress) ?? '127.0.0.1:7878';
  if (typeof address !== 'string') throw new ConfigError('client_address must be a "host:port" string');
  const logLevel = pick('log_level', flags.logLevel);
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new ConfigError(`log_level ${String(logLevel)} is not a level`);
  let namespaces: { name: string; replicas: number }[];
  if (flags.noLocalNamespace === true) {
    namespaces = [];
  } else if (flags.namespace !== undefined || flags.replicas !== undefined || file['namespaces'] === undefined) {
    namespaces = [{ name: flags.namespace ?? 'default', replicas: Number(flags.replicas ?? 3) }];
  } else {
    const list = file['namespaces'];
    if (!Array.isArray(list)) throw new ConfigError('namespaces must be an array of tables ([[namespaces]])');
    namespaces = list.map((entry: unknown, i) => {
      if (typeof entry !== 'object' || entry === null) throw new ConfigError(`namespaces[${i}] must be a table`);
      const table = entry as Record<string, unknown>;
      for (const key of Object.keys(table)) if (key !== 'name' && key !== 'replicas') throw new ConfigError(`namespaces[${i}]: unknown key ${key}`);
      if (typeof table['name'] !== 'string') throw new ConfigError(`namespaces[${i}].name must be a string`);
      const replicas = table['replicas'] ?? 3;
      if (typeof replicas !== 'number') throw new ConfigError(`namespaces[${i}].replicas must be a number`);
      return { name: table['name'], replicas };
    });
  }
  const admin = pick('admin_address', flags.adminAddress);
  if (admin !== undefined && typeof admin !== 'string') throw new ConfigError('admin_address must be a "host:port" string');
  const httpAddress = pick('http_address', flags.httpAddress);
  if (httpAddress !== undefined && typeof httpAddress !== 'string') throw new ConfigError('http_address must be a "host:port" string');
  const clusterAddress = pick('cluster_address', flags.clusterAddress);
  if (clusterAddress !== undefined && typeof clusterAddress !== 'string') throw new ConfigError('cluster_address must be a "host:port" string');
  const dataDir = pick('data_dir', flags.dataDir);
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir.length === 0)) throw new ConfigError('data_dir must be a path');
  const durableSetting = flags.noDurable === true ? false : file['durable'];
  if (durableSetting !== undefined && typeof durableSetting !== 'boolean') throw new ConfigError('durable must be true or false');
  if (durableSetting === true && dataDir === undefined) throw new ConfigError('durable = true needs data_dir');
  const workerLayout = pick('worker_layout', flags.workerLayout);
  if (workerLayout !== undefined && !isWorkerLayout(workerLayout)) throw new ConfigError(`worker_layout must be one of ${workerLayouts.join(', ')}, got ${String(workerLayout)}`);
  const restore: Record<string, string> = {};
  for (const pair of flags.restore ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0 || at === pair.length - 1) throw new ConfigError(`--restore ${pair}: expected NS=FILE`);
    restore[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (Object.keys(restore).length > 0 && (dataDir === undefined || durableSetting === false)) throw new ConfigError('--restore needs a durable node (data_dir)');
  const join = flags.join !== undefined && flags.join.length > 0 ? flags.join : file['join'];
  if (join !== undefined && (!Array.isArray(join) || !join.every((address) => typeof address === 'string'))) throw new ConfigError('join must be a list of "host:port" strings');
  if (join !== undefined && clusterAddress === undefined) throw new ConfigError('join needs cluster_address');
  if (namespaces.length === 0 && clusterAddress === undefined) throw new ConfigError('a node without cluster_address needs a namespace of its own');
  // Written as a listening address may be (`:7201` is 127.0.0.1:7201), passed on as host:port to dial.
  const joinAddresses = join === undefined ? undefined : (join as string[]).map((address) => formatAddress(parseListenAddress(address)));
  const security = resolveSecurity(flags, pick, clusterAddress !== undefined);
  return {
    name,
    namespaces,
    ...(clusterAddress === undefined ? {} : { cluster: { ...parseListenAddress(clusterAddress), ...(joinAddresses === undefined ? {} : { join: joinAddresses }), ...security.cluster } }),
    ...(dataDir === undefined ? {} : { dataDir }),
    ...(durableSetting === undefined ? {} : { durable: durableSetting }),
    ...(workerLayout === undefined ? {} : { workerLayout }),
    ...(Object.keys(restore).length === 0 ? {} : { restore }),
    clientApi: { ...parseListenAddress(address), ...security.tls, ...(security.authToken === undefined ? {} : { authToken: security.authToken }) },
    ...(admin === undefined ? {} : { adminApi: { ...parseListenAddress(admin), ...security.tls, ...(security.adminToken === undefined ? {} : { authToken: security.adminToken }) } }),
    // The HTTP side shows what the admin port shows: the same TLS and the admin token (as a Bearer token).
    ...(httpAddress === undefined ? {} : { http: { address: formatAddress(parseListenAddress(httpAddress)), ...security.tls, ...(security.adminToken === undefined ? {} : { authToken: security.adminToken }) } }),
    ...(logLevel === undefined ? {} : { logLevel }),
  };
}

type Security = {
  /** TLS for the client and admin ports (no client certificates there). */
  readonly tls: { readonly tls?: { readonly cert: string; readonly key: string } };
  readonly cluster: { readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string }; readonly secret?: Uint8Array };
  readonly authToken: string | undefined;
  readonly adminToken: string | undefined;
};

/**
 * The credential files (docs/security.md): a certificate and key serve TLS on the client and
 * admin ports; with a CA and cluster links they are the members' mutual TLS; a cluster secret
 * file is the other way to authenticate members. Read here, so a bad file is a ConfigError
 * naming it before anything listens.
 */
function resolveSecurity(flags: StartFlags, pick: (key: string, flag: string | undefined) => unknown, clustered: boolean): Security {
  const certPath = pick('tls_cert', flags.tlsCert);
  const keyPath = pick('tls_key', flags.tlsKey);
  const caPath = pick('tls_ca', flags.tlsCa);
  const secretPath = pick('cluster_secret_file', flags.clusterSecretFile);
  if ((certPath === undefined) !== (keyPath === undefined)) throw new ConfigError('tls_cert and tls_key go together');
  const pem = certPath === undefined ? undefined : { cert: readPemFile(certPath, 'tls_cert'), key: readPemFile(keyPath, 'tls_key') };
  const ca = caPath === undefined ? undefined : readPemFile(caPath, 'tls_ca');
  if (ca !== undefined && pem === undefined) throw new ConfigError('tls_ca needs tls_cert and tls_key');
  let cluster: Security['cluster'] = {};
  if (clustered && pem !== undefined && ca !== undefined) {
    if (secretPath !== undefined) throw new ConfigError('cluster links use tls_ca or cluster_secret_file, not both');
    cluster = { tls: { ...pem, ca } };
  } else if (clustered && pem !== undefined && secretPath === undefined) {
    throw new ConfigError('with cluster_address, tls_cert needs tls_ca (mutual TLS between members) or cluster_secret_file');
  } else if (secretPath !== undefined) {
    if (!clustered) throw new ConfigError('cluster_secret_file needs cluster_address');
    const secret = readCredential(secretPath, 'cluster_secret_file');
    if (secret.byteLength < 32) throw new ConfigError('cluster_secret_file must hold at least 32 bytes (openssl rand -out FILE 32)');
    cluster = { secret: Uint8Array.from(secret) };
  }
  const authPath = pick('auth_token_file', flags.authTokenFile);
  const adminPath = pick('admin_token_file', flags.adminTokenFile);
  return {
    tls: pem === undefined ? {} : { tls: pem },
    cluster,
    authToken: authPath === undefined ? undefined : readTokenFile(authPath, 'auth_token_file'),
    adminToken: adminPath === undefined ? undefined : readTokenFile(adminPath, 'admin_token_file'),
  };
}
