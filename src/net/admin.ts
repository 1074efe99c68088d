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
 *
 * Security (issue 12). The admin port can create namespaces, make the node dial any address
 * and read the node's whole configuration, so:
 * - with `authToken`, nothing is answered before a `hello` carrying it (compared in constant
 *   time, as the client port's): a missing or wrong token, or any other request first, gets
 *   `error {code: unauthenticated}` and a close; optional TLS (`tls`);
 * - no connection can hold a slot for long: the first request (the hello) must come within
 *   `helloTimeoutMs`, and a connection idle for `idleTimeoutMs` (seconds, not minutes) with
 *   nothing pending is closed;
 * - one address holds at most `connectionsPerAddressMax` connections, so one misbehaving (or
 *   hostile) peer cannot take all `connectionsMax` and lock the operator out.
 */

import { AuthToken } from './auth_token.ts';
import type { Server, Socket } from 'node:net';
import { adminAnswerBytesMax, adminErrorAnswer, adminFrameBytesMax, adminTokenLengthMax, decodeAdminRequest, encodeAdminMessage, type AdminActorReport, type AdminAnswer, type AdminRequest } from '../api/admin_wire.ts';
import { assertNever } from '../base/assert.ts';
import { FramedSocket } from './framed_socket.ts';
import { createServer, type TlsServerOptions } from './tls.ts';

export type AdminApiOptions = {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port (see `address`). */
  readonly port?: number;
  /** Connections served at once; one more is answered `failed` and closed. Default 64. */
  readonly connectionsMax?: number;
  /** Connections served at once from one remote address. Default 8. */
  readonly connectionsPerAddressMax?: number;
  /** The first request (the hello) must arrive within this long, TLS handshake included. Default 5 s. */
  readonly helloTimeoutMs?: number;
  /** A connection without traffic for this long, with no request pending, is closed. Default 30 s. */
  readonly idleTimeoutMs?: number;
  /** Serve TLS with this certificate. Absent: plaintext. */
  readonly tls?: TlsServerOptions;
  /** Every connection must open with `hello {token}` carrying this (1..1024 characters). Absent: no token is asked for. */
  readonly authToken?: string;
};

const defaults = { connectionsMax: 64, connectionsPerAddressMax: 8, helloTimeoutMs: 5_000, idleTimeoutMs: 30_000 } as const;

/** One served connection. */
type AdminConnection = {
  readonly framed: FramedSocket;
  readonly address: string;
  /** A valid first request (with a token configured: a hello with the token) arrived. */
  authenticated: boolean;
  /** A hello was received (a second one is refused). */
  greeted: boolean;
  /** Requests being answered: an idle connection with some pending is not closed. */
  pending: number;
  /** Holds a slot (served, and not yet being closed). */
  holdsSlot: boolean;
};

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
  status(): Promise<{ readonly actors: readonly AdminActorReport[]; readonly workers: readonly AdminWorkerReport[]; readonly serving: boolean; readonly problems: readonly string[] }>;
  primaryOf(ns: string): Promise<number | null>;
  replicaId(ns: string, index: number): string;
  inspect(actor: string): Promise<unknown>;
  /** A backup of a namespace (src/node/backup.ts). */
  snapshot(ns: string): Promise<{ readonly ns: string; readonly op: number; readonly file: Uint8Array }>;
};

/** Answers an admin client has not read yet: past this it is not read until they drain. */
const writeBufferBytesMax = 16 * 1024 * 1024;
/** A refused or failed connection is destroyed this long after its last words at the latest. */
const closeGraceMs = 1_000;

export class AdminServer {
  readonly #server: Server;
  readonly #node: AdminBackend;
  readonly #options: Required<Pick<AdminApiOptions, 'connectionsMax' | 'connectionsPerAddressMax' | 'helloTimeoutMs' | 'idleTimeoutMs'>>;
  /** SHA-256 of the admin token, or null when none is configured. */
  readonly #token: AuthToken | null;
  /** Every connection, served or refused, until it closes. */
  readonly #connections = new Set<FramedSocket>();
  /** Served connections by remote address. */
  readonly #perAddress = new Map<string, number>();
  #served = 0;
  readonly counters = { served: 0, refused: 0, refusedPerAddress: 0, unauthenticated: 0, helloTimeouts: 0, idleClosed: 0 };

