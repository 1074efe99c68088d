/**
 * A deliberately simple, mutable reference model of the versioned tree, written from
 * src/tree/README.md alone (not from the implementation). It is slow and obvious on purpose:
 *
 * - nodes are plain mutable objects, children a plain `Map`, queues arrays, sets arrays of
 *   distinct byte strings;
 * - a write bumps versions by walking the list of ancestors from the root to the node;
 * - a transaction deep-clones the whole tree, applies the ops to the clone and swaps it in
 *   only when every op succeeded.
 *
 * The property tests apply the same random ops to this model and to `applyOp` and require
 * identical outcomes (results and errors) and identical tree contents.
 */

import {
  defaultTreeLimits,
  treeErrors,
  type Bytes,
  type ListEntry,
  type NodeType,
  type OpOutcome,
  type OpResult,
  type SimpleOp,
  type TreeError,
  type TreeLimits,
  type TreeOp,
} from '../../src/tree/index.ts';

type ModelNode = {
  type: NodeType;
  version: number;
  /** directory */
  children: Map<string, ModelNode>;
  /** blob */
  blob: number[];
  /** queue, front first */
  queue: number[][];
  /** set: distinct members, kept in no particular order */
  members: number[][];
};

function newNode(type: NodeType): ModelNode {
  return { type, version: 0, children: new Map(), blob: [], queue: [], members: [] };
}

function cloneNode(node: ModelNode): ModelNode {
  const children = new Map<string, ModelNode>();
  for (const [name, child] of node.children) children.set(name, cloneNode(child));
  return {
    type: node.type,
    version: node.version,
    children,
    blob: [...node.blob],
    queue: node.queue.map((e) => [...e]),
    members: node.members.map((m) => [...m]),
  };
}

