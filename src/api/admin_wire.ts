/**
 * The admin protocol (served by src/net/admin.ts, spoken by src/net/admin_client.ts): the
 * client protocol's framing (4-byte big-endian length + msgpack), a separate port, and a small
 * request set for operators. Every request carries an `id` that its answer repeats. Pure.
 *
 *   hello {token?}     the first request on a connection (answered `ok {value: nil}`)
 *   status, health, namespaces, config, metrics, cluster_status     {type, id}
 *   primary {ns}   replica {actor}   cluster_join {address}   snapshot {ns}
 *   namespace_create {ns, replicas? (default 3), nodes? (default: the members)}
 *
 * Answers: `ok {id, value}` or `error {id, code, message}`; `id` is nil when the request's id
 * could not be read (or for a connection-level refusal).
 *
 * Authentication (issue 12): a node with an admin token answers nothing before a `hello`
 * carrying it; a missing or wrong token, or any other request first, is answered
 * `error {code: 'unauthenticated'}` and the connection is closed. A node without a token
 * accepts a hello with or without one.
 */

import { Packr } from 'msgpackr';
import { assertNever } from '../base/assert.ts';
import { FieldReader, isCounter, isPlainObject, msgpackWords, own, type Fields } from '../base/fields.ts';
import { encodeFrame } from './frame.ts';

/** One actor as the `status` answer reports it (the embedding API's ActorReport fits). */
export type AdminActorReport = {
  readonly actor: string;
  readonly worker: string;
  readonly state: string;
  readonly restarts: number;
  readonly failure: string | null;
  readonly role: string | null;
  readonly status: string | null;
  readonly view: number | null;
  readonly op: number | null;
  readonly commit: number | null;
  /** Replicas: the watches it serves; null for other actors (and from nodes before watches). */
  readonly watches?: number | null;
  /** Replicas: live leases in the namespace at this replica; null for other actors (absent from nodes before leases). */
  readonly leases?: number | null;
};

export type AdminRequest =
  | { readonly type: 'hello'; readonly id: number; readonly token?: string }
  | { readonly type: 'status'; readonly id: number }
  /** Whether the node serves: {serving, problems} (NodeStatus), one line per problem. */
  | { readonly type: 'health'; readonly id: number }
  | { readonly type: 'namespaces'; readonly id: number }
  | { readonly type: 'primary'; readonly id: number; readonly ns: string }
  | { readonly type: 'replica'; readonly id: number; readonly actor: string }
  | { readonly type: 'config'; readonly id: number }
  | { readonly type: 'metrics'; readonly id: number }
  | { readonly type: 'cluster_join'; readonly id: number; readonly address: string }
  | { readonly type: 'cluster_status'; readonly id: number }
  | { readonly type: 'namespace_create'; readonly id: number; readonly ns: string; readonly replicas: number; readonly nodes: readonly string[] }
  /** A backup of a namespace: answered with {ns, op, file} (file: a checksummed checkpoint file, at most adminAnswerBytesMax). */
  | { readonly type: 'snapshot'; readonly id: number; readonly ns: string };

export const adminErrorCodes = ['malformed', 'not_available', 'unknown_namespace', 'namespace_exists', 'unknown_node', 'timeout', 'failed', 'unauthenticated'] as const;
export type AdminErrorCode = (typeof adminErrorCodes)[number];

export type AdminAnswer =
  | { readonly type: 'ok'; readonly id: number; readonly value: unknown }
  | { readonly type: 'error'; readonly id: number | null; readonly code: AdminErrorCode; readonly message: string };

/**
 * A refused cluster operation (join, namespace creation), thrown by the node's cluster and
 * answered by the admin server with the code of the same name (`invalid` as `malformed`).
 */
