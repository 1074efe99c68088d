/**
 * The client API over TCP (docs/protocol.md): length-prefixed msgpack frames, many messages in
 * flight per connection matched by `id`.
 *
 * A forwarder. The client owns its VR sessions (client ids, request numbers, which replica to
 * ask, retries: src/client/host.ts in the client library), so a request goes to the replica it
 * names and that replica's answer (reply, not_primary, busy) comes back unchanged. The server
 * keeps no view and no session state; what it adds is the promise of docs/protocol.md section 8:
 * every request it accepts gets exactly one answer with its id, within `requestTimeoutMs`:
 * the replica's answer, or a typed error (`timeout`, `superseded`, `shutting_down`,
 * `frame_too_large`), or `redirect`. A request for a namespace the node knows cannot serve
 * (its health monitor: more than f replicas recovering, down or with a failing disk) is answered
 * `unavailable` at once and not forwarded.
 *
 * Everything is bounded: frames (small ones until hello), a hello deadline, messages in flight
 * per connection, requests in flight per node, one request per session per connection,
 * connections, idle time, and bytes waiting to be written (past the soft bound the connection
 * is not read; past the hard bound it is closed). Nothing a client sends can crash the node.
 *
 * Watches (issue 14, docs/protocol.md "Watches"): a relay too. A `watch_subscribe` goes to the
 * replica it names, as `host/net` like a request, with its watch id made unique across
 * connections (`<connection number>.<client's watch id>`); the replica's notices come back
 * through `onWatchNotice`, are routed by that prefix and leave with the client's id. The node
 * answers its own refusals (`invalid`, `too_many`, `not_serving`) with `watch_ended`, so a
 * client only ever handles notices. Watches are bounded per connection and per node; a
 * connection's watches are cancelled at their replicas when it closes, and ended `lagging` when
 * its unsent output passes `writeBufferBytesMax` (the replicas' own flow control bounds what
 * each watch sends before an ack; this bounds the sum a slow connection holds here).
 *
 * Security (issue 12): optional TLS (`tls`), and an optional auth token (`authToken`) that
 * `hello` must carry: compared in constant time (SHA-256 of both, then timingSafeEqual, so
 * neither the content nor the length leaks through timing); a missing or wrong token is
 * answered `error {id: nil, code: unauthenticated}` and the connection is closed. Nothing but
 * `hello` is accepted before it, so nothing is served to a client without the token.
 */

import { AuthToken } from './auth_token.ts';
import { assertNever } from '../base/assert.ts';
import type { Server, Socket } from 'node:net';
import {
  decodeClientMessage,
  defaultWireLimits,
  encodeNodeFrame,
  frameBytesFor,
  helloFrameBytesMax,
  protocolVersion,
  type NamespaceInfo,
  type NamespaceShape,
  type NodeMessage,
  type NodeWatchMessage,
  type RequestMessage,
  type WatchAckMessage,
  type WatchCancelMessage,
  type WatchSubscribeMessage,
  type WireErrorCode,
  tokenLengthMax,
} from '../api/wire.ts';
import type { TreeLimits } from '../base/limits.ts';
import type { ClientAnswer, Request } from '../vr/messages.ts';
import { watchIdCharsMax, watchNoticeTypes, type WatchEndReason, type WatchNotice, type WatchRequest } from '../watch/messages.ts';
import { FramedSocket } from './framed_socket.ts';
import { createServer, type TlsServerOptions } from './tls.ts';

export type ClientApiOptions = {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port (see `address`). */
  readonly port?: number;
  /** Default 1024; one more is answered `overloaded` and closed. */
  readonly connectionsMax?: number;
  /** A connection that delivered no frame for this long, with nothing in flight, is closed. Default 60 s. */
  readonly idleTimeoutMs?: number;
  /** A connection must send `hello` within this long. Default 5 s. */
  readonly helloTimeoutMs?: number;
  /** Messages in flight per connection. Default 1024. */
  readonly inFlightMax?: number;
  /** Requests in flight across all connections; one more is answered `overloaded`. Default 32,768. */
  readonly requestsInFlightMax?: number;
  /** Every request is answered within this long (`timeout` at the latest). Default 5 s. */
  readonly requestTimeoutMs?: number;
  /**
   * Bytes of answers a connection has not taken yet: past this the node stops reading it until
   * they drain; past four times this it closes the connection. Default 16 MiB.
   */
  readonly writeBufferBytesMax?: number;
  /** Serve TLS with this certificate (the handshake must finish within `helloTimeoutMs`). Absent: plaintext. */
  readonly tls?: TlsServerOptions;
  /** Every hello must carry this token (1..1024 characters). Absent: no token is asked for. */
  readonly authToken?: string;
  /** Watches open per connection; one more is answered `watch_ended {reason: too_many}`. Default 1024. */
  readonly watchesPerConnectionMax?: number;
  /** Watches open across all connections; one more is answered `watch_ended {reason: too_many}`. Default 16,384. */
  readonly watchesMax?: number;
};

