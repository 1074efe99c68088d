/** The four kinds of tree node (DATA_MODEL.md): interior directories and typed leaves. */
export const nodeTypes = ['directory', 'blob', 'queue', 'set'] as const;

export type NodeType = (typeof nodeTypes)[number];

export function isNodeType(value: unknown): value is NodeType {
  return typeof value === 'string' && (nodeTypes as readonly string[]).includes(value);
}
