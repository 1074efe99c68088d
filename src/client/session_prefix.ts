/**
 * Client-id prefixes for session hosts (the node's proxy, each connection of the client
 * library). They must never repeat across hosts or restarts, so they are random; the shell
 * draws the bytes (the core reads no randomness of its own, DESIGN.md convention 2). Seven
 * base-36 characters (~7.8e10 values) plus the namespace's index: kept short on purpose, since
 * with the session number a client id stays within 16 characters and the replicas key their
 * client table by it (Immutable.js hashes longer strings through a small shared cache that a
 * thousand sessions thrash).
 */

/** Random bytes a prefix needs. */
export const sessionPrefixRandomBytes = 7;

export function sessionPrefix(random: Uint8Array, namespaceIndex: number): string {
  let prefix = '';
  for (let i = 0; i < sessionPrefixRandomBytes; i++) prefix += ((random[i] ?? 0) % 36).toString(36);
  return `${prefix}${namespaceIndex.toString(36)}`;
}