const toArray = (bytes: Bytes): number[] => Array.from(bytes);
const toBytes = (array: readonly number[]): Uint8Array => Uint8Array.from(array);
const sameBytes = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Ascending byte order: lexicographic over bytes, a proper prefix first. */
export function compareBytes(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Name order for list: the README says "ascending name order"; names are compared as strings. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hex(bytes: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += (bytes[i] ?? 0).toString(16).padStart(2, '0');
  return out;
}

function sortedDistinct(sets: readonly (readonly number[])[]): number[][] {
  const out: number[][] = [];
  for (const m of sets) if (!out.some((x) => sameBytes(x, m))) out.push([...m]);
  return out.sort(compareBytes);
}

function components(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

function prefix(parts: readonly string[], depth: number): string {
  return depth === 0 ? '/' : `/${parts.slice(0, depth).join('/')}`;
}

/** Thrown inside the model only; turned into an `error` outcome at the op boundary. */
class ModelFailure {
  readonly error: TreeError;
  constructor(error: TreeError) {
    this.error = error;
  }
}

function fail(error: TreeError): never {
  throw new ModelFailure(error);
}

/** One canonical line per node, pre-order, children by name: what both sides must agree on. */
export type CanonicalEntry = {
  path: string;
  type: NodeType;
  version: number;
  /** blob: hex bytes; queue: hex elements front first; set: hex members ascending; directory: null. */
  content: string | string[] | null;
};

export class ReferenceTree {
  private root: ModelNode = newNode('directory');

  // ---- lookups ------------------------------------------------------------------------

  /** The chain root..node, or an error: not_a_directory(the leaf ancestor) or does_not_exist(path). */
  private chain(path: string): ModelNode[] {
    const parts = components(path);
    const chain: ModelNode[] = [this.root];
    let cur = this.root;
    for (let i = 0; i < parts.length; i++) {
      if (cur.type !== 'directory') fail(treeErrors.notADirectory(prefix(parts, i)));
      const next = cur.children.get(parts[i] as string);
      if (next === undefined) fail(treeErrors.doesNotExist(path));
      chain.push(next);
      cur = next;
    }
    return chain;
  }

  private node(path: string): ModelNode {
    const chain = this.chain(path);
    return chain[chain.length - 1] as ModelNode;
  }

  private typed(path: string, type: NodeType): { node: ModelNode; chain: ModelNode[] } {
    const chain = this.chain(path);
    const node = chain[chain.length - 1] as ModelNode;
    if (node.type !== type) fail(treeErrors.wrongType(path, node.type));
    return { node, chain };
  }

  /** Guards: the version of the node, or null when it is missing (or below a leaf). */
  private versionOrNull(path: string): number | null {
    let cur: ModelNode | undefined = this.root;
    for (const part of components(path)) {
      if (cur === undefined || cur.type !== 'directory') return null;
      cur = cur.children.get(part);
    }
    return cur === undefined ? null : cur.version;
  }

  private static bump(chain: readonly ModelNode[]): void {
    for (const node of chain) node.version += 1;
  }

  private setMembers(path: string): number[][] {
    return this.typed(path, 'set').node.members;
  }

  // ---- ops ----------------------------------------------------------------------------

  apply(op: TreeOp, limits: TreeLimits = defaultTreeLimits): OpOutcome {
    if (op.type === 'multi_cas') {
      for (const guard of op.guards) {
        const actual = this.versionOrNull(guard.path);
        if (actual !== guard.version) {
          return { type: 'error', error: treeErrors.casFailed(guard.path, guard.version, actual) };
        }
      }
      const saved = this.root;
      this.root = cloneNode(saved);
      const results: OpResult[] = [];
      for (let i = 0; i < op.ops.length; i++) {
        try {
          results.push(this.simple(op.ops[i] as SimpleOp, limits));
        } catch (e) {
          this.root = saved;
          if (e instanceof ModelFailure) return { type: 'error', error: e.error, at: i };
          throw e;
        }
      }
      return { type: 'txn', results };
    }
    // A single op either fully succeeds or throws before changing anything, but clone anyway
    // so that the model stays obviously all-or-nothing.
    if (op.type === 'lease_grant' || op.type === 'lease_keepalive' || op.type === 'lease_revoke') {
      return { type: 'error', error: treeErrors.invalidRequest('lease operations apply to the store, not the bare tree') };
    }
    const saved = this.root;
    this.root = cloneNode(saved);
    try {
      return this.simple(op, limits);
    } catch (e) {
      this.root = saved;
      if (e instanceof ModelFailure) return { type: 'error', error: e.error };
      throw e;
    }
  }

  private simple(op: SimpleOp, limits: TreeLimits): OpResult {
    switch (op.type) {
      case 'create': {
        if (op.path === '/') fail(treeErrors.alreadyExists('/'));
        const parts = components(op.path);
        const existing: ModelNode[] = [this.root];
        let cur = this.root;
        let depth = 0;
        // Walk down as far as nodes exist.
        while (depth < parts.length) {
          if (cur.type !== 'directory') fail(treeErrors.notADirectory(prefix(parts, depth)));
          const next = cur.children.get(parts[depth] as string);
          if (next === undefined) break;
          existing.push(next);
          cur = next;
          depth++;
        }
        if (depth === parts.length) fail(treeErrors.alreadyExists(op.path));
        // `cur` is an existing directory that gains one new child.
        if (cur.children.size + 1 > limits.directoryChildrenMax) {
          fail(treeErrors.tooLarge('directory_children', limits.directoryChildrenMax));
        }
        for (let i = depth; i < parts.length; i++) {
          const child = newNode(i === parts.length - 1 ? op.nodeType : 'directory');
          cur.children.set(parts[i] as string, child);
          cur = child;
        }
        ReferenceTree.bump(existing);
        return { type: 'ok', version: 0 };
      }
      case 'delete': {
        if (op.path === '/') fail(treeErrors.cannotDeleteRoot());
        const chain = this.chain(op.path);
        const node = chain.pop() as ModelNode;
        const parent = chain[chain.length - 1] as ModelNode;
        const parts = components(op.path);
        parent.children.delete(parts[parts.length - 1] as string);
        ReferenceTree.bump(chain);
        return { type: 'ok', version: node.version };
      }
      case 'list': {
        const node = this.node(op.path);
        // README is silent on listing a leaf; the tests expect not_a_directory(path).
        if (node.type !== 'directory') fail(treeErrors.notADirectory(op.path));
        const entries: ListEntry[] = [];
        const walk = (dir: ModelNode, dirPath: string): void => {
          for (const name of [...dir.children.keys()].sort(compareNames)) {
            const child = dir.children.get(name) as ModelNode;
            const path = dirPath === '/' ? `/${name}` : `${dirPath}/${name}`;
            entries.push({ name, path, nodeType: child.type, version: child.version });
            if (op.recursive && child.type === 'directory') walk(child, path);
          }
        };
        walk(node, op.path);
        if (entries.length > limits.listEntriesMax) fail(treeErrors.tooLarge('list_entries', limits.listEntriesMax));
        return { type: 'list', entries, version: node.version };
      }
      case 'stat': {
        const node = this.node(op.path);
        const size =
          node.type === 'directory'
            ? node.children.size
            : node.type === 'blob'
              ? node.blob.length
              : node.type === 'queue'
                ? node.queue.length
                : node.members.length;
        return { type: 'stat', nodeType: node.type, version: node.version, size };
      }
      case 'blob_get': {
        const { node } = this.typed(op.path, 'blob');
        return { type: 'blob', value: toBytes(node.blob), version: node.version };
      }
      case 'blob_size': {
        const { node } = this.typed(op.path, 'blob');
        return { type: 'count', count: node.blob.length, version: node.version };
      }
      case 'blob_put': {
        const { node, chain } = this.typed(op.path, 'blob');
        const value = toArray(op.value);
        if (!sameBytes(node.blob, value)) {
          node.blob = value;
          ReferenceTree.bump(chain);
        }
        return { type: 'ok', version: node.version };
      }
      case 'queue_push': {
        const { node, chain } = this.typed(op.path, 'queue');
        if (node.queue.length + 1 > limits.collectionElementsMax) {
          fail(treeErrors.tooLarge('collection_elements', limits.collectionElementsMax));
        }
        node.queue.push(toArray(op.value));
        ReferenceTree.bump(chain);
        return { type: 'ok', version: node.version };
      }
      case 'queue_pop': {
        const { node, chain } = this.typed(op.path, 'queue');
        const first = node.queue.shift();
        if (first === undefined) return { type: 'element', value: null, version: node.version };
        ReferenceTree.bump(chain);
        return { type: 'element', value: toBytes(first), version: node.version };
      }
      case 'queue_front':
      case 'queue_back': {
        const { node } = this.typed(op.path, 'queue');
        const e = op.type === 'queue_front' ? node.queue[0] : node.queue[node.queue.length - 1];
        return { type: 'element', value: e === undefined ? null : toBytes(e), version: node.version };
      }
      case 'queue_len': {
        const { node } = this.typed(op.path, 'queue');
        return { type: 'count', count: node.queue.length, version: node.version };
      }
      case 'set_insert': {
        const { node, chain } = this.typed(op.path, 'set');
        const value = toArray(op.value);
        if (node.members.some((m) => sameBytes(m, value))) return { type: 'bool', value: false, version: node.version };
        if (node.members.length + 1 > limits.collectionElementsMax) {
          fail(treeErrors.tooLarge('collection_elements', limits.collectionElementsMax));
        }
        node.members.push(value);
        ReferenceTree.bump(chain);
        return { type: 'bool', value: true, version: node.version };
      }
      case 'set_remove': {
        const { node, chain } = this.typed(op.path, 'set');
        const value = toArray(op.value);
        const index = node.members.findIndex((m) => sameBytes(m, value));
        if (index < 0) return { type: 'bool', value: false, version: node.version };
        node.members.splice(index, 1);
        ReferenceTree.bump(chain);
        return { type: 'bool', value: true, version: node.version };
      }
      case 'set_contains': {
        const { node } = this.typed(op.path, 'set');
        const value = toArray(op.value);
        return { type: 'bool', value: node.members.some((m) => sameBytes(m, value)), version: node.version };
      }
      case 'set_union': {
        const all: number[][] = [];
        for (const path of op.paths) all.push(...this.setMembers(path));
        for (const literal of op.sets) all.push(...literal.map(toArray));
        return { type: 'set', members: sortedDistinct(all).map(toBytes) };
      }
      case 'set_intersection':
      case 'set_difference':
      case 'set_symmetric_difference': {
        const a = this.setMembers(op.path1);
        const b = this.setMembers(op.path2);
        const inA = (x: number[]): boolean => a.some((m) => sameBytes(m, x));
        const inB = (x: number[]): boolean => b.some((m) => sameBytes(m, x));
        const out =
          op.type === 'set_intersection'
            ? a.filter(inB)
            : op.type === 'set_difference'
              ? a.filter((x) => !inB(x))
              : [...a.filter((x) => !inB(x)), ...b.filter((x) => !inA(x))];
        return { type: 'set', members: sortedDistinct(out).map(toBytes) };
      }
      case 'set_is_subset':
      case 'set_is_superset': {
        const p = this.setMembers(op.path);
        const other = op.other.type === 'path' ? this.setMembers(op.other.path) : op.other.members.map(toArray);
        const within = (xs: number[][], ys: number[][]): boolean => xs.every((x) => ys.some((y) => sameBytes(x, y)));
        return { type: 'answer', value: op.type === 'set_is_subset' ? within(p, other) : within(other, p) };
      }
      default: {
        const never: never = op;
        throw new Error(`model: unknown op ${JSON.stringify(never)}`);
      }
    }
  }

  // ---- canonical dump -----------------------------------------------------------------

  canonicalEntries(): CanonicalEntry[] {
    const out: CanonicalEntry[] = [];
    const walk = (node: ModelNode, path: string): void => {
      out.push({
        path,
        type: node.type,
        version: node.version,
        content:
          node.type === 'directory'
            ? null
            : node.type === 'blob'
              ? hex(node.blob)
              : node.type === 'queue'
                ? node.queue.map(hex)
                : sortedDistinct(node.members).map(hex),
      });
      if (node.type === 'directory') {
        for (const name of [...node.children.keys()].sort(compareNames)) {
          walk(node.children.get(name) as ModelNode, path === '/' ? `/${name}` : `${path}/${name}`);
        }
      }
    };
    walk(this.root, '/');
    return out;
  }

  /** JSON of every node in pre-order (children by name) with type, version and content in hex. */
  encodeCanonical(): string {
    return JSON.stringify(this.canonicalEntries());
  }

  /** The current version of a node, or null; used by generators to make guards that often hold. */
  versionOf(path: string): number | null {
    return this.versionOrNull(path);
  }
}

export { hex as toHex };
