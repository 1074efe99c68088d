/**
 * The node's client as the coordination layer sees it (CoordClient), each method passed
 * through to `db` unless `overrides` replaces it, and `calls` (when given) gets every call's
 * method name: how the coordination tests count and steer what the recipes send.
 */

import type { NamespaceClient } from '../../src/client/namespace_client.ts';
import type { CoordClient } from '../../src/coord/index.ts';

const methods = ['leaseGrant', 'leaseKeepAlive', 'leaseRevoke', 'create', 'delete', 'list', 'stat', 'blobGet', 'blobPut', 'watch', 'multiCas'] as const satisfies readonly (keyof CoordClient)[];

export function coordClientOver(db: NamespaceClient, overrides: Partial<CoordClient> = {}, calls?: string[]): CoordClient {
  const client: Record<string, unknown> = {};
  for (const name of methods) {
    const target = (overrides[name] ?? db[name].bind(db)) as (...args: unknown[]) => unknown;
    client[name] = (...args: unknown[]): unknown => {
      calls?.push(name);
      return target(...args);
    };
  }
  return client as CoordClient;
}
