/**
 * The prompt wired to a node: results of the typed client shown the prompt's way, and the
 * node's status as lines. Shared by `npm start` and `haret start --prompt` / `haret cli`.
 */

import type { ProxyOutcome } from '../../actors/messages.ts';
import type { CallResult } from '../client/io.ts';
import type { AdminActorReport } from '../api/admin_wire.ts';
import type { HaretNode } from '../node/index.ts';

/** The proxy's own refusals as the prompt's `rejected` results. */
export function asCallResult(outcome: ProxyOutcome): CallResult {
  switch (outcome.type) {
    case 'unknown_namespace':
      return { type: 'rejected', outcome: { type: 'error', error: { code: 'invalid_request', reason: `no namespace ${outcome.ns}` } } };
    case 'invalid_call':
      return { type: 'rejected', outcome: { type: 'error', error: { code: 'invalid_request', reason: outcome.reason } } };
    default:
      return outcome;
  }
}

/** What a status line shows of an actor (the embedding API's report and the admin API's both fit). */
export type ActorLine = Omit<AdminActorReport, 'worker'>;

/** One actor as one aligned line: name, supervision state, role, protocol position, restarts. */
export function formatActorLine(actor: ActorLine): string {
  const position = actor.view === null ? '' : ` view ${actor.view} op ${actor.op} commit ${actor.commit}`;
  const role = actor.role ?? '-';
  const restarts = actor.restarts > 0 ? ` restarts ${actor.restarts}` : '';
  const failure = actor.failure === null ? '' : ` FAILED: ${actor.failure}`;
  const watches = actor.watches === undefined || actor.watches === null || actor.watches === 0 ? '' : ` watches ${actor.watches}`;
  return `${actor.actor.padEnd(14)} ${actor.state.padEnd(10)} ${role.padEnd(8)}${actor.status === null ? '' : ` ${actor.status}`}${position}${watches}${restarts}${failure}`;
}

export async function describeStatus(node: HaretNode): Promise<string> {
  const { actors } = await node.status();
  const address = node.clientApiAddress;
  const lines = actors.map(formatActorLine);
  if (address !== null) lines.unshift(`client API on ${address.host}:${address.port}`);
  return lines.join('\n');
}