export type ClientApiNamespace = {
  readonly name: string;
  /** Actor ids of the namespace's replicas, by index. */
  readonly replicas: readonly string[];
  readonly limits: TreeLimits;
};

export type ClientApiDeps = {
  readonly nodeName: string;
  readonly namespaces: readonly ClientApiNamespace[];
  /** The frame limit (both directions). Default: what the namespaces' request limits need. */
  readonly frameBytesMax?: number;
  /** False: hold every hello until `ready()` (a node still restoring its namespaces). Default true. */
  readonly ready?: boolean;
  /**
   * Sends a VR request or a watch request to a replica actor; a request's answer comes back
   * through `onAnswer`, a watch's notices through `onWatchNotice`.
   */
  send(to: string, message: Request | WatchRequest): void;
  /**
   * Where a replica is, for namespaces placed across nodes: `reachable` when it runs here or
   * its node's link is up, and the client address of its node when known. Absent: every
   * replica is local.
   */
  locate?(replica: string): { readonly reachable: boolean; readonly clientAddress: string | null };
};

type Phase = 'hello' | 'held' | 'open';

type Waiter = {
  readonly connection: Connection;
  readonly id: number;
  readonly ns: string;
  readonly clientId: string;
  readonly requestNum: number;
  readonly deadline: number;
};

/** A watch relayed for a connection: where it lives and the id the replica knows it by. */
type RelayedWatch = {
  /** The client's watch id. */
  readonly watchId: string;
  readonly ns: string;
  readonly replica: number;
  /** The replica actor serving it; notices from any other actor are not this watch's. */
  readonly actor: string;
  /** `<connection number>.<watchId>`: the id the replica knows. */
  readonly relayId: string;
  /** The seq of the last notice relayed (0 before the first): the node's own end of the watch takes the next. */
  lastSeq: number;
};

type Connection = {
  readonly framed: FramedSocket;
  /** Unique for the server's life: the prefix of its watches' ids at the replicas. */
  readonly number: number;
  /** Its open watches, by the client's watch id. */
  readonly watches: Map<string, RelayedWatch>;
  phase: Phase;
  /** Requests in flight on this connection, by id. */
  readonly ids: Map<number, Waiter>;
  /** The request in flight of each session on this connection (at most one). */
  readonly sessions: Map<string, Waiter>;
};

type Served = ClientApiNamespace & { readonly shape: NamespaceShape };

const defaults = {
  connectionsMax: 1024,
  idleTimeoutMs: 60_000,
  helloTimeoutMs: 5_000,
  inFlightMax: defaultWireLimits.inFlightMax,
  requestsInFlightMax: 32_768,
  requestTimeoutMs: 5_000,
  writeBufferBytesMax: 16 * 1024 * 1024,
  watchesPerConnectionMax: 1024,
  watchesMax: 16_384,
} as const;

/** Deadlines (requests, idle) are checked this often. */
const sweepMs = 50;

/** After a graceful close's last words, connections that have not closed are destroyed after this long. */
const closeGraceMs = 1_000;

