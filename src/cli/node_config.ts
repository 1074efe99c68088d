/**
 * `haret start` configuration: a TOML file and/or flags (flags win), validated into
 * `startNode` options. Unknown keys are refused by name, so a typo never silently falls back to
 * a default.
 *
 * ```toml
 * name = "node-a"
 * client_address = "127.0.0.1:7878"
 * admin_address = "127.0.0.1:7879"     # optional
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
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const knownKeys = new Set(['name', 'client_address', 'log_level', 'namespaces', 'cluster_address', 'admin_address', 'data_dir']);
const notYet = new Map([
  ['cluster_address', 'cluster links (multi-node clusters)'],
  ['data_dir', 'storage on disk'],
]);

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
  for (const [key, what] of notYet) {
    const flag = key === 'cluster_address' ? flags.clusterAddress : flags.dataDir;
    if (pick(key, flag) !== undefined) throw new ConfigError(`${key}: ${what} is not available yet (see README, "What does not work yet")`);
  }
  const name = pick('name', flags.name) ?? 'haret';
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw new ConfigError('name must be a string of 1..256 characters');
  const address = pick('client_address', flags.clientAddress) ?? '127.0.0.1:7878';
  if (typeof address !== 'string') throw new ConfigError('client_address must be a "host:port" string');
  const logLevel = pick('log_level', flags.logLevel);
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new ConfigError(`log_level ${String(logLevel)} is not a level`);
  let namespaces: { name: string; replicas: number }[];
  if (flags.namespace !== undefined || flags.replicas !== undefined || file['namespaces'] === undefined) {
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
  return {
    name,
    namespaces,
    clientApi: parseListenAddress(address),
    ...(admin === undefined ? {} : { adminApi: parseListenAddress(admin) }),
    ...(logLevel === undefined ? {} : { logLevel }),
  };
}
