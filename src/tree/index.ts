/** Public surface of the versioned tree. */
export * from './node_type.ts';
export * from './errors.ts';
export * from './ops.ts';
export * from '../base/limits.ts';
export { checkPath, rootPath, splitPath, joinPath } from './path.ts';
export { emptyTree, applyOp, nodeCount, type Tree } from './tree.ts';
export { validateOp, type ValidationResult } from './validate.ts';
export { encodeSnapshot, decodeSnapshot, treesEqual, type SnapshotDecodeResult } from './snapshot.ts';
export { treeChanges, entryChanges, changeMatches, type TreeChange, type TreeChangeKind } from './events.ts';