  private constructor(node: AdminBackend, server: Server, options: AdminApiOptions) {
    this.#node = node;
    this.#server = server;
    this.#options = {
      connectionsMax: positive(options.connectionsMax, defaults.connectionsMax, 'connectionsMax'),
      connectionsPerAddressMax: positive(options.connectionsPerAddressMax, defaults.connectionsPerAddressMax, 'connectionsPerAddressMax'),
      helloTimeoutMs: positive(options.helloTimeoutMs, defaults.helloTimeoutMs, 'helloTimeoutMs'),
      idleTimeoutMs: positive(options.idleTimeoutMs, defaults.idleTimeoutMs, 'idleTimeoutMs'),
    };
    this.#token = options.authToken === undefined ? null : new AuthToken(options.authToken, adminTokenLengthMax, 'admin authToken');
  }

  static start(node: AdminBackend, options: AdminApiOptions = {}): Promise<AdminServer> {
    return new Promise((resolve, reject) => {
      let accept: (socket: Socket) => void = (socket) => socket.destroy();
      let admin: AdminServer;
      let server: Server;
      try {
        server = createServer(
          {
            ...(options.tls === undefined ? {} : { tls: options.tls }),
            handshakeTimeoutMs: options.helloTimeoutMs ?? defaults.helloTimeoutMs,
            socketsMax: (options.connectionsMax ?? defaults.connectionsMax) + refusalSocketsMax,
          },
          (socket) => accept(socket),
        );
        admin = new AdminServer(node, server, options);
      } catch (error) {
        reject(error);
        return;
      }
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
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    const refusal = this.#served >= this.#options.connectionsMax ? 'too many admin connections' : fromAddress >= this.#options.connectionsPerAddressMax ? `too many admin connections from ${address}` : null;
    const { helloTimeoutMs, idleTimeoutMs } = this.#options;
    // Assigned before any handler can run: they all wait for socket events.
    let connection: AdminConnection;
    const framed: FramedSocket = new FramedSocket(
      socket,
      { frameBytesMax: adminFrameBytesMax, helloTimeoutMs, idleTimeoutMs, writeBufferBytesMax },
      {
        onFrame: (payload) => this.#onRequest(connection, payload),
        onFrameError: (_code, message) => this.#lastWords(connection, encodeAdminMessage({ type: 'error', id: null, code: 'malformed', message })),
        onHelloTimeout: () => {
          this.counters.helloTimeouts += 1;
          const code = this.#token === null ? 'timeout' : 'unauthenticated';
          this.#lastWords(connection, encodeAdminMessage({ type: 'error', id: null, code, message: `no hello within ${helloTimeoutMs} ms` }));
        },
        onIdle: () => {
          // A long cluster operation keeps its connection: only a connection with nothing to wait for is idle.
          if (connection.pending > 0) return;
          this.counters.idleClosed += 1;
          framed.destroy('idle', `idle for ${idleTimeoutMs} ms`);
        },
        onClose: () => {
          this.#connections.delete(framed);
          this.#release(connection);
        },
      },
    );
    connection = { framed, address, authenticated: this.#token === null, greeted: false, pending: 0, holdsSlot: refusal === null };
    this.#connections.add(framed);
    if (refusal !== null) {
      this.counters.refused += 1;
      if (this.#served < this.#options.connectionsMax) this.counters.refusedPerAddress += 1;
      framed.lastWords(encodeAdminMessage({ type: 'error', id: null, code: 'failed', message: refusal }), closeGraceMs);
      return;
    }
    this.counters.served += 1;
    this.#served += 1;
    this.#perAddress.set(address, fromAddress + 1);
  }

  /**
   * Closes after a last frame. The slot is freed now, not when the peer has closed too (up to
   * closeGraceMs later): a refused connection must not keep the operator out meanwhile.
   */
  #lastWords(connection: AdminConnection, frame: Uint8Array): void {
    this.#release(connection);
    connection.framed.lastWords(frame, closeGraceMs);
  }

  /** Frees the connection's slot, once. */
  #release(connection: AdminConnection): void {
    if (!connection.holdsSlot) return;
    connection.holdsSlot = false;
    this.#served -= 1;
    const left = (this.#perAddress.get(connection.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(connection.address, left);
    else this.#perAddress.delete(connection.address);
  }

  #onRequest(connection: AdminConnection, payload: Uint8Array): void {
    const framed = connection.framed;
    const request = decodeAdminRequest(payload);
    if (!connection.authenticated) {
      // With a token configured, the one thing answered before it is a hello that carries it.
      const valid = request.type === 'hello' && this.#token?.accepts(request.token) === true;
      if (!valid) {
        this.counters.unauthenticated += 1;
        const id = request.id;
        const message = request.type === 'hello' ? (request.token === undefined ? 'this node requires an admin token in hello' : 'the admin token is not accepted') : 'this node requires hello with its admin token first';
        this.#lastWords(connection, encodeAdminMessage({ type: 'error', id, code: 'unauthenticated', message }));
        return;
      }
      connection.authenticated = true;
    }
    framed.helloDone();
    if (request.type === 'ok' || request.type === 'error') {
      framed.write(encodeAdminMessage(request));
      return;
    }
    if (request.type === 'hello') {
      if (connection.greeted) {
        framed.write(encodeAdminMessage({ type: 'error', id: request.id, code: 'malformed', message: 'hello was already sent' }));
        return;
      }
      connection.greeted = true;
      framed.write(encodeAdminMessage({ type: 'ok', id: request.id, value: null }));
      return;
    }
    connection.pending += 1;
    void this.#answer(request).then((answer) => {
      connection.pending -= 1;
      framed.write(encodeAdminMessage(answer));
    });
  }

  async #answer(request: AdminRequest): Promise<AdminAnswer> {
    const node = this.#node;
    try {
      switch (request.type) {
        case 'hello':
          // Answered by #onRequest before it gets here.
          return { type: 'ok', id: request.id, value: null };
        case 'status':
          return { type: 'ok', id: request.id, value: (await node.status()).actors.map((a) => ({ actor: a.actor, worker: a.worker, state: a.state, restarts: a.restarts, failure: a.failure, role: a.role, status: a.status, view: a.view, op: a.op, commit: a.commit, watches: a.watches, leases: a.leases })) };
        case 'health': {
          const status = await node.status();
          return { type: 'ok', id: request.id, value: { serving: status.serving, problems: status.problems } };
        }
        case 'namespaces':
          return { type: 'ok', id: request.id, value: node.namespaces };
        case 'primary': {
          if (!node.namespaces.includes(request.ns)) return { type: 'error', id: request.id, code: 'unknown_namespace', message: `no namespace ${request.ns}` };
          const index = await node.primaryOf(request.ns);
          return { type: 'ok', id: request.id, value: index === null ? null : { index, actor: node.replicaId(request.ns, index) } };
        }
        case 'replica':
          return { type: 'ok', id: request.id, value: await node.inspect(request.actor) };
        case 'snapshot': {
          if (!node.namespaces.includes(request.ns)) return { type: 'error', id: request.id, code: 'unknown_namespace', message: `no namespace ${request.ns}` };
          const backup = await node.snapshot(request.ns);
          // The answer travels in one frame: a larger backup is refused by name, not cut.
          if (backup.file.length > adminAnswerBytesMax - 4096) {
            return { type: 'error', id: request.id, code: 'failed', message: `the backup of ${request.ns} is ${backup.file.length} bytes, more than an admin answer carries (${adminAnswerBytesMax})` };
          }
          return { type: 'ok', id: request.id, value: backup };
        }
        case 'config':
          return { type: 'ok', id: request.id, value: JSON.parse(JSON.stringify(node.options, redactCredentials)) as unknown };
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

/** TLS port: sockets beyond connectionsMax kept long enough to hear the typed refusal; past them, dropped. */
const refusalSocketsMax = 64;

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`admin API option ${name} must be a positive integer`);
  return v;
}

/**
 * Option fields that hold credentials (a TLS private key, a client or admin token, the cluster
 * secret), wherever they sit in the options: `config` shows that they are set, never what they
 * are, so an admin-token holder cannot lift a member's identity from it (docs/security.md).
 */
const credentialKeys: ReadonlySet<string> = new Set(['key', 'secret', 'authToken', 'token']);

function redactCredentials(key: string, value: unknown): unknown {
  return credentialKeys.has(key) && value !== undefined && value !== null ? '[redacted]' : value;
}
