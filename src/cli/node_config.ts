/**
 * `haret start` configuration: a TOML file and/or flags (flags win), validated into
 * `startNode` options. Unknown keys are refused by name, so a typo never silently falls back to
 * a default.
 *
 * ```toml
 * name = "node-a"
 * client_address = "127.0.0.1:7878"
 * admin_address = "127.0.0.1:7879"     # optional
 * cluster_address = "127.0.0.1:7880"   # optional: links to other nodes
 * data_dir = "/var/lib/haret/node-a"   # optional (needs cluster_address): the cluster record
 * join = ["127.0.0.1:7890"]            # optional: cluster addresses to join at start
 * log_level = "info"
 * [[namespaces]]
 * name = "default"
 * replicas = 3
 * ```
 */

import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import type { NodeOptions } from '../node/index.ts';
import { isLogLevel } from '../../runtime/logger.ts';
import { parseAddress } from '../net/address.ts';

export type StartFlags = {
  readonly config?: string | undefined;
  readonly name?: string | undefined;
  readonly clientAddress?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly namespace?: string | undefined;
  readonly replicas?: string | undefined;
  readonly clusterAddress?: string | undefined;
  readonly adminAddress?: string | undefined;
  readonly dataDir?: string | undefined;
  readonly join?: readonly string[] | undefined;
  /** No namespace of the node's own (a cluster member that only hosts cluster namespaces). */
  readonly noLocalNamespace?: boolean | undefined;
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const knownKeys = new Set(['name', 'client_address', 'log_level', 'namespaces', 'cluster_address', 'admin_address', 'data_dir', 'join']);

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
  const clusterAddress = pick('cluster_address', flags.clusterAddress);
  if (clusterAddress !== undefined && typeof clusterAddress !== 'string') throw new ConfigError('cluster_address must be a "host:port" string');
  const dataDir = pick('data_dir', flags.dataDir);
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir.length === 0)) throw new ConfigError('data_dir must be a path');
  if (dataDir !== undefined && clusterAddress === undefined) throw new ConfigError('data_dir keeps the cluster record: it needs cluster_address');
  const join = flags.join !== undefined && flags.join.length > 0 ? flags.join : file['join'];
  if (join !== undefined && (!Array.isArray(join) || !join.every((address) => typeof address === 'string'))) throw new ConfigError('join must be a list of "host:port" strings');
  if (join !== undefined && clusterAddress === undefined) throw new ConfigError('join needs cluster_address');
  if (namespaces.length === 0 && clusterAddress === undefined) throw new ConfigError('a node without cluster_address needs a namespace of its own');
  for (const address of (join ?? []) as string[]) parseListenAddress(address);
  return {
    name,
    namespaces,
    ...(clusterAddress === undefined ? {} : { cluster: { ...parseListenAddress(clusterAddress), ...(join === undefined ? {} : { join: join as string[] }) } }),
    ...(dataDir === undefined ? {} : { dataDir }),
    clientApi: parseListenAddress(address),
    ...(admin === undefined ? {} : { adminApi: parseListenAddress(admin) }),
    ...(logLevel === undefined ? {} : { logLevel }),
  };
}
