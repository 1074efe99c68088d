/**
 * Client-id prefixes for session pools (the node's proxy, the client library). They must
 * never repeat across restarts of the owner, hence random: 7 base-36 characters (~7.8e10
 * values). Kept short on purpose: with the namespace index and session number a client id
 * stays within 16 characters, and the replicas key their client table by it (Immutable.js
 * hashes longer strings through a small shared cache that a thousand sessions thrash).
 */

import { randomBytes } from 'node:crypto';

export function randomSessionPrefix(namespaceIndex: number): string {
  return `${Array.from(randomBytes(7), (byte) => (byte % 36).toString(36)).join('')}${namespaceIndex.toString(36)}`;
}
