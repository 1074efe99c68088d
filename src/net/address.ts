/** "host:port" as the network pieces take it (IPv6 hosts may be bracketed). */

export type HostPort = { readonly host: string; readonly port: number };

/**
 * Parses "host:port"; with `listening` the host may be left out (":7878" or "7878" mean
 * 127.0.0.1) and port 0 (any free port) is allowed. Throws a RangeError naming the input.
 */
export function parseAddress(value: string, listening = false): HostPort {
  const at = value.lastIndexOf(':');
  if (at <= 0 && !listening) throw new RangeError(`address ${value} is not host:port`);
  const host = at <= 0 ? '127.0.0.1' : value.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(at < 0 ? value : value.slice(at + 1));
  if (!Number.isInteger(port) || port < (listening ? 0 : 1) || port > 65_535) throw new RangeError(`address ${value} is not host:port`);
  return { host, port };
}

/** "host:port", with an IPv6 host in brackets. */
export function formatAddress(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * True for a host only this machine can reach: `localhost`, 127.0.0.0/8, `::1` (and its
 * IPv4-mapped form). A wildcard (`0.0.0.0`, `::`) or any other address is reachable from
 * outside, so a listener there needs TLS, a token or a secret (docs/security.md).
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1' || bare === '0:0:0:0:0:0:0:1') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
