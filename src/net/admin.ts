/**
 * The admin API over TCP (protocol: src/api/admin_wire.ts): `status` (every actor),
 * `namespaces`, `primary {ns}`, `replica {actor}` (a replica's protocol state), `config` and
 * `metrics` (per-thread transport, mailbox and loop figures), and for a node with cluster
 * links `cluster_join {address}`, `cluster_status` and `namespace_create {ns, replicas?,
 * nodes?}`. A node without cluster links answers the cluster requests with
 * `error {code: 'not_available'}`.
 *
 * The server knows the node only as an `AdminBackend`: what it asks of it, typed by shape, so
 * src/net imports nothing of src/node (HaretNode satisfies it as it is).
 */

import { createServer, type Server, type Socket } from 'node:net';
import { adminErrorAnswer, adminFrameBytesMax, decodeAdminRequest, encodeAdminMessage, type AdminActorReport, type AdminAnswer, type AdminRequest } from '../api/admin_wire.ts';
import { assertNever } from '../base/assert.ts';
import { FramedSocket } from './framed_socket.ts';

export type AdminApiOptions = { readonly host?: string; readonly port?: number; readonly connectionsMax?: number; readonly idleTimeoutMs?: number };

/** One worker thread as `metrics` reports it. */
export type AdminWorkerReport = {
  readonly name: string;
  readonly state: string;
  readonly restarts: number;
  readonly detail: {
    readonly heapUsedBytes: number;
    readonly router: unknown;
    readonly loop: unknown;
    readonly actors: readonly { readonly id: string; readonly mailbox: Readonly<Record<string, number>>; readonly processed: number }[];
  } | null;
};

/** The cluster operations of a node with cluster links. */
export type AdminCluster = {
  status(): unknown;
  join(address: string): Promise<unknown>;
  createNamespace(name: string, options: { readonly replicas: number; readonly nodes: readonly string[] }): Promise<unknown>;
};

/** What the admin server asks of its node. */
export type AdminBackend = {
  readonly namespaces: readonly string[];
  /** The node's resolved options (answered as JSON). */
  readonly options: unknown;
  /** Null for a node without cluster links. */
  readonly cluster: AdminCluster | null;
  status(): Promise<{ readonly actors: readonly AdminActorReport[]; readonly workers: readonly AdminWorkerReport[] }>;
  primaryOf(ns: string): Promise<number | null>;
  replicaId(ns: string, index: number): string;
  inspect(actor: string): Promise<unknown>;
};

/** Answers an admin client has not read yet: past this it is not read until they drain. */
const writeBufferBytesMax = 16 * 1024 * 1024;
/** A refused or failed connection is destroyed this long after its last words at the latest. */
const closeGraceMs = 1_000;

export class AdminServer {
  readonly #server: Server;
  readonly #node: AdminBackend;
  readonly #options: AdminApiOptions;
  /** Every connection, served or refused, until it closes. */
  readonly #connections = new Set<FramedSocket>();
  #served = 0;

  private constructor(node: AdminBackend, server: Server, options: AdminApiOptions) {
    this.#node = node;
    this.#server = server;
    this.#options = options;
  }

  static start(node: AdminBackend, options: AdminApiOptions = {}): Promise<AdminServer> {
    return new Promise((resolve, reject) => {
      let accept: (socket: Socket) => void = (socket) => socket.destroy();
      const server = createServer((socket) => accept(socket));
      const admin = new AdminServer(node, server, options);
      accept = (socket) => admin.#accept(socket);
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
    for (const connection of this.#connections) connection.destroy('local', 'the admin server is closing');
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const refused = this.#served >= (this.#options.connectionsMax ?? 64);
    const framed: FramedSocket = new FramedSocket(
      socket,
      { frameBytesMax: adminFrameBytesMax, idleTimeoutMs: this.#options.idleTimeoutMs ?? 300_000, writeBufferBytesMax },
      {
        onFrame: (payload) => this.#onRequest(framed, payload),
        onFrameError: (_code, message) => framed.lastWords(encodeAdminMessage({ type: 'error', id: null, code: 'malformed', message }), closeGraceMs),
        onClose: () => {
          this.#connections.delete(framed);
          if (!refused) this.#served -= 1;
        },
      },
    );
    this.#connections.add(framed);
    if (refused) {
      framed.lastWords(encodeAdminMessage({ type: 'error', id: null, code: 'failed', message: 'too many admin connections' }), closeGraceMs);
      return;
    }
    this.#served += 1;
  }

  #onRequest(framed: FramedSocket, payload: Uint8Array): void {
    const request = decodeAdminRequest(payload);
    if (request.type === 'ok' || request.type === 'error') {
      framed.write(encodeAdminMessage(request));
      return;
    }
    void this.#answer(request).then((answer) => framed.write(encodeAdminMessage(answer)));
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
        default:
          return assertNever(request, 'admin request');
      }
    } catch (error) {
      return adminErrorAnswer(request.id, error);
    }
  }
}
