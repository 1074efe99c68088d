/**
 * The client API over TCP (docs/protocol.md): length-prefixed msgpack frames, many requests in
 * flight per connection matched by `id`. The client owns its VR session (client id, request
 * numbers), so this server is a forwarder: a request goes to the namespace's replica it
 * believes is primary, and the replica's answer (reply, not_primary, busy) comes back
 * unchanged. Retries of the same request number are answered from the replicas' client table,
 * so they run once.
 *
 * Limits: frame size (checked before buffering), requests in flight per connection,
 * connections per node, idle time. Bad input gets a typed error; a framing error also closes
 * the connection; nothing a client sends can crash the node.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../api/frame.ts';
import { decodeClientMessage, encodeNodeFrame, protocolVersion, type NodeMessage, type RequestMessage, type WireLimits } from '../api/wire.ts';
import type { ClientAnswer } from '../vr/messages.ts';

export type ClientApiOptions = {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port (see `address`). */
  readonly port?: number;
  /** Default 1024; one more is answered `overloaded` and closed. */
  readonly connectionsMax?: number;
  /** A connection silent for this long is closed. Default 60 s. */
  readonly idleTimeoutMs?: number;
};

export type ClientApiNamespace = { readonly name: string; readonly replicas: readonly string[] };

export type ClientApiDeps = {
  readonly nodeName: string;
  readonly namespaces: readonly ClientApiNamespace[];
  readonly limits: WireLimits;
  /** Sends a VR request to a replica actor; its answer comes back through `onAnswer`. */
  send(to: string, request: unknown): void;
  /**
   * Where a replica is, for namespaces placed across nodes: `reachable` when it runs here or
   * its node's link is up, and the client address of its node when known. Absent: every
   * replica is local.
   */
  locate?(replica: string): { readonly reachable: boolean; readonly clientAddress: string | null };
};

type Connection = {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  hello: boolean;
  /** Requests in flight on this connection, by client id. */
  readonly inFlight: Map<string, { readonly id: number; readonly ns: string; readonly requestNum: number; readonly op: RequestMessage['op'] }>;
  /** Every client id this connection has used (bounded), so closing it forgets their routes. */
  readonly clients: Set<string>;
};

/** Client ids one connection may use over its life (sessions of one client library, with room). */
const clientsPerConnectionMax = 16_384;

type NsState = { readonly replicas: readonly string[]; view: number };

export class ClientApiServer {
  readonly #deps: ClientApiDeps;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #byClient = new Map<string, Connection>();
  readonly #namespaces = new Map<string, NsState>();
  readonly #connectionsMax: number;
  readonly #idleTimeoutMs: number;
  #closing = false;
  readonly counters = { connections: 0, refused: 0, requests: 0, answers: 0, errors: 0, strayAnswers: 0, retriesBroadcast: 0, notPrimary: 0, redirects: 0 };

  private constructor(deps: ClientApiDeps, server: Server, options: ClientApiOptions) {
    this.#deps = deps;
    this.#server = server;
    this.#connectionsMax = options.connectionsMax ?? 1024;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    for (const ns of deps.namespaces) this.#namespaces.set(ns.name, { replicas: ns.replicas, view: 0 });
  }

