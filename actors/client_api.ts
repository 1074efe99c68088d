/**
 * The TCP client API's actor on the main thread (`host/net`). The TCP server sends each
 * remote client's request to a replica as this actor, so the replica's answer comes back here
 * like any client's; this actor hands it to the server, which writes it to every connection
 * waiting for it. Remote watches the same way: the server subscribes as this actor, and the
 * replicas' watch notices come back here for the server to route to their connections. It
 * knows the server only through `ClientApiSink` (the shell's server implements it): actors
 * do not import the shell.
 */

import type { Actor, ActorFactory } from '../runtime/actor.ts';
import type { ActorId, Envelope } from '../runtime/envelope.ts';
import type { ClientAnswer } from '../src/vr/messages.ts';
import { watchNoticeTypes, type WatchNotice } from '../src/watch/messages.ts';

/** What the actor needs of the TCP server. */
export type ClientApiSink = {
  /** A replica's answer to a request the server sent as this actor. */
  onAnswer(from: ActorId, answer: ClientAnswer): void;
  /** A replica's notice for a watch the server subscribed as this actor. */
  onWatchNotice(from: ActorId, notice: WatchNotice): void;
  /**
   * The end of a batch: what the answers and notices wrote leaves now. On a main_thread node the
   * replicas drain after this actor in the same turn (a backup applying the commit), and the
   * answers must not wait for them.
   */
  endOfBatch(): void;
  /** The server's counters, reported in the actor's status. */
  counters(): Readonly<Record<string, number>>;
};

/** The tag of a watch notice; the server checks its watch id against the watches it relays. */
function isWatchNotice(msg: unknown): msg is WatchNotice {
  if (typeof msg !== 'object' || msg === null || !('type' in msg) || typeof msg.type !== 'string') return false;
  return watchNoticeTypes.has(msg.type);
}

/** The tag of an answer; the server checks the rest (client id, request number) against what it waits for. */
function isClientAnswer(msg: unknown): msg is ClientAnswer {
  if (typeof msg !== 'object' || msg === null || !('type' in msg)) return false;
  return msg.type === 'reply' || msg.type === 'not_primary' || msg.type === 'busy';
}

export function clientApiActor(sink: ClientApiSink): ActorFactory {
  return (): Actor => {
    /** Envelopes that are neither a replica's answer nor a watch notice: a bug or a bad peer, dropped and counted (convention 6). */
    let malformed = 0;
    return {
      receive(batch: readonly Envelope[]) {
        for (const envelope of batch) {
          if (isClientAnswer(envelope.msg)) sink.onAnswer(envelope.from, envelope.msg);
          else if (isWatchNotice(envelope.msg)) sink.onWatchNotice(envelope.from, envelope.msg);
          else malformed += 1;
        }
        sink.endOfBatch();
      },
      status: () => ({ role: 'client_api', ...sink.counters(), malformed }),
    };
  };
}
