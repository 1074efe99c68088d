/**
 * The sequential specification of a namespace for the linearizability checker: the real tree
 * (`applyOp` over `emptyTree`) applied one op at a time. The recorded output of an op is the
 * `outcome` of its `done` result, compared by deep equality on plain data (Uint8Array by bytes).
 *
 * Partitioning (P-compositionality): an op touches the top-level components of its paths
 * (`/k2/x` touches `k2`; a multi_cas touches those of all its guards and ops; a path at the root
 * itself touches everything). Ops of different components never affect each other's results
 * as long as no op reads the root, so each component is checked on its own. An op that touches
 * several components would be checked in each of them against a tree missing the others, which
 * is unsound; `makeTreeModel({ history })` therefore merges components that some op of the
 * history touches together (union-find) into one partition.
 */

import { encodeSnapshot } from '../../src/tree/snapshot.ts';
import { applyOp, emptyTree, type Tree } from '../../src/tree/tree.ts';
import { defaultTreeLimits, type TreeLimits } from '../../src/base/limits.ts';
import type { OpOutcome, SimpleOp, TreeOp } from '../../src/tree/ops.ts';
import { isReadOp } from '../../src/tree/ops.ts';
import type { Model } from './linearizability.ts';

/** Stands for "the root": touching it touches every component. */
export const ROOT_COMPONENT = '/';

export function topComponent(path: string): string {
  if (!path.startsWith('/') || path === '/') return ROOT_COMPONENT;
  const end = path.indexOf('/', 1);
  return end === -1 ? path.slice(1) : path.slice(1, end);
}

function simplePaths(op: SimpleOp): string[] {
  switch (op.type) {
    case 'set_union':
      return [...op.paths];
    case 'set_intersection':
    case 'set_difference':
    case 'set_symmetric_difference':
      return [op.path1, op.path2];
    case 'set_is_subset':
    case 'set_is_superset':
      return op.other.type === 'path' ? [op.path, op.other.path] : [op.path];
    default:
      return [op.path];
  }
}

/** Every path an op names (guards included). */
export function opPaths(op: TreeOp): string[] {
  if (op.type === 'multi_cas') return [...op.guards.map((guard) => guard.path), ...op.ops.flatMap(simplePaths)];
  // A lease op names no path; its ephemeral nodes are wherever their creates put them.
  if (op.type === 'lease_grant' || op.type === 'lease_keepalive' || op.type === 'lease_revoke') return [];
  return simplePaths(op);
}

/** The sorted set of top-level components an op touches (`/` when it touches the root). */
export function opComponents(op: TreeOp): string[] {
  return Array.from(new Set(opPaths(op).map(topComponent))).sort();
}

/** True when the op can change no state (reads only): a pending read can be dropped. */
export function isReadOnly(op: TreeOp): boolean {
  if (op.type === 'multi_cas') return op.ops.every((inner) => isReadOp(inner));
  return isReadOp(op);
}

// ---- equality ------------------------------------------------------------------------------

/** Deep equality on plain data: Uint8Array by bytes, arrays by element, objects by defined keys. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keysA = Object.keys(ra).filter((key) => ra[key] !== undefined);
  const keysB = Object.keys(rb).filter((key) => rb[key] !== undefined);
  if (keysA.length !== keysB.length) return false;
  for (const key of keysA) if (!deepEqual(ra[key], rb[key])) return false;
  return true;
}

/** A canonical string for plain data: sorted keys, Uint8Array as `0x` hex. */
export function canonical(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Uint8Array) return `0x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`).join(',')}}`;
  }
  return String(value);
}

// ---- the model -----------------------------------------------------------------------------

export type TreeModelOptions = {
  readonly limits?: TreeLimits;
  /** The inputs of the history to check: components touched together are merged. */
  readonly history?: readonly TreeOp[];
  /**
   * Top-level components left out of the check: ops there are dropped (their partition list is
   * empty). For state that changes with no client op, e.g. ephemeral nodes deleted by a lease's
   * expiry (./leases.ts). An op touching both such a component and another is a mistake of the
   * caller: it throws. (So would be one reading the root, which sees them: the VOPR's workload
   * never reads it.)
   */
  readonly excludedComponents?: readonly string[];
};

/** Union-find over component names. */
function mergedComponents(history: readonly TreeOp[], included: (component: string) => boolean): (component: string) => string {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let root = x;
    for (;;) {
      const up = parent.get(root);
      if (up === undefined || up === root) break;
      root = up;
    }
    // Path compression.
    let node = x;
    while (node !== root) {
      const up = parent.get(node) as string;
      parent.set(node, root);
      node = up;
    }
    return root;
  };
  const union = (a: string, b: string): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) return;
    // The smaller name becomes the root, so the result does not depend on the history's order.
    if (ra < rb) parent.set(rb, ra);
    else parent.set(ra, rb);
  };
  const all = new Set<string>();
  let touchesRoot = false;
  for (const op of history) {
    const components = opComponents(op).filter(included);
    for (const component of components) {
      all.add(component);
      if (!parent.has(component)) parent.set(component, component);
    }
    if (components.includes(ROOT_COMPONENT)) touchesRoot = true;
    for (let i = 1; i < components.length; i++) union(components[0] as string, components[i] as string);
  }
  if (touchesRoot) for (const component of all) union(ROOT_COMPONENT, component);
  return (component) => (touchesRoot ? ROOT_COMPONENT : parent.has(component) ? find(component) : component);
}

export function makeTreeModel(options: TreeModelOptions = {}): Model<Tree, TreeOp, OpOutcome> {
  const limits = options.limits ?? defaultTreeLimits;
  const keys = new WeakMap<Tree, string>();
  const excluded = new Set(options.excludedComponents ?? []);
  const included = (component: string): boolean => !excluded.has(component);
  const representative = options.history === undefined ? null : mergedComponents(options.history, included);
  return {
    init: () => emptyTree(),
    step(state, input, output) {
      const applied = applyOp(state, input, limits);
      return { ok: deepEqual(applied.outcome, output), state: applied.tree };
    },
    stepPending(state, input) {
      return applyOp(state, input, limits).tree;
    },
    key(state) {
      let key = keys.get(state);
      if (key === undefined) {
        key = Buffer.from(encodeSnapshot(state)).toString('latin1');
        keys.set(state, key);
      }
      return key;
    },
    partition(input) {
      const all = opComponents(input);
      const components = all.filter(included);
      if (components.length < all.length && components.length > 0) throw new RangeError(`op touches excluded and checked components: ${canonical(input)}`);
      if (representative === null) return components;
      return Array.from(new Set(components.map(representative))).sort();
    },
    describe(input, output) {
      return `${canonical(input)} -> ${canonical(output)}`;
    },
  };
}
