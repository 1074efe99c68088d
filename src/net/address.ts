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