  static start(deps: ClientApiDeps, options: ClientApiOptions = {}): Promise<ClientApiServer> {
    return new Promise((resolve, reject) => {
      let accept: (socket: Socket) => void = (socket) => socket.destroy();
      const server = createServer((socket) => accept(socket));
      const api = new ClientApiServer(deps, server, options);
      accept = (socket) => api.#accept(socket);
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve(api);
      });
    });
  }

  address(): { readonly host: string; readonly port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('client API server is not listening');
    return { host: address.address, port: address.port };
  }

  /** Serves a namespace created while the node runs (a cluster namespace). */
  addNamespace(namespace: ClientApiNamespace): void {
    if (!this.#namespaces.has(namespace.name)) this.#namespaces.set(namespace.name, { replicas: namespace.replicas, view: 0 });
  }

  /** A replica's answer to a request forwarded from here. */
  onAnswer(answer: ClientAnswer): void {
    // From our own replicas, but checked all the same: a stray value must not throw here.
    const clientId = typeof answer === 'object' && answer !== null && typeof answer.clientId === 'string' ? answer.clientId : null;
    const connection = clientId === null ? undefined : this.#byClient.get(clientId);
    const pending = connection?.inFlight.get(clientId as string);
    if (connection === undefined || pending === undefined || pending.requestNum !== answer.requestNum) {
      this.counters.strayAnswers += 1;
      return;
    }
    const ns = this.#namespaces.get(pending.ns);
    if (answer.type === 'not_primary') {
      // This server picks the replica, not the client, so the answer is ours: it corrects the
      // guess, and when the guess moves to a newer view the request goes straight to the
      // primary named (at most once per view, so answers cannot multiply requests).
      this.counters.notPrimary += 1;
      if (ns !== undefined && answer.view > ns.view) {
        ns.view = answer.view;
        const primary = ns.replicas[answer.primary];
        if (primary !== undefined) this.#deps.send(primary, { type: 'request', clientId: answer.clientId, requestNum: answer.requestNum, op: pending.op });
      }
      return;
    }
    if (ns !== undefined && answer.view > ns.view) ns.view = answer.view;
    // busy is an answer too: the client's session retries after the delay it names.
    if (answer.type === 'reply') connection.inFlight.delete(clientId as string);
    this.counters.answers += 1;
    this.#write(connection, { type: 'answer', id: pending.id, ns: pending.ns, answer });
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    this.#closing = true;
    for (const connection of this.#connections) connection.socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    if (this.#closing || this.#connections.size >= this.#connectionsMax) {
      this.counters.refused += 1;
      socket.end(encodeNodeFrame({ type: 'error', id: null, code: 'overloaded', message: 'too many connections' }));
      return;
    }
    this.counters.connections += 1;
    const connection: Connection = { socket, decoder: new FrameDecoder({ frameBytesMax: this.#deps.limits.frameBytesMax }), hello: false, inFlight: new Map(), clients: new Set() };
    this.#connections.add(connection);
    socket.setNoDelay(true);
    socket.setTimeout(this.#idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.#onData(connection, chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#drop(connection));
  }

  #drop(connection: Connection): void {
    this.#connections.delete(connection);
    for (const clientId of connection.clients) {
      if (this.#byClient.get(clientId) === connection) this.#byClient.delete(clientId);
    }
  }

  #onData(connection: Connection, chunk: Buffer): void {
    for (const event of connection.decoder.push(chunk)) {
      if (event.type === 'error') {
        this.#fail(connection, null, event.code, event.message, true);
        return;
      }
      this.#onFrame(connection, event.payload);
    }
  }

  #onFrame(connection: Connection, payload: Uint8Array): void {
    const decoded = decodeClientMessage(payload, this.#deps.limits);
    if (!decoded.ok) {
      this.#fail(connection, decoded.error.id, decoded.error.code, decoded.error.message, decoded.error.code === 'unsupported_version');
      return;
    }
    const message = decoded.message;
    if (!connection.hello && message.type !== 'hello') {
      this.#fail(connection, null, 'malformed', 'the first message must be hello', true);
      return;
    }
    switch (message.type) {
      case 'hello':
        if (connection.hello) {
          this.#fail(connection, null, 'malformed', 'hello was already sent', false);
          return;
        }
        connection.hello = true;
        this.#write(connection, { type: 'welcome', version: protocolVersion, node: this.#deps.nodeName, namespaces: [...this.#namespaces.keys()] });
        return;
      case 'list_namespaces':
        this.#write(connection, { type: 'namespaces', id: message.id, namespaces: [...this.#namespaces.keys()] });
        return;
      case 'ping':
        this.#write(connection, { type: 'pong', id: message.id });
        return;
      case 'request':
        this.#forward(connection, message);
        return;
      default: {
        const never: never = message;
        this.#fail(connection, null, 'malformed', `unknown message ${String((never as { type?: unknown }).type)}`, false);
      }
    }
  }

  #forward(connection: Connection, message: RequestMessage): void {
    const ns = this.#namespaces.get(message.ns);
    if (ns === undefined) {
      this.#fail(connection, message.id, 'unknown_namespace', `no namespace ${message.ns} on this node`, false);
      return;
    }
    if (!connection.inFlight.has(message.clientId) && connection.inFlight.size >= this.#deps.limits.inFlightMax) {
      this.#fail(connection, message.id, 'too_many_in_flight', `at most ${this.#deps.limits.inFlightMax} requests in flight per connection`, false);
      return;
    }
    if (!connection.clients.has(message.clientId)) {
      if (connection.clients.size >= clientsPerConnectionMax) {
        this.#fail(connection, message.id, 'too_many_in_flight', `at most ${clientsPerConnectionMax} client ids per connection`, false);
        return;
      }
      connection.clients.add(message.clientId);
    }
    this.counters.requests += 1;
    const previous = connection.inFlight.get(message.clientId);
    connection.inFlight.set(message.clientId, { id: message.id, ns: message.ns, requestNum: message.requestNum, op: message.op });
    this.#byClient.set(message.clientId, connection);
    const request = { type: 'request', clientId: message.clientId, requestNum: message.requestNum, op: message.op };
    const primaryIndex = ns.view % ns.replicas.length;
    const locate = this.#deps.locate;
    if (locate !== undefined && ns.replicas.every((replica) => !locate(replica).reachable)) {
      // This node is cut off from every replica of the namespace (its links to their nodes
      // are down): forwarding cannot work, so the client is sent where the primary was last
      // known to be; a client that can reach that node gets served there.
      connection.inFlight.delete(message.clientId);
      this.counters.redirects += 1;
      const address = locate(ns.replicas[primaryIndex] as string).clientAddress;
      this.#write(connection, { type: 'redirect', id: message.id, ns: message.ns, primary: primaryIndex, address });
      return;
    }
    if (previous !== undefined && previous.requestNum === message.requestNum) {
      // A retry: the guess may name a replica that is gone (its node died, and no answer told
      // us of the new view). Every replica gets it: backups answer not_primary with the view,
      // which corrects the guess, and the primary's client table runs it at most once (VRR §4.1).
      this.counters.retriesBroadcast += 1;
      for (const replica of ns.replicas) this.#deps.send(replica, request);
      return;
    }
    const primary = ns.replicas[primaryIndex];
    if (primary !== undefined) this.#deps.send(primary, request);
  }

  #fail(connection: Connection, id: number | null, code: Extract<NodeMessage, { type: 'error' }>['code'], text: string, close: boolean): void {
    this.counters.errors += 1;
    const frame = encodeNodeFrame({ type: 'error', id, code, message: text });
    if (close) connection.socket.end(frame);
    else connection.socket.write(frame);
  }

  #write(connection: Connection, message: NodeMessage): void {
    if (connection.socket.writable) connection.socket.write(encodeNodeFrame(message));
  }
}