export class ClusterError extends Error {
  readonly code: 'unknown_node' | 'namespace_exists' | 'invalid' | 'timeout';
  constructor(code: ClusterError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Largest request payload the admin server reads. */
export const adminFrameBytesMax = 64 * 1024;
/** Largest answer payload the admin client reads (metrics and status of many actors). */
export const adminAnswerBytesMax = 64 * 1024 * 1024;

/** Bounds on request fields: namespace and node names are 1-64 characters wherever they are made. */
const nsCharsMax = 64;
const nodeCharsMax = 64;
const nodesMax = 64;
const actorCharsMax = 256;
const addressCharsMax = 1024;
const replicasMax = 255;
const messageCharsMax = 64 * 1024;
/** An admin token, as the client port's (src/api/wire.ts `tokenLengthMax`). */
export const adminTokenLengthMax = 1024;

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Thrown by the readers below; becomes a `malformed` answer. */
class Malformed extends Error {}

const reader = new FieldReader((message) => {
  throw new Malformed(message);
}, msgpackWords);

const requestTypes = ['hello', 'status', 'health', 'namespaces', 'primary', 'replica', 'config', 'metrics', 'cluster_join', 'cluster_status', 'namespace_create', 'snapshot'] as const;

/** Untrusted bytes to a request, or a typed error answer; never throws. */
export function decodeAdminRequest(payload: Uint8Array): AdminRequest | AdminAnswer {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch {
    return malformed(null, 'not msgpack');
  }
  if (!isPlainObject(value)) return malformed(null, 'a request is a map');
  const rawId = own(value, 'id');
  if (!isCounter(rawId)) return malformed(null, 'id must be a non-negative integer');
  const id = rawId + 0;
  try {
    return readRequest(value, id);
  } catch (error) {
    if (error instanceof Malformed) return malformed(id, error.message);
    throw error;
  }
}

function readRequest(fields: Fields, id: number): AdminRequest {
  const type = reader.oneOf(fields, 'type', '', requestTypes);
  switch (type) {
    case 'hello': {
      const token = reader.optional(fields, 'token');
      if (token === undefined || token === null) return { type, id };
      return { type, id, token: reader.stringValue(token, 'token', 1, adminTokenLengthMax) };
    }
    case 'status':
    case 'health':
    case 'namespaces':
    case 'config':
    case 'metrics':
    case 'cluster_status':
      return { type, id };
    case 'primary':
    case 'snapshot':
      return { type, id, ns: reader.string(fields, 'ns', '', 1, nsCharsMax) };
    case 'replica':
      return { type, id, actor: reader.string(fields, 'actor', '', 1, actorCharsMax) };
    case 'cluster_join':
      return { type, id, address: reader.string(fields, 'address', '', 1, addressCharsMax) };
    case 'namespace_create': {
      const ns = reader.string(fields, 'ns', '', 1, nsCharsMax);
      const replicasField = reader.optional(fields, 'replicas');
      const replicas = replicasField === undefined ? 3 : reader.integerValue(replicasField, 'replicas', 1, replicasMax);
      const nodesField = reader.optional(fields, 'nodes');
      const nodes = nodesField === undefined ? [] : reader.arrayValue(nodesField, 'nodes', nodesMax).map((node, index) => reader.stringValue(node, `nodes[${index}]`, 1, nodeCharsMax));
      return { type, id, ns, replicas, nodes };
    }
    default:
      return assertNever(type, 'admin request type');
  }
}

function malformed(id: number | null, message: string): AdminAnswer {
  return { type: 'error', id, code: 'malformed', message };
}

/** One frame (prefix included) carrying a request or an answer. */
export function encodeAdminMessage(message: AdminRequest | AdminAnswer): Uint8Array {
  return encodeFrame(packr.pack(message));
}

/** An answer from the server, or null for anything that is not one; never throws. */
export function decodeAdminAnswer(payload: Uint8Array): AdminAnswer | null {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch {
    return null;
  }
  if (!isPlainObject(value)) return null;
  try {
    const type = reader.oneOf(value, 'type', '', ['ok', 'error']);
    const rawId = reader.optional(value, 'id');
    if (type === 'ok') return { type, id: reader.counterValue(rawId, 'id'), value: own(value, 'value') ?? null };
    const id = rawId === undefined || rawId === null ? null : reader.counterValue(rawId, 'id');
    return { type, id, code: reader.oneOf(value, 'code', '', adminErrorCodes), message: reader.string(value, 'message', '', 0, messageCharsMax) };
  } catch (error) {
    if (error instanceof Malformed) return null;
    throw error;
  }
}

/** The answer to a request whose handling threw: a cluster refusal keeps its code, anything else is `failed`. */
export function adminErrorAnswer(id: number, error: unknown): AdminAnswer {
  if (error instanceof ClusterError) return { type: 'error', id, code: error.code === 'invalid' ? 'malformed' : error.code, message: error.message };
  return { type: 'error', id, code: 'failed', message: error instanceof Error ? error.message : String(error) };
}
