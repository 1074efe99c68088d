/** Reading a replica's actor id (`<namespace>/r<index>`, src/node/layout.ts `replicaId`) back. */

export type ReplicaName = { readonly ns: string; readonly index: number };

/** The namespace and index of a replica actor id, or null for another actor (or a namespace not in `namespaces`). */
export function parseReplicaId(actor: string, namespaces: ReadonlySet<string>): ReplicaName | null {
  const match = /^(.+)\/r(\d+)$/.exec(actor);
  if (match === null) return null;
  const ns = match[1] as string;
  return namespaces.has(ns) ? { ns, index: Number(match[2]) } : null;
}

/** The namespace part of a replica actor id, whatever the namespace, or null for another actor. */
export function replicaNamespace(actor: string): string | null {
  return /^(.+)\/r\d+$/.exec(actor)?.[1] ?? null;
}
