/**
 * A cheap estimate of a request's encoded size, for bounding batches (`batchBytesMax`). It
 * counts the bytes that dominate (values, members, paths) plus a fixed overhead per part.
 */

import type { SimpleOp, TreeOp } from '../tree/ops.ts';
import type { Request } from './messages.ts';

const overhead = 16;

export function requestBytes(request: Request): number {
  return overhead + request.clientId.length + (request.op.type === 'tree' ? opBytes(request.op.op) : 0);
}

function opBytes(op: TreeOp): number {
  if (op.type === 'multi_cas') {
    let total = overhead;
    for (const guard of op.guards) total += overhead + guard.path.length;
    for (const inner of op.ops) total += simpleOpBytes(inner);
    return total;
  }
  if (op.type === 'lease_keepalive') return overhead + 8 * op.ids.length;
  if (op.type === 'lease_grant' || op.type === 'lease_revoke') return overhead;
  return simpleOpBytes(op);
}

function simpleOpBytes(op: SimpleOp): number {
  let total = overhead;
  if ('path' in op) total += op.path.length;
  if ('value' in op) total += op.value.length;
  if ('path1' in op) total += op.path1.length + op.path2.length;
  if (op.type === 'set_union') {
    for (const path of op.paths) total += overhead + path.length;
    for (const set of op.sets) for (const member of set) total += overhead + member.length;
  }
  if ((op.type === 'set_is_subset' || op.type === 'set_is_superset') && op.other.type === 'literal') {
    for (const member of op.other.members) total += overhead + member.length;
  }
  return total;
}
