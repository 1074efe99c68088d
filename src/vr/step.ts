/**
 * The replica's transition function: `step(state, input) -> { state, effects }`, pure.
 *
 * Gate, then dispatch: a message is validated (shape, epoch, sender), then handed to the
 * handler of its type; anything ignored becomes a `trace` effect. One immer `produce` runs per
 * call, however many inputs `stepAll` is given; at its end the primary cuts what requests it
 * holds into batches. Invariants are asserted on the result.
 */

import { produce } from 'immer';
import { assertNever } from '../base/assert.ts';
import { beginStep, endStep, isNormalPrimary, isPrimary, trace, type Ctx, type WorkingState } from './context.ts';
import { notePromise } from './persist.ts';
import type { ReplicaEffect, ReplicaInput, StepResult } from './io.ts';
import { assertInvariants } from './invariants.ts';
import type { ReplicaMessage } from './messages.ts';
import { announceCommit, onCommit, onPersisted, onPrepare, onPrepareOk, onPrimaryTick, onRequest, preparePending } from './normal.ts';
import { onRecovery, onRecoveryResponse, onRecoveryTick, onStart } from './recovery.ts';
import { persistEffects } from './persist.ts';
import { advanceReads, onReadRound, onReadRoundOk } from './read_path.ts';
import { adoptCheckpointImage } from './suffix.ts';
import type { ReplicaState } from './state.ts';
import { onGetState, onNewState, onStateTransferTick } from './state_transfer.ts';
import { validateMessage } from './validate.ts';
import { onDoViewChange, onStartView, onStartViewChange, onViewTimerTick } from './view_change.ts';

export function step(state: ReplicaState, input: ReplicaInput): StepResult<ReplicaState> {
  return stepAll(state, [input]);
}

export function stepAll(state: ReplicaState, inputs: readonly ReplicaInput[]): StepResult<ReplicaState> {
  const out: ReplicaEffect[] = [];
  const logChange = { truncatedAfter: null as number | null };
  const next = produce(state, (draft) => {
    // The handlers work on a plain copy (context.ts explains why); the draft gets what changed.
    const ctx: Ctx = { s: beginStep(state), out, logChange, told: { commit: state.commit } };
    for (const input of inputs) dispatch(ctx, input);
    if (isNormalPrimary(ctx.s)) {
      preparePending(ctx);
      announceCommit(ctx);
      advanceReads(ctx);
    }
    notePromise(ctx);
    endStep(draft as unknown as WorkingState, state, ctx.s);
  });
  assertInvariants(next);
  // Durable mode: what this step changed, to be stored (acknowledged once reported stored).
  const persist = persistEffects(state, next, logChange.truncatedAfter);
  return { state: next, effects: persist.length === 0 ? out : [...persist, ...out] };
}

function dispatch(ctx: Ctx, input: ReplicaInput): void {
  switch (input.type) {
    case 'start':
      onStart(ctx, input);
      return;
    case 'tick':
      onTick(ctx, input.following === undefined || input.following <= 0);
      return;
    case 'receive':
      onReceive(ctx, input.message);
      return;
    case 'persisted':
      onPersisted(ctx, input.generation, input.op);
      return;
    case 'checkpoint_encoded':
      adoptCheckpointImage(ctx, input.image);
      return;
    default:
      assertNever(input, 'replica input');
  }
}

/** `lastOfMessage`: no tick of the same timer message follows this one (README rule 21). */
function onTick(ctx: Ctx, lastOfMessage: boolean): void {
  const s = ctx.s;
  switch (s.status) {
    case 'stopped':
      return;
    case 'recovering':
      onRecoveryTick(ctx);
      return;
    case 'view_change':
      onViewTimerTick(ctx);
      return;
    case 'normal':
      if (isPrimary(s)) {
        onPrimaryTick(ctx, lastOfMessage);
      } else {
        onStateTransferTick(ctx);
        onViewTimerTick(ctx);
      }
      return;
    default:
      assertNever(s.status, 'status');
  }
}

function onReceive(ctx: Ctx, message: ReplicaMessage): void {
  const s = ctx.s;
  const problem = validateMessage(message, s.config, s.index);
  if (problem !== null) {
    trace(ctx, 'drop_malformed', { reason: problem });
    return;
  }
  if (message.type === 'request') {
    onRequest(ctx, message);
    return;
  }
  if (message.epoch !== s.epoch) {
    trace(ctx, 'drop_other_epoch', { type: message.type, epoch: message.epoch });
    return;
  }
  if (s.status === 'stopped' || (s.status === 'recovering' && message.type !== 'recovery_response')) {
    // VRR §4.3: a recovering replica takes part in nothing until it has recovered.
    trace(ctx, 'drop_not_participating', { type: message.type, status: s.status });
    return;
  }
  switch (message.type) {
    case 'prepare':
      onPrepare(ctx, message);
      return;
    case 'prepare_ok':
      onPrepareOk(ctx, message);
      return;
    case 'commit':
      onCommit(ctx, message);
      return;
    case 'read_round':
      onReadRound(ctx, message);
      return;
    case 'read_round_ok':
      onReadRoundOk(ctx, message);
      return;
    case 'start_view_change':
      onStartViewChange(ctx, message);
      return;
    case 'do_view_change':
      onDoViewChange(ctx, message);
      return;
    case 'start_view':
      onStartView(ctx, message);
      return;
    case 'recovery':
      onRecovery(ctx, message);
      return;
    case 'recovery_response':
      onRecoveryResponse(ctx, message);
      return;
    case 'get_state':
      onGetState(ctx, message);
      return;
    case 'new_state':
      onNewState(ctx, message);
      return;
    default:
      assertNever(message, 'message');
  }
}
