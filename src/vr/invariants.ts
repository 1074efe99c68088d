/**
 * Invariants of one replica's state, asserted after every step (in production too, as
 * TigerBeetle does). A violation is our bug: the assertion crashes the actor, and the
 * supervisor restarts it through recovery. Cross-replica invariants live in the simulator.
 */

import { assert } from '../base/assert.ts';
import { ackableOp, isPrimary } from './context.ts';
import { lastOp } from './log.ts';
import type { ReplicaState } from './state.ts';

export function assertInvariants(s: ReplicaState): void {
  assert(s.commit <= s.op, `commit ${s.commit} beyond op ${s.op}`);
  assert(s.op === lastOp(s.log), `op ${s.op} is not the log's last op ${lastOp(s.log)}`);
  assert(s.machine.appliedOp === s.commit, `applied ${s.machine.appliedOp} but committed ${s.commit}`);
  assert(s.log.start <= s.commit, `log truncated past commit: start ${s.log.start}, commit ${s.commit}`);
  assert(s.checkpoint.machine.appliedOp <= s.commit, 'checkpoint beyond commit');
  // An image (encoded here or handed in by checkpoint_encoded) is always of the current checkpoint.
  assert(s.checkpoint.image === null || s.checkpoint.image.op === s.checkpoint.machine.appliedOp, 'checkpoint image of another checkpoint');
  assert(s.lastNormalView <= s.view, `lastNormalView ${s.lastNormalView} beyond view ${s.view}`);
  if (s.status === 'normal' && isPrimary(s)) {
    assert(s.primary.acks[s.index] === ackableOp(s), 'primary does not count exactly what it may acknowledge');
    assert(s.stateTransfer === null, 'a primary never waits for state');
  }
  if (s.status === 'normal' && s.lastNormalView < s.view) {
    assert(s.stateTransfer !== null, 'a replica catching up with a view must be fetching its log');
    assert(!isPrimary(s), 'a primary holds its view\'s log');
  }
  if (s.config.durable) assert(s.durable.op <= s.op, `durable op ${s.durable.op} beyond op ${s.op}`);
  if (s.status === 'stopped') assert(s.op === 0 && s.commit === 0, 'a stopped replica holds nothing');
  if (!(s.status === 'normal' && isPrimary(s))) assert(s.primary.pending.size === 0, 'only a normal primary holds pending requests');
}