export class ClientApiServer {
  readonly #deps: ClientApiDeps;
  readonly #server: Server;
  readonly #options: Required<Omit<ClientApiOptions, 'host' | 'port' | 'tls' | 'authToken'>>;
  /** SHA-256 of the auth token, or null when none is configured. */
  readonly #token: AuthToken | null;
  readonly #frameBytesMax: number;
  readonly #connections = new Set<Connection>();
  /** Refused connections, closing after their last words: destroyed on close() at the latest. */
  readonly #refused = new Set<FramedSocket>();
  readonly #namespaces = new Map<string, Served>();
  /** Namespace by replica actor id: an answer's sender says which namespace it is for. */
  readonly #replicaNamespace = new Map<string, string>();
  /** Waiters by client id (a session may wait on several connections, e.g. across a reconnect). */
  readonly #waiting = new Map<string, Set<Waiter>>();
  /** Every waiter, oldest first: with one timeout for all, that is deadline order. */
  readonly #byDeadline = new Set<Waiter>();
  /** Open connections by number: where a watch notice goes. */
  readonly #byNumber = new Map<number, Connection>();
  #nextConnectionNumber = 1;
  readonly #sweep: NodeJS.Timeout;
  #ready: boolean;
  #closing: Promise<void> | null = null;
  /** Why a namespace cannot serve now, or null (the node's health monitor); absent: every namespace may serve. */
  #namespaceGate: ((ns: string) => string | null) | null = null;
  readonly counters = {
    connections: 0,
    refused: 0,
    requests: 0,
    answers: 0,
    errors: 0,
    strayAnswers: 0,
    redirects: 0,
    timeouts: 0,
    superseded: 0,
    overloaded: 0,
    unavailable: 0,
    answersTooLarge: 0,
    pausedReads: 0,
    closedSlowReaders: 0,
    helloTimeouts: 0,
    idleClosed: 0,
    unauthenticated: 0,
    tlsErrors: 0,
    /** Watches open now, across connections (a gauge). */
    watchesOpen: 0,
    watchSubscribes: 0,
    watchNoticesRelayed: 0,
    /** Subscribes the node refused itself, by reason. */
    watchesRefusedInvalid: 0,
    watchesRefusedTooMany: 0,
    watchesRefusedNotServing: 0,
    /** Watches ended `lagging` because their connection's output backed up. */
    watchesLagging: 0,
    /** Notices for a watch or connection that is gone (the replica is told to cancel). */
    strayWatchNotices: 0,
    /** Acks and cancels for watches the connection does not have (ignored). */
    strayWatchRequests: 0,
  };

