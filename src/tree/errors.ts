/**
 * Typed, stable errors of the tree (DATA_MODEL.md "Errors").
 *
 * Errors are plain data tagged by `code` so they can sit in a log entry, cross a worker
 * boundary and go over the wire unchanged. The service errors (`not_primary`, `timeout`,
 * `unknown_namespace`, `session_expired`) are produced outside the tree and live in src/api.
 */

import { assertNever } from '../base/assert.ts';
import type { NodeType } from './node_type.ts';

/** Names the quantity a `too_large` error refers to. */
export type LimitName =
  | 'value_bytes'
  | 'path_bytes'
  | 'path_depth'
  | 'component_bytes'
  | 'collection_elements'
  | 'txn_ops'
  | 'txn_guards'
  | 'union_operands'
  | 'request_bytes'
  | 'list_entries'
  | 'directory_children'
  | 'leases'
  | 'leases_per_client'
  | 'lease_nodes'
  | 'keepalive_ids'
  | 'sequence';

export type TreeError =
  | { readonly code: 'already_exists'; readonly path: string }
  | { readonly code: 'does_not_exist'; readonly path: string }
  | { readonly code: 'wrong_type'; readonly path: string; readonly actual: NodeType }
  | { readonly code: 'not_a_directory'; readonly path: string }
  | { readonly code: 'bad_path'; readonly reason: string }
  | { readonly code: 'cannot_delete_root' }
  | { readonly code: 'cas_failed'; readonly path: string; readonly expected: number; readonly actual: number | null }
  | { readonly code: 'too_large'; readonly what: LimitName; readonly limit: number }
  | { readonly code: 'invalid_request'; readonly reason: string }
  /** The lease does not exist (never granted, expired or revoked). */
  | { readonly code: 'no_such_lease'; readonly id: number }
  /** The lease exists but another client owns it. */
  | { readonly code: 'lease_not_owned'; readonly id: number };

export type TreeErrorCode = TreeError['code'];

export const treeErrors = {
  alreadyExists: (path: string): TreeError => ({ code: 'already_exists', path }),
  doesNotExist: (path: string): TreeError => ({ code: 'does_not_exist', path }),
  wrongType: (path: string, actual: NodeType): TreeError => ({ code: 'wrong_type', path, actual }),
  notADirectory: (path: string): TreeError => ({ code: 'not_a_directory', path }),
  badPath: (reason: string): TreeError => ({ code: 'bad_path', reason }),
  cannotDeleteRoot: (): TreeError => ({ code: 'cannot_delete_root' }),
  /** `actual` is null when the guarded path does not exist. */
  casFailed: (path: string, expected: number, actual: number | null): TreeError => ({
    code: 'cas_failed',
    path,
    expected,
    actual,
  }),
  tooLarge: (what: LimitName, limit: number): TreeError => ({ code: 'too_large', what, limit }),
  invalidRequest: (reason: string): TreeError => ({ code: 'invalid_request', reason }),
  noSuchLease: (id: number): TreeError => ({ code: 'no_such_lease', id }),
  leaseNotOwned: (id: number): TreeError => ({ code: 'lease_not_owned', id }),
} as const;

/** A one-line human rendering, for CLIs and logs. */
export function describeTreeError(error: TreeError): string {
  switch (error.code) {
    case 'already_exists':
      return `already exists: ${error.path}`;
    case 'does_not_exist':
      return `does not exist: ${error.path}`;
    case 'wrong_type':
      return `wrong type: ${error.path} is a ${error.actual}`;
    case 'not_a_directory':
      return `not a directory: ${error.path}`;
    case 'bad_path':
      return `bad path: ${error.reason}`;
    case 'cannot_delete_root':
      return 'cannot delete the root directory';
    case 'cas_failed':
      return `cas failed: ${error.path} expected version ${error.expected}, actual ${error.actual ?? 'absent'}`;
    case 'too_large':
      return `too large: ${error.what} exceeds ${error.limit}`;
    case 'invalid_request':
      return `invalid request: ${error.reason}`;
    case 'no_such_lease':
      return `no such lease: ${error.id} (never granted, expired or revoked)`;
    case 'lease_not_owned':
      return `lease ${error.id} belongs to another client`;
    default:
      return assertNever(error, 'tree error');
  }
}
