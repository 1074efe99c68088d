/**
 * The admin API over TCP: the same framing as the client API (4-byte big-endian length +
 * msgpack), a separate port, and a small request set for operators: `status` (every actor),
 * `namespaces`, `primary {ns}`, `replica {actor}` (a replica's protocol state), `config` and
 * `metrics` (per-thread transport, mailbox and loop figures), and for a node with cluster
 * links `cluster_join {address}`, `cluster_status` and `namespace_create {ns, replicas?,
 * nodes?}`. Every request carries an `id` that its answer repeats. A node without cluster
 * links answers the cluster requests with `error {code: 'not_available'}`.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { encodeFrame, FrameDecoder } from '../api/frame.ts';
import type { HaretNode } from '../node/node.ts';
import { ClusterError } from '../node/cluster.ts';

export type AdminApiOptions = { readonly host?: string; readonly port?: number; readonly connectionsMax?: number; readonly idleTimeoutMs?: number };

export type AdminRequest =
  | { readonly type: 'status'; readonly id: number }
  | { readonly type: 'namespaces'; readonly id: number }
  | { readonly type: 'primary'; readonly id: number; readonly ns: string }
  | { readonly type: 'replica'; readonly id: number; readonly actor: string }
  | { readonly type: 'config'; readonly id: number }
  | { readonly type: 'metrics'; readonly id: number }
  | { readonly type: 'cluster_join'; readonly id: number; readonly address: string }
  | { readonly type: 'cluster_status'; readonly id: number }
  | { readonly type: 'namespace_create'; readonly id: number; readonly ns: string; readonly replicas: number; readonly nodes: readonly string[] };

export type AdminAnswer =
  | { readonly type: 'ok'; readonly id: number; readonly value: unknown }
  | { readonly type: 'error'; readonly id: number | null; readonly code: 'malformed' | 'not_available' | 'unknown_namespace' | 'namespace_exists' | 'unknown_node' | 'timeout' | 'failed'; readonly message: string };

const packr = new Packr({ useRecords: false, moreTypes: false });
const adminFrameBytesMax = 64 * 1024;

/** Untrusted bytes to a request, or a typed error; never throws. */
export function decodeAdminRequest(payload: Uint8Array): AdminRequest | AdminAnswer {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch {
    return { type: 'error', id: null, code: 'malformed', message: 'not msgpack' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { type: 'error', id: null, code: 'malformed', message: 'a request is a map' };
  const record = value as Record<string, unknown>;
  const id = record['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return { type: 'error', id: null, code: 'malformed', message: 'id must be a non-negative integer' };
  switch (record['type']) {
    case 'status':
    case 'namespaces':
    case 'config':
    case 'metrics':
    case 'cluster_status':
      return { type: record['type'], id };
    case 'cluster_join':
      return typeof record['address'] === 'string' && record['address'].length > 0 && record['address'].length <= 1024
        ? { type: 'cluster_join', id, address: record['address'] }
        : { type: 'error', id, code: 'malformed', message: 'cluster_join needs address (host:port)' };
    case 'namespace_create': {
      const replicas = record['replicas'] ?? 3;
      const nodes = record['nodes'] ?? [];
      if (typeof record['ns'] !== 'string' || typeof replicas !== 'number' || !Array.isArray(nodes) || nodes.length > 64 || !nodes.every((node) => typeof node === 'string')) {
        return { type: 'error', id, code: 'malformed', message: 'namespace_create needs ns, and optionally replicas (a number) and nodes (names)' };
      }
      return { type: 'namespace_create', id, ns: record['ns'], replicas, nodes: nodes as string[] };
    }
    case 'primary':
      return typeof record['ns'] === 'string' ? { type: 'primary', id, ns: record['ns'] } : { type: 'error', id, code: 'malformed', message: 'primary needs ns' };
    case 'replica':
      return typeof record['actor'] === 'string' ? { type: 'replica', id, actor: record['actor'] } : { type: 'error', id, code: 'malformed', message: 'replica needs actor' };
    default:
      return { type: 'error', id, code: 'malformed', message: `unknown request ${JSON.stringify(record['type'])}` };
  }
}

export function encodeAdminMessage(message: AdminRequest | AdminAnswer): Uint8Array {
  return encodeFrame(packr.pack(message));
}

export function decodeAdminAnswer(payload: Uint8Array): AdminAnswer | null {
  try {
    const value = packr.unpack(payload) as AdminAnswer;
    return typeof value === 'object' && value !== null && (value.type === 'ok' || value.type === 'error') ? value : null;
  } catch {
    return null;
  }
}

export class AdminServer {
  readonly #server: Server;
  readonly #node: HaretNode;
  readonly #sockets = new Set<Socket>();

  private constructor(node: HaretNode, server: Server) {
    this.#node = node;
    this.#server = server;
  }

  static start(node: HaretNode, options: AdminApiOptions = {}): Promise<AdminServer> {
    return new Promise((resolve, reject) => {
      let accept: (socket: Socket) => void = (socket) => socket.destroy();
      const server = createServer((socket) => accept(socket));
      const admin = new AdminServer(node, server);
      accept = (socket) => admin.#accept(socket, options);
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve(admin);
      });
    });
  }

  address(): { readonly host: string; readonly port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('admin server is not listening');
    return { host: address.address, port: address.port };
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket, options: AdminApiOptions): void {
    if (this.#sockets.size >= (options.connectionsMax ?? 64)) {
      socket.end(encodeAdminMessage({ type: 'error', id: null, code: 'failed', message: 'too many admin connections' }));
      return;
    }
    this.#sockets.add(socket);
    const decoder = new FrameDecoder({ frameBytesMax: adminFrameBytesMax });
    socket.setTimeout(options.idleTimeoutMs ?? 300_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === 'error') {
          socket.end(encodeAdminMessage({ type: 'error', id: null, code: 'malformed', message: event.message }));
          return;
        }
        const request = decodeAdminRequest(event.payload);
        if (request.type === 'ok' || request.type === 'error') {
          socket.write(encodeAdminMessage(request));
          continue;
        }
        void this.#answer(request).then((answer) => {
          if (socket.writable) socket.write(encodeAdminMessage(answer));
        });
      }
    });
  }

  async #answer(request: AdminRequest): Promise<AdminAnswer> {
    const node = this.#node;
    try {
      switch (request.type) {
        case 'status':
          return { type: 'ok', id: request.id, value: (await node.status()).actors.map((a) => ({ actor: a.actor, worker: a.worker, state: a.state, restarts: a.restarts, failure: a.failure, role: a.role, status: a.status, view: a.view, op: a.op, commit: a.commit })) };
        case 'namespaces':
          return { type: 'ok', id: request.id, value: node.namespaces };
        case 'primary': {
          if (!node.namespaces.includes(request.ns)) return { type: 'error', id: request.id, code: 'unknown_namespace', message: `no namespace ${request.ns}` };
          const index = await node.primaryOf(request.ns);
          return { type: 'ok', id: request.id, value: index === null ? null : { index, actor: node.replicaId(request.ns, index) } };
        }
        case 'replica':
          return { type: 'ok', id: request.id, value: await node.inspect(request.actor) };
        case 'config':
          return { type: 'ok', id: request.id, value: JSON.parse(JSON.stringify(node.options)) as unknown };
        case 'metrics':
          return { type: 'ok', id: request.id, value: (await node.status()).workers.map((w) => ({ worker: w.name, state: w.state, restarts: w.restarts, heapUsedBytes: w.detail?.heapUsedBytes ?? null, router: w.detail?.router ?? null, loop: w.detail?.loop ?? null, mailboxes: w.detail?.actors.map((a) => ({ actor: a.id, ...a.mailbox, processed: a.processed })) ?? [] })) };
        case 'cluster_join':
        case 'cluster_status':
        case 'namespace_create': {
          const cluster = node.cluster;
          if (cluster === null) return { type: 'error', id: request.id, code: 'not_available', message: 'this node has no cluster links (start it with a cluster address)' };
          if (request.type === 'cluster_status') return { type: 'ok', id: request.id, value: cluster.status() };
          if (request.type === 'cluster_join') return { type: 'ok', id: request.id, value: await cluster.join(request.address) };
          return { type: 'ok', id: request.id, value: await cluster.createNamespace(request.ns, { replicas: request.replicas, nodes: request.nodes }) };
        }
        default: {
          const never: never = request;
          return { type: 'error', id: null, code: 'malformed', message: `unknown request ${JSON.stringify(never)}` };
        }
      }
    } catch (error) {
      if (error instanceof ClusterError) return { type: 'error', id: request.id, code: error.code === 'invalid' ? 'malformed' : error.code, message: error.message };
      return { type: 'error', id: request.id, code: 'failed', message: error instanceof Error ? error.message : String(error) };
    }
  }
}
