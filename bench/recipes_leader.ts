/**
 * The leader of the recipes benchmark's failover runs (bench/recipes_failover.ts), as a process
 * of its own so that the bench can SIGKILL it: connects to a node over TCP, campaigns in an
 * election and, once it leads, prints `leading <token>` and stays up (its lease kept alive by
 * the client library) until it is killed.
 *
 * Usage: node --import tsx bench/recipes_leader.ts ADDRESS NAMESPACE PATH VALUE TTL_MS
 *
 * It exits on its own when its stdin closes: should the bench die without killing it, it does
 * not outlive the bench.
 */

import { connect } from '../src/net/index.ts';

const [address, namespace, path, value, ttlText] = process.argv.slice(2);
if (address === undefined || namespace === undefined || path === undefined || value === undefined || ttlText === undefined) {
  process.stderr.write('usage: recipes_leader.ts ADDRESS NAMESPACE PATH VALUE TTL_MS\n');
  process.exit(2);
}
const ttlMs = Number(ttlText);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

try {
  const connection = await connect([address]);
  const leadership = await connection.client(namespace).election(path, { ttlMs }).campaign(value);
  process.stdout.write(`leading ${leadership.token}\n`);
} catch (error: unknown) {
  process.stderr.write(`recipes_leader: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
