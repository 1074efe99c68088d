/**
 * Envelopes: the only thing actors exchange (DESIGN.md "Actors"). The runtime reads `to` (and
 * `control`) to route and queue an envelope; `msg` is opaque to it and must be plain data
 * that survives the transport's codec (structured clone or msgpack).
 */

/** An actor's address, unique in a node: e.g. `ns/r0`, `proxy`, `timer`, `host`. */
export type ActorId = string;

export type Envelope = {
  readonly from: ActorId;
  readonly to: ActorId;
  readonly msg: unknown;
  /**
   * Control envelopes (start, stop, configuration) are never dropped by a full mailbox;
   * ordinary peer envelopes may be (the protocols above retry), and the drop is counted.
   */
  readonly control?: true;
};

/** A batch of envelopes bound for one worker: what one postMessage carries. */
export type EnvelopeBatch = readonly Envelope[];

/** True for a value shaped like an envelope; batches from a peer port are checked with it. */
export function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['from'] === 'string' && typeof v['to'] === 'string' && 'msg' in v;
}
