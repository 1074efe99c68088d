/**
 * The addresses `haret cli` and `haret admin` dial: an ADDRESS argument or `--endpoints a,b,c`,
 * each written as `haret start` accepts them (`host:port`, `:port` or `port` for 127.0.0.1,
 * `[v6]:port`).
 */

import { formatAddress, parseAddress } from '../net/address.ts';
import { UsageError } from './args.ts';

/** One address to dial, as "host:port". */
export function dialAddress(command: string, text: string): string {
  let address;
  try {
    address = parseAddress(text, true);
  } catch {
    throw new UsageError(command, `${JSON.stringify(text)} is not an address (host:port, or :port for 127.0.0.1)`);
  }
  if (address.port === 0) throw new UsageError(command, `${JSON.stringify(text)}: port 0 cannot be dialled`);
  return formatAddress(address);
}

/** The addresses of an ADDRESS argument or of --endpoints (a comma-separated list), in order. */
export function endpointsOf(command: string, positionals: readonly string[], endpoints: string | undefined): string[] {
  if (positionals.length > 1) throw new UsageError(command, `one ADDRESS, got ${positionals.length} (several go in --endpoints a,b,c)`);
  const [address] = positionals;
  if (address !== undefined && endpoints !== undefined) throw new UsageError(command, 'give ADDRESS or --endpoints, not both');
  const list = address !== undefined ? [address] : (endpoints ?? '').split(',').map((item) => item.trim());
  if (endpoints !== undefined && list.some((item) => item === '')) throw new UsageError(command, `--endpoints ${JSON.stringify(endpoints)} has an empty address`);
  if (list.length === 0 || list[0] === '') throw new UsageError(command, 'missing the node\'s ADDRESS (host:port, :port) or --endpoints a,b,c');
  return list.map((item) => dialAddress(command, item));
}