  private constructor(deps: ClientApiDeps, server: Server, options: ClientApiOptions) {
    this.#deps = deps;
    this.#server = server;
    this.#options = {
      connectionsMax: positive(options.connectionsMax, defaults.connectionsMax, 'connectionsMax'),
      idleTimeoutMs: positive(options.idleTimeoutMs, defaults.idleTimeoutMs, 'idleTimeoutMs'),
      helloTimeoutMs: positive(options.helloTimeoutMs, defaults.helloTimeoutMs, 'helloTimeoutMs'),
      inFlightMax: positive(options.inFlightMax, defaults.inFlightMax, 'inFlightMax'),
      requestsInFlightMax: positive(options.requestsInFlightMax, defaults.requestsInFlightMax, 'requestsInFlightMax'),
      requestTimeoutMs: positive(options.requestTimeoutMs, defaults.requestTimeoutMs, 'requestTimeoutMs'),
      writeBufferBytesMax: positive(options.writeBufferBytesMax, defaults.writeBufferBytesMax, 'writeBufferBytesMax'),
      watchesPerConnectionMax: positive(options.watchesPerConnectionMax, defaults.watchesPerConnectionMax, 'watchesPerConnectionMax'),
      watchesMax: positive(options.watchesMax, defaults.watchesMax, 'watchesMax'),
    };
    this.#token = options.authToken === undefined ? null : new AuthToken(options.authToken, tokenLengthMax, 'authToken');
    this.#frameBytesMax = deps.frameBytesMax ?? frameBytesFor(deps.namespaces.map((ns) => ns.limits));
    if (!Number.isSafeInteger(this.#frameBytesMax) || this.#frameBytesMax < helloFrameBytesMax) throw new RangeError(`frameBytesMax must be at least ${helloFrameBytesMax}`);
    this.#ready = deps.ready ?? true;
    for (const ns of deps.namespaces) this.addNamespace(ns);
    this.#sweep = setInterval(() => this.#onSweep(), sweepMs);
    this.#sweep.unref();
  }

  static start(deps: ClientApiDeps, options: ClientApiOptions = {}): Promise<ClientApiServer> {
    return new Promise((resolve, reject) => {
      let accept: (socket: Socket) => void = (socket) => socket.destroy();
      let api: ClientApiServer | null = null;
      try {
        // A TLS handshake is part of saying hello: it gets the same deadline.
        const server = createServer(
          {
            ...(options.tls === undefined ? {} : { tls: options.tls }),
            handshakeTimeoutMs: options.helloTimeoutMs ?? defaults.helloTimeoutMs,
            socketsMax: (options.connectionsMax ?? defaults.connectionsMax) + refusalSocketsMax,
          },
          (socket) => accept(socket),
          () => {
            if (api !== null) api.counters.tlsErrors += 1;
          },
        );
        api = new ClientApiServer(deps, server, options);
      } catch (error) {
        reject(error);
        return;
      }
      const started = api;
      accept = (socket) => started.#accept(socket);
      started.#server.once('error', (error) => {
        clearInterval(started.#sweep);
        reject(error);
      });
      const server = started.#server;
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.removeAllListeners('error');
        server.on('error', () => undefined);
        resolve(api);
      });
    });
  }

  address(): { readonly host: string; readonly port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('client API server is not listening');
    return { host: address.address, port: address.port };
  }

  /** The frame limit this server enforces and announces. */
  get frameBytesMax(): number {
    return this.#frameBytesMax;
  }

  /** Requests waiting for an answer, across connections. */
  get waiting(): number {
    return this.#byDeadline.size;
  }

  /** Serves a namespace (at start, or created in the cluster while the node runs). */
  addNamespace(namespace: ClientApiNamespace): void {
    if (this.#namespaces.has(namespace.name)) return;
    this.#namespaces.set(namespace.name, { ...namespace, shape: { replicas: namespace.replicas.length, tree: namespace.limits } });
    for (const replica of namespace.replicas) this.#replicaNamespace.set(replica, namespace.name);
  }

  /** Set once by the node: the health monitor's verdict per namespace (src/node/health.ts). */
  setNamespaceGate(gate: (ns: string) => string | null): void {
    this.#namespaceGate = gate;
  }

  /** The node can serve now: held hellos are welcomed. */
  ready(): void {
    if (this.#ready) return;
    this.#ready = true;
    for (const connection of this.#connections) {
      if (connection.phase !== 'held') continue;
      connection.phase = 'open';
      this.#write(connection, this.#welcome());
    }
  }

  /** Connections written since the last endOfBatch. */
  readonly #written = new Set<FramedSocket>();

  /** The end of a batch of answers and notices from the replicas: each connection written sends now, in one syscall. */
  endOfBatch(): void {
    for (const framed of this.#written) framed.flushWrites();
    this.#written.clear();
  }

  /**
   * A replica's answer (`from`: the replica actor). Every request waiting for this session's
   * request number in that namespace gets it, each under its own id.
   */
  onAnswer(from: string, answer: ClientAnswer): void {
    // From our own replicas, but checked all the same: a stray value must not throw here.
    const ns = this.#replicaNamespace.get(from);
    const clientId = typeof answer === 'object' && answer !== null && typeof answer.clientId === 'string' ? answer.clientId : null;
    const waiters = clientId === null ? undefined : this.#waiting.get(clientId);
    let answered = 0;
    if (ns !== undefined && waiters !== undefined) {
      for (const waiter of [...waiters]) {
        if (waiter.ns !== ns || waiter.requestNum !== answer.requestNum) continue;
        this.#settle(waiter);
        this.counters.answers += 1;
        this.#write(waiter.connection, { type: 'answer', id: waiter.id, ns, answer });
        this.#written.add(waiter.connection.framed);
        answered += 1;
      }
    }
    if (answered === 0) this.counters.strayAnswers += 1;
  }

  /**
   * A replica's watch notice (`from`: the replica actor), for the watch whose relay id it
   * carries. Goes to that connection under the client's id; a notice for a connection or
   * watch that is gone is dropped and the replica told to cancel (unless it ended the watch).
   */
  onWatchNotice(from: string, notice: WatchNotice): void {
    // From our own replicas, but checked all the same: a stray value must not throw here.
    if (typeof notice !== 'object' || notice === null || !watchNoticeTypes.has(notice.type) || typeof notice.watchId !== 'string') {
      this.counters.strayWatchNotices += 1;
      return;
    }
    const dot = notice.watchId.indexOf('.');
    const connection = dot < 0 ? undefined : this.#byNumber.get(Number(notice.watchId.slice(0, dot)));
    const watch = connection?.watches.get(notice.watchId.slice(dot + 1));
    if (connection === undefined || watch === undefined || watch.relayId !== notice.watchId || watch.actor !== from) {
      this.counters.strayWatchNotices += 1;
      if (notice.type !== 'watch_ended') this.#deps.send(from, { type: 'watch_cancel', watchId: notice.watchId });
      return;
    }
    if (notice.type === 'watch_ended') this.#forgetWatch(connection, watch);
    this.counters.watchNoticesRelayed += 1;
    this.#relay(connection, watch, relayed(notice, watch.watchId));
    this.#written.add(connection.framed);
  }

  /**
   * Stops listening; every request in flight is answered `shutting_down`, every connection gets
   * `error {id: nil, code: shutting_down}` and is closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    clearInterval(this.#sweep);
    const listening = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const waiter of [...this.#byDeadline]) {
      this.#settle(waiter);
      this.#error(waiter.connection, waiter.id, 'shutting_down', 'the node is stopping; the request may or may not have executed');
    }
    const goodbye = encodeNodeFrame({ type: 'error', id: null, code: 'shutting_down', message: 'the node is stopping' });
    const closed = [...this.#connections].map((connection) => {
      connection.framed.lastWords(goodbye, closeGraceMs);
      return connection.framed.closed;
    });
    let graceTimer: NodeJS.Timeout | null = null;
    const grace = new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, closeGraceMs)));
    await Promise.race([Promise.all(closed), grace]);
    if (graceTimer !== null) clearTimeout(graceTimer);
    for (const connection of this.#connections) connection.framed.destroy('local', 'the node stopped');
    for (const framed of this.#refused) framed.destroy('local', 'the node stopped');
    await listening;
  }

  #welcome(): NodeMessage {
    return {
      type: 'welcome',
      version: protocolVersion,
      node: this.#deps.nodeName,
      namespaces: this.#namespaceInfos(),
      frameBytesMax: this.#frameBytesMax,
      inFlightMax: this.#options.inFlightMax,
      requestTimeoutMs: this.#options.requestTimeoutMs,
    };
  }

  #namespaceInfos(): NamespaceInfo[] {
    return [...this.#namespaces.values()].map((ns) => ({ name: ns.name, replicas: ns.replicas.length, limits: ns.limits }));
  }

  #accept(socket: Socket): void {
    if (this.#closing !== null || this.#connections.size >= this.#options.connectionsMax) {
      this.counters.refused += 1;
      const refused: FramedSocket = new FramedSocket(socket, { frameBytesMax: helloFrameBytesMax }, { onFrame: () => undefined, onClose: () => this.#refused.delete(refused) });
      this.#refused.add(refused);
      const [code, text] = this.#closing !== null ? (['shutting_down', 'the node is stopping'] as const) : (['overloaded', 'too many connections'] as const);
      refused.lastWords(encodeNodeFrame({ type: 'error', id: null, code, message: text }), closeGraceMs);
      return;
    }
    this.counters.connections += 1;
    // Assigned before any handler can run: they all wait for socket events.
    let connection: Connection;
    const framed = new FramedSocket(
      socket,
      { frameBytesMax: helloFrameBytesMax, helloTimeoutMs: this.#options.helloTimeoutMs, writeBufferBytesMax: this.#options.writeBufferBytesMax },
      {
        onFrame: (payload) => this.#onFrame(connection, payload),
        onFrameError: (code, message) => this.#fail(connection, code, message),
        onHelloTimeout: () => {
          this.counters.helloTimeouts += 1;
          this.#fail(connection, 'timeout', `no hello within ${this.#options.helloTimeoutMs} ms`);
        },
        onClose: () => this.#drop(connection),
      },
    );
    connection = { framed, number: this.#nextConnectionNumber, watches: new Map(), phase: 'hello', ids: new Map(), sessions: new Map() };
    this.#nextConnectionNumber += 1;
    this.#connections.add(connection);
    this.#byNumber.set(connection.number, connection);
  }

  #drop(connection: Connection): void {
    this.#connections.delete(connection);
    this.#byNumber.delete(connection.number);
    // Its requests' answers have nowhere to go: they are forgotten (the client retries).
    for (const waiter of connection.ids.values()) this.#settle(waiter);
    // Its watches have no one to go to: their replicas free them.
    for (const watch of [...connection.watches.values()]) this.#cancelWatch(connection, watch);
  }

  #onFrame(connection: Connection, payload: Uint8Array): void {
    if (this.#closing !== null) return;
    const decoded = decodeClientMessage(payload, (ns) => this.#namespaces.get(ns)?.shape);
    if (connection.phase === 'hello') {
      // The first message decides whether the connection is spoken to at all.
      if (!decoded.ok) return this.#fail(connection, decoded.error.code, decoded.error.message);
      if (decoded.message.type !== 'hello') return this.#fail(connection, 'malformed', 'the first message must be hello');
      if (this.#token !== null && !this.#token.accepts(decoded.message.token)) {
        this.counters.unauthenticated += 1;
        return this.#fail(connection, 'unauthenticated', decoded.message.token === undefined ? 'this node requires an auth token in hello' : 'the auth token is not accepted');
      }
      connection.framed.helloDone();
      connection.framed.setFrameBytesMax(this.#frameBytesMax);
      if (!this.#ready) {
        connection.phase = 'held';
        return;
      }
      connection.phase = 'open';
      this.#write(connection, this.#welcome());
      return;
    }
    if (!decoded.ok) {
      const watch = decoded.watch;
      if (watch === undefined) return this.#error(connection, decoded.error.id, decoded.error.code, decoded.error.message);
      // A bad subscribe is answered for its watch id; a bad ack or cancel names no watch it could touch.
      if (watch.type === 'watch_subscribe') this.#refuseWatch(connection, watch.watchId, 'invalid', decoded.error.message);
      else this.counters.strayWatchRequests += 1;
      return;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'hello':
        this.#error(connection, null, 'malformed', 'hello was already sent');
        return;
      case 'list_namespaces':
        if (connection.phase === 'held') return this.#error(connection, message.id, 'malformed', 'wait for welcome before sending anything else');
        this.#write(connection, { type: 'namespaces', id: message.id, namespaces: this.#namespaceInfos() });
        return;
      case 'ping':
        this.#write(connection, { type: 'pong', id: message.id });
        return;
      case 'request':
        if (connection.phase === 'held') return this.#error(connection, message.id, 'malformed', 'wait for welcome before sending anything else');
        this.#forward(connection, message);
        return;
      case 'watch_subscribe':
        this.#subscribe(connection, message);
        return;
      case 'watch_ack':
      case 'watch_cancel':
        this.#watchRequest(connection, message);
        return;
      default: {
        const never: never = message;
        this.#error(connection, null, 'malformed', `unknown message ${String((never as { type?: unknown }).type)}`);
      }
    }
  }

  #forward(connection: Connection, message: RequestMessage): void {
    const ns = this.#namespaces.get(message.ns) as Served; // the decoder checked it exists
    if (connection.ids.has(message.id)) return this.#error(connection, message.id, 'malformed', `id ${message.id} is already in flight on this connection`);
    const cannotServe = this.#namespaceGate?.(message.ns) ?? null;
    if (cannotServe !== null) {
      // Forwarding would only wait out requestTimeoutMs for a `timeout`: say why, at once.
      this.counters.unavailable += 1;
      return this.#error(connection, message.id, 'unavailable', `${cannotServe}; this request was not forwarded`);
    }
    if (connection.ids.size >= this.#options.inFlightMax) {
      return this.#error(connection, message.id, 'too_many_in_flight', `at most ${this.#options.inFlightMax} messages in flight per connection`);
    }
    const earlier = connection.sessions.get(message.clientId);
    if (earlier !== undefined && earlier.ns === message.ns) {
      if (earlier.requestNum !== message.requestNum) {
        return this.#error(connection, message.id, 'session_busy', `request ${earlier.requestNum} of session ${message.clientId} is still in flight (id ${earlier.id}); one request per session at a time`);
      }
      // A resend of the same request: its answer will go to the new id.
      this.#settle(earlier);
      this.counters.superseded += 1;
      this.#error(connection, earlier.id, 'superseded', `the same request was sent again as id ${message.id}; its answer goes there`);
    }
    if (this.#byDeadline.size >= this.#options.requestsInFlightMax) {
      this.counters.overloaded += 1;
      return this.#error(connection, message.id, 'overloaded', `the node has ${this.#options.requestsInFlightMax} requests in flight; retry later`);
    }
    const locate = this.#deps.locate;
    if (locate !== undefined && ns.replicas.every((replica) => !locate(replica).reachable)) {
      // Cut off from every replica of the namespace (the links to their nodes are down):
      // forwarding cannot work, so the client is sent to where the replica it asked for runs.
      this.counters.redirects += 1;
      const address = locate(ns.replicas[message.replica] as string).clientAddress;
      this.#write(connection, { type: 'redirect', id: message.id, ns: message.ns, replica: message.replica, address });
      return;
    }
    this.counters.requests += 1;
    const waiter: Waiter = { connection, id: message.id, ns: message.ns, clientId: message.clientId, requestNum: message.requestNum, deadline: performance.now() + this.#options.requestTimeoutMs };
    connection.ids.set(waiter.id, waiter);
    connection.sessions.set(waiter.clientId, waiter);
    let forClient = this.#waiting.get(waiter.clientId);
    if (forClient === undefined) {
      forClient = new Set();
      this.#waiting.set(waiter.clientId, forClient);
    }
    forClient.add(waiter);
    this.#byDeadline.add(waiter);
    this.#deps.send(ns.replicas[message.replica] as string, { type: 'request', clientId: message.clientId, requestNum: message.requestNum, op: message.op });
  }

  #subscribe(connection: Connection, message: WatchSubscribeMessage): void {
    const { watchId } = message;
    if (connection.phase === 'held') return this.#refuseWatch(connection, watchId, 'invalid', 'wait for welcome before sending anything else');
    const open = connection.watches.get(watchId);
    if (open !== undefined) {
      // After its watch_ended nothing more may come for this id: the open watch ends too.
      this.#cancelWatch(connection, open);
      return this.#refuseWatch(connection, watchId, 'invalid', `watch ${watchId} is already open on this connection; it is cancelled`);
    }
    const ns = this.#namespaces.get(message.ns) as Served; // the decoder checked it exists
    const actor = ns.replicas[message.replica] as string; // and the replica index
    const cannotServe = this.#namespaceGate?.(message.ns) ?? null;
    if (cannotServe !== null) return this.#refuseWatch(connection, watchId, 'not_serving', cannotServe);
    if (this.#deps.locate !== undefined && !this.#deps.locate(actor).reachable) {
      return this.#refuseWatch(connection, watchId, 'not_serving', `replica ${message.replica} of ${message.ns} is not reachable from this node`);
    }
    if (connection.watches.size >= this.#options.watchesPerConnectionMax) {
      return this.#refuseWatch(connection, watchId, 'too_many', `at most ${this.#options.watchesPerConnectionMax} watches per connection`);
    }
    if (this.counters.watchesOpen >= this.#options.watchesMax) {
      return this.#refuseWatch(connection, watchId, 'too_many', `the node serves ${this.#options.watchesMax} watches`);
    }
    const relayId = `${connection.number}.${watchId}`;
    // Connection numbers stay far below 2^48 (15 digits): 15 + 1 + 64 characters fit.
    if (relayId.length > watchIdCharsMax) return this.#refuseWatch(connection, watchId, 'invalid', 'watch id too long');
    const watch: RelayedWatch = { watchId, ns: message.ns, replica: message.replica, actor, relayId, lastSeq: 0 };
    connection.watches.set(watchId, watch);
    this.counters.watchesOpen += 1;
    this.counters.watchSubscribes += 1;
    this.#deps.send(actor, { type: 'watch_subscribe', watchId: relayId, path: message.path, recursive: message.recursive, fromOp: message.fromOp, values: message.values });
  }

  /** An ack or cancel, for one of this connection's watches at the replica it lives at; anything else is ignored. */
  #watchRequest(connection: Connection, message: WatchAckMessage | WatchCancelMessage): void {
    const watch = connection.watches.get(message.watchId);
    if (watch === undefined || watch.ns !== message.ns || watch.replica !== message.replica) {
      this.counters.strayWatchRequests += 1;
      return;
    }
    if (message.type === 'watch_cancel') return this.#cancelWatch(connection, watch);
    this.#deps.send(watch.actor, { type: 'watch_ack', watchId: watch.relayId, through: message.through });
  }

  /** The node's own refusal of a subscribe: the watch never reached a replica. */
  #refuseWatch(connection: Connection, watchId: string, reason: Extract<WatchEndReason, 'invalid' | 'too_many' | 'not_serving'>, text: string): void {
    if (reason === 'invalid') this.counters.watchesRefusedInvalid += 1;
    else if (reason === 'too_many') this.counters.watchesRefusedTooMany += 1;
    else this.counters.watchesRefusedNotServing += 1;
    this.#write(connection, { type: 'watch_ended', watchId, seq: 1, reason, oldestOp: 0, currentOp: 0, message: text });
  }

  #forgetWatch(connection: Connection, watch: RelayedWatch): void {
    if (connection.watches.get(watch.watchId) !== watch) return;
    connection.watches.delete(watch.watchId);
    this.counters.watchesOpen -= 1;
  }

  /** Ends a watch at its replica (which answers nothing) and forgets it. */
  #cancelWatch(connection: Connection, watch: RelayedWatch): void {
    this.#forgetWatch(connection, watch);
    this.#deps.send(watch.actor, { type: 'watch_cancel', watchId: watch.relayId });
  }

  /**
   * Writes a watch's notice. One too large for a frame (values bigger than the frame limit)
   * ends the watch `invalid` instead: it could never be delivered. A connection whose output
   * backed up past the soft bound has all its watches ended `lagging`, so notices cannot pile
   * up here for a client that does not read.
   */
  #relay(connection: Connection, watch: RelayedWatch, message: NodeWatchMessage): void {
    const framed = connection.framed;
    if (!framed.writable) return;
    const frame = encodeNodeFrame(message);
    if (frame.byteLength - 4 > this.#frameBytesMax) {
      this.counters.answersTooLarge += 1;
      if (message.type !== 'watch_ended') this.#cancelWatch(connection, watch);
      this.#write(connection, { type: 'watch_ended', watchId: watch.watchId, seq: message.seq, reason: 'invalid', oldestOp: 0, currentOp: 0, message: `a notice of ${frame.byteLength - 4} bytes exceeds the frame limit of ${this.#frameBytesMax}; watch without values` });
      return;
    }
    const outcome = framed.write(frame);
    watch.lastSeq = message.seq;
    if (outcome === 'paused') this.counters.pausedReads += 1;
    else if (outcome === 'overflow') this.counters.closedSlowReaders += 1;
    if (framed.writable && framed.writableLength > this.#options.writeBufferBytesMax) this.#lagOut(connection);
  }

  #lagOut(connection: Connection): void {
    for (const watch of [...connection.watches.values()]) {
      this.#cancelWatch(connection, watch);
      this.counters.watchesLagging += 1;
      this.#write(connection, {
        type: 'watch_ended',
        watchId: watch.watchId,
        seq: watch.lastSeq + 1,
        reason: 'lagging',
        oldestOp: 0,
        currentOp: 0,
        message: `the connection's unsent output passed ${this.#options.writeBufferBytesMax} bytes; resume from the last op received`,
      });
    }
  }

  /** Forgets a waiter everywhere (it has been, or is being, answered). */
  #settle(waiter: Waiter): void {
    this.#byDeadline.delete(waiter);
    const connection = waiter.connection;
    if (connection.ids.get(waiter.id) === waiter) connection.ids.delete(waiter.id);
    if (connection.sessions.get(waiter.clientId) === waiter) connection.sessions.delete(waiter.clientId);
    const forClient = this.#waiting.get(waiter.clientId);
    if (forClient !== undefined) {
      forClient.delete(waiter);
      if (forClient.size === 0) this.#waiting.delete(waiter.clientId);
    }
  }

  #onSweep(): void {
    const now = performance.now();
    for (const waiter of this.#byDeadline) {
      if (waiter.deadline > now) break;
      this.#settle(waiter);
      this.counters.timeouts += 1;
      this.#error(waiter.connection, waiter.id, 'timeout', `no answer from replica of ${waiter.ns} within ${this.#options.requestTimeoutMs} ms; the request may or may not have executed: resend it`);
    }
    // Idle: no frame for idleTimeoutMs with nothing in flight (bytes that never complete a
    // frame do not count, so a connection dribbling a frame is closed too). The hello deadline
    // is the connection's own timer.
    for (const connection of this.#connections) {
      if (connection.phase === 'hello' || connection.ids.size > 0 || !connection.framed.isOpen) continue;
      if (now - connection.framed.lastFrameMs > this.#options.idleTimeoutMs) {
        this.counters.idleClosed += 1;
        connection.framed.destroy('idle', `no frame for ${this.#options.idleTimeoutMs} ms`);
      }
    }
  }

  /**
   * A connection-level failure: `error {id: nil}` as its last words, then nothing more is read
   * (what the peer still sends is discarded) and it closes within the grace period.
   */
  #fail(connection: Connection, code: WireErrorCode, text: string): void {
    this.counters.errors += 1;
    connection.framed.lastWords(encodeNodeFrame({ type: 'error', id: null, code, message: text }), closeGraceMs);
  }

  #error(connection: Connection, id: number | null, code: WireErrorCode, text: string): void {
    this.counters.errors += 1;
    this.#write(connection, { type: 'error', id, code, message: text });
  }

  /**
   * Writes one message; an answer too large for a frame becomes `frame_too_large` for its id.
   * Backpressure: past the soft bound of unsent bytes the connection is not read until they
   * drain (no new requests from a client that does not read its answers); past the hard bound
   * it is closed.
   */
  #write(connection: Connection, message: NodeMessage): void {
    const framed = connection.framed;
    if (!framed.writable) return;
    let frame = encodeNodeFrame(message);
    if (frame.byteLength - 4 > this.#frameBytesMax) {
      this.counters.answersTooLarge += 1;
      const id = 'id' in message ? message.id : null;
      frame = encodeNodeFrame({ type: 'error', id, code: 'frame_too_large', message: `the answer is ${frame.byteLength - 4} bytes, over the frame limit of ${this.#frameBytesMax}; it executed: narrow the read` });
    }
    const outcome = framed.write(frame);
    if (outcome === 'paused') this.counters.pausedReads += 1;
    else if (outcome === 'overflow') this.counters.closedSlowReaders += 1;
  }
}

/** A replica's notice under the client's watch id, with the fields of its type and nothing else. */
function relayed(notice: WatchNotice, watchId: string): NodeWatchMessage {
  switch (notice.type) {
    case 'watch_events':
      return { type: notice.type, watchId, seq: notice.seq, op: notice.op, events: notice.events, more: notice.more };
    case 'watch_progress':
      return { type: notice.type, watchId, seq: notice.seq, through: notice.through };
    case 'watch_ended':
      return { type: notice.type, watchId, seq: notice.seq, reason: notice.reason, oldestOp: notice.oldestOp, currentOp: notice.currentOp, message: notice.message };
    default:
      return assertNever(notice, 'watch notice type');
  }
}

/** TLS ports: sockets beyond connectionsMax kept long enough to hear the typed `overloaded`; past them, dropped. */
const refusalSocketsMax = 64;

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`client API option ${name} must be a positive integer`);
  return v;
}
