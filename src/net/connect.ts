/**
 * The client library: `connect(addresses)` talks to a node's TCP client API
 * (docs/protocol.md) and returns the same typed `NamespaceClient` as the embedding API, so code
 * moves between in-process and remote unchanged.
 *
 * The library owns its VR sessions through a session host (src/client/host.ts), the very code
 * the node's own proxy runs: it numbers requests, names the replica each one goes to (the
 * primary of the highest view it heard of; the welcome says how many replicas a namespace
 * has), follows `not_primary`, retries with backoff and gives up with a typed timeout. This
 * file only carries the host's effects over the socket: a `send` becomes a `request` frame, a
 * `result` settles a caller. A retry re-sends the same request number, so after a reconnect, or
 * through another node, a write still runs once (the replicas' client table answers it).
 *
 * Watches (issue 14): each connection has a watch registry (src/client/watch_registry.ts, the
 * machines the embedding API runs too), ticked with the sessions. `client(ns).watch(...)` opens
 * one; what its machine sends leaves as `watch_subscribe` / `watch_ack` / `watch_cancel` frames
 * (dropped while disconnected) and the node's `watch_*` frames are its input. Across a
 * reconnect, or a replica that stops answering, a machine hears nothing from its subscription
 * and resubscribes (at the next replica, from the last op it delivered), so the application
 * sees every change once, in order. `close()` ends every watch with `stopped`.
 *
 * Security (issue 12): `token` is sent in `hello`; a node that refuses it answers
 * `unauthenticated`, and the connection gives up at once (a retry with the same token cannot
 * succeed): `connect` rejects, and later calls reject, with HaretError `unauthenticated`.
 * `tls` dials TLS and verifies the node's certificate against the given CA.
 *
 * Imports: node:crypto, the socket helper (./framed_socket.ts, ./tls.ts, node:net, node:tls) and the pure core
 * (src/client, src/api, src/tree, src/base); no logger, no runtime, no node internals.
 */

import { randomBytes, randomInt } from 'node:crypto';
import { decodeNodeMessage, defaultWireLimits, encodeClientFrame, protocolVersion, type ClientWatchMessage, type NamespaceInfo, type NodeMessage, type WelcomeMessage } from '../api/wire.ts';
import { serviceClientConfig, serviceClientTickMs, type ClientConfig } from '../client/config.ts';
import { HaretError } from '../client/errors.ts';
import { hostStepAll, initialHostState, type HostEffect, type HostInput, type HostState } from '../client/host.ts';
import type { CallOutcome, RefusalReason } from '../client/io.ts';
import { NamespaceClient } from '../client/namespace_client.ts';
import { coordinationFor } from '../coord/index.ts';
import { sessionPrefix, sessionPrefixRandomBytes } from '../client/session_prefix.ts';
import { defaultWatchMachineConfig, type WatchMachineConfig, type WatchSpec } from '../client/watch.ts';
import { WatchRegistry } from '../client/watch_registry.ts';
import type { WatchStream } from '../client/watch_stream.ts';
import type { TreeOp } from '../tree/ops.ts';
import { assertNever } from '../base/assert.ts';
import type { WatchRequest } from '../watch/messages.ts';
import { parseAddress, type HostPort } from './address.ts';
import { FramedSocket } from './framed_socket.ts';
import { describeSocketError, type TlsClientOptions } from './tls.ts';

export type ConnectOptions = {
  /** The node's auth token (`--auth-token-file` on the node), sent in hello. */
  readonly token?: string;
  /** Dial TLS, trusting the node's certificate only if `tls.ca` signed it. Absent: plaintext. */
  readonly tls?: TlsClientOptions;
  /** Session behaviour in client ticks of `tickMs`; defaults as a node's own proxy. */
  readonly client?: Partial<Omit<ClientConfig, 'replicaCount'>>;
  /** Milliseconds per client tick. Default 50. */
  readonly tickMs?: number;
  /** Sessions per namespace: the most requests in flight. Default 1024. */
  readonly sessionsMax?: number;
  /** Calls waiting for a session per namespace before `overloaded`. Default 100,000. */
  readonly waitingMax?: number;
  /** Deadline to connect and be welcomed, per address. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** The largest frame this client accepts. Default: what the node announces in its welcome, at most 256 MiB. */
  readonly frameBytesMax?: number;
  /** Watch machines' timing in client ticks, and their ack interval (src/client/watch.ts); defaults as the embedding API's. */
  readonly watch?: Partial<Omit<WatchMachineConfig, 'replicaCount'>>;
  /**
   * Watches open at once on this connection; one more throws `too_many_watches`. Default 1024,
   * a node's default per connection (past the node's own limit a watch would only be refused).
   */
  readonly watchesMax?: number;
  /** Batches a watch buffers for an application that does not read them; past it the watch ends `lagging`. Default 10,000. */
  readonly watchBatchesMax?: number;
};

/** Addresses learned from redirects are kept up to this many (with the ones given). */
const redirectAddressesMax = 64;
/** The most a node may make this client buffer for one frame, unless `frameBytesMax` says otherwise. */
const frameBytesCap = 256 * 1024 * 1024;
/** Redirects are followed at most this often, so two nodes cannot bounce a client back and forth. */
const redirectIntervalMs = 1_000;

type Caller = { readonly resolve: (outcome: CallOutcome) => void; readonly reject: (error: HaretError) => void };
/** A request frame in flight on the current socket: which session's request it carried. */
type InFlight = { readonly clientId: string; readonly requestNum: number };

export class RemoteConnection {
  readonly #addresses: HostPort[];
  readonly #options: ConnectOptions;
  readonly #tickMs: number;
  #host: HostState;
  #inputs: HostInput[] = [];
  /** Namespaces the nodes described, by name (limits, replica count). */
  readonly #infos = new Map<string, NamespaceInfo>();
  readonly #callers = new Map<number, Caller>();
  readonly #clients = new Map<string, NamespaceClient>();
  readonly #inFlight = new Map<number, InFlight>();
  readonly #listWaiters = new Map<number, (namespaces: readonly NamespaceInfo[]) => void>();
  readonly #watches: WatchRegistry;
  #socket: FramedSocket | null = null;
  #current: HostPort | null = null;
  #next = 0;
  #nextCallId = 1;
  #nextId = 1;
  #stepScheduled = false;
  #closed = false;
  #ticker: NodeJS.Timeout | null = null;
  #lastRedirectMs = Number.NEGATIVE_INFINITY;
  /** Set when a node refused our token after we were connected: every call fails with it. */
  #refusal: HaretError | null = null;
  /** The names of the namespaces the node serves, from its welcome (and `refreshNamespaces`). */
  namespaces: readonly string[] = [];
  /** The node's name, from its welcome. */
  node = '';

  private constructor(addresses: readonly string[], options: ConnectOptions) {
    if (addresses.length === 0) throw new RangeError('connect needs at least one address');
    this.#addresses = addresses.map((address) => parseAddress(address));
    this.#options = options;
    this.#tickMs = options.tickMs ?? serviceClientTickMs;
    if (!Number.isFinite(this.#tickMs) || this.#tickMs < 1) throw new RangeError('tickMs must be at least 1');
    this.#host = initialHostState({
      client: { ...serviceClientConfig, ...options.client },
      sessionsMax: options.sessionsMax ?? 1024,
      waitingMax: options.waitingMax ?? 100_000,
    });
    this.#watches = new WatchRegistry(
      'w',
      (ns, replica, request) => this.#sendWatch(ns, replica, request),
      { ...defaultWatchMachineConfig, ...options.watch },
      { watchesMax: options.watchesMax ?? 1024, bufferedBatchesMax: options.watchBatchesMax ?? 10_000 },
      // Spreads each watch's first replica; not a secret.
      () => randomInt(2 ** 30) / 2 ** 30,
    );
  }

  static async open(addresses: readonly string[], options: ConnectOptions = {}): Promise<RemoteConnection> {
    const connection = new RemoteConnection(addresses, options);
    await connection.#connectAny();
    connection.#ticker = setInterval(() => connection.#tick(), connection.#tickMs);
    connection.#ticker.unref();
    return connection;
  }

  /**
   * Asks the node for the namespaces it serves now (a namespace created in the cluster after
   * this connection was welcomed is not in `namespaces` until then).
   */
  refreshNamespaces(timeoutMs = 5_000): Promise<readonly string[]> {
    const socket = this.#socket;
    if (this.#closed || socket === null || !socket.writable) return Promise.reject(new HaretError('unavailable', 'not connected', false));
    const id = this.#nextId++;
    return new Promise<readonly string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#listWaiters.delete(id)) reject(new HaretError('timeout', `no namespace list within ${timeoutMs} ms`, false));
      }, timeoutMs);
      timer.unref();
      this.#listWaiters.set(id, () => {
        clearTimeout(timer);
        resolve(this.namespaces);
      });
      socket.write(encodeClientFrame({ type: 'list_namespaces', id }));
    });
  }

  /** The typed client of a namespace, the same class the embedding API returns. */
  client(namespace = 'default'): NamespaceClient {
    let client = this.#clients.get(namespace);
    if (client === undefined) {
      const info = this.#infos.get(namespace);
      if (info === undefined) throw new HaretError('unknown_namespace', `no namespace ${namespace} on ${this.node}`, false);
      client = new NamespaceClient(namespace, (ns, op) => this.#call(ns, op), info.limits, (ns, spec) => this.#watch(ns, spec), coordinationFor);
      this.#clients.set(namespace, client);
    }
    return client;
  }

  /** Watches open on this connection. */
  get watchesOpen(): number {
    return this.#watches.openCount;
  }

  /**
   * Closes the connection; calls still waiting fail with `stopped` (they may have run), and
   * every watch ends with `stopped` (the node cancels them at their replicas when the
   * connection closes).
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#socket?.destroy('local', 'closed by the client');
    this.#socket = null;
    this.#watches.closeAll(new HaretError('stopped', 'the connection was closed; the watch ended', false));
    const waiting = [...this.#callers.values()];
    this.#callers.clear();
    for (const caller of waiting) caller.reject(new HaretError('stopped', 'the connection was closed before the call completed; it may or may not have executed', 'maybe'));
  }

  #call(ns: string, op: TreeOp): Promise<CallOutcome> {
    if (this.#refusal !== null) return Promise.reject(new HaretError('unauthenticated', this.#refusal.message, false));
    if (this.#closed) return Promise.reject(new HaretError('stopped', 'the connection is closed', false));
    const callId = this.#nextCallId;
    this.#nextCallId += 1;
    const promise = new Promise<CallOutcome>((resolve, reject) => this.#callers.set(callId, { resolve, reject }));
    this.#inputs.push({ type: 'call', callId, ns, op });
    this.#scheduleStep();
    return promise;
  }

  #tick(): void {
    this.#inputs.push({ type: 'tick' });
    this.#step();
    this.#watches.tick();
  }

  #watch(ns: string, spec: WatchSpec): WatchStream {
    if (this.#refusal !== null) throw new HaretError('unauthenticated', this.#refusal.message, false);
    if (this.#closed) throw new HaretError('stopped', 'the connection is closed', false);
    const info = this.#infos.get(ns);
    if (info === undefined) throw new HaretError('unknown_namespace', `no namespace ${ns} on ${this.node}`, false);
    return this.#watches.open(ns, info.replicas, spec);
  }

  /** A watch machine's request as a frame on the current socket; without one it is dropped (the machine resubscribes when it hears nothing). */
  #sendWatch(ns: string, replica: number, request: WatchRequest): void {
    const socket = this.#socket;
    if (socket === null || !socket.writable) return;
    socket.write(encodeClientFrame(watchFrame(ns, replica, request)));
  }

  #scheduleStep(): void {
    if (this.#stepScheduled) return;
    this.#stepScheduled = true;
    setImmediate(() => this.#step());
  }

  /** One host step for everything queued; the requests it sends leave in one write. */
  #step(): void {
    this.#stepScheduled = false;
    if (this.#inputs.length === 0) return;
    const inputs = this.#inputs;
    this.#inputs = [];
    const stepped = hostStepAll(this.#host, inputs);
    this.#host = stepped.state;
    const frames: Uint8Array[] = [];
    for (const effect of stepped.effects) this.#apply(effect, frames);
    const socket = this.#socket;
    if (frames.length > 0 && socket !== null) socket.write(Buffer.concat(frames));
  }

  #apply(effect: HostEffect, frames: Uint8Array[]): void {
    switch (effect.type) {
      case 'send': {
        // Without a connection the request is not sent; the session resends it on its timer.
        if (this.#socket === null) return;
        const id = this.#nextId++;
        const request = effect.request;
        this.#inFlight.set(id, { clientId: request.clientId, requestNum: request.requestNum });
        frames.push(encodeClientFrame({ type: 'request', id, ns: effect.ns, replica: effect.replica, clientId: request.clientId, requestNum: request.requestNum, op: request.op }));
        return;
      }
      case 'result': {
        const caller = this.#callers.get(effect.callId);
        this.#callers.delete(effect.callId);
        caller?.resolve(effect.result);
        return;
      }
      case 'trace':
        return;
      default: {
        const never: never = effect;
        void never;
      }
    }
  }

  /** Serves the namespaces a node described (new ones get sessions; known ones keep theirs). */
  #learn(namespaces: readonly NamespaceInfo[]): void {
    for (const info of namespaces) {
      const known = this.#infos.get(info.name);
      if (known !== undefined && known.replicas !== info.replicas) continue; // one group's size never changes (no reconfiguration)
      this.#infos.set(info.name, info);
      if (known === undefined) {
        this.#inputs.push({ type: 'add_namespace', ns: info.name, replicaCount: info.replicas, clientIdPrefix: sessionPrefix(randomBytes(sessionPrefixRandomBytes), this.#infos.size), seed: randomInt(2 ** 31) });
      }
    }
    this.namespaces = namespaces.map((info) => info.name);
    this.#scheduleStep();
  }

  #onMessage(message: NodeMessage): void {
    switch (message.type) {
      case 'answer':
        this.#inFlight.delete(message.id);
        this.#inputs.push({ type: 'receive', message: message.answer });
        this.#scheduleStep();
        return;
      case 'error':
        this.#onError(message.id, message.code, message.message);
        return;
      case 'redirect':
        this.#inFlight.delete(message.id);
        this.#followRedirect(message.address);
        return;
      case 'namespaces': {
        this.#learn(message.namespaces);
        const waiter = this.#listWaiters.get(message.id);
        this.#listWaiters.delete(message.id);
        waiter?.(message.namespaces);
        return;
      }
      case 'watch_events':
      case 'watch_progress':
      case 'watch_ended':
        this.#watches.receive(message);
        return;
      case 'welcome':
      case 'pong':
        return;
      default: {
        const never: never = message;
        void never;
      }
    }
  }

  /**
   * A refusal. Connection-level (no id): the connection is closed and we reconnect. For a
   * request: a refusal that would come again ends the call; any other (timeout, superseded,
   * overloaded, ...) leaves it to the session, which resends on its timer.
   */
  #onError(id: number | null, code: string, text: string): void {
    if (id === null) {
      this.#socket?.destroy('local', `the node refused the connection: ${code}`);
      return;
    }
    const request = this.#inFlight.get(id);
    this.#inFlight.delete(id);
    if (request === undefined) return;
    const reason: RefusalReason | null = code === 'malformed' ? 'invalid_request' : code === 'unknown_namespace' || code === 'frame_too_large' || code === 'unavailable' ? code : null;
    if (reason === null) return;
    this.#inputs.push({ type: 'refused', clientId: request.clientId, requestNum: request.requestNum, reason, message: text });
    this.#scheduleStep();
  }

  /**
   * The node reaches none of the namespace's replicas and names the node that hosts the one we
   * asked for: reconnect there (at most once a second); the sessions resend what was in
   * flight. Without an address the session's retry resends here.
   */
  #followRedirect(address: string | null): void {
    if (address === null) return;
    let target: HostPort;
    try {
      target = parseAddress(address);
    } catch {
      return;
    }
    const now = performance.now();
    const same = (a: HostPort | null): boolean => a !== null && a.host === target.host && a.port === target.port;
    if (same(this.#current) || now - this.#lastRedirectMs < redirectIntervalMs) return;
    this.#lastRedirectMs = now;
    let index = this.#addresses.findIndex(same);
    if (index < 0 && this.#addresses.length < redirectAddressesMax) {
      this.#addresses.push(target);
      index = this.#addresses.length - 1;
    }
    if (index < 0) return;
    this.#next = index;
    this.#socket?.destroy('local', `redirected to ${address}`);
  }

  /**
   * Tries again after `delayMs`, doubling up to 2 s, until connected or closed; a refused token
   * ends the connection (retrying with the same token cannot succeed).
   */
  #reconnect(delayMs: number): void {
    if (this.#closed) return;
    setTimeout(() => {
      if (this.#closed || this.#socket !== null) return;
      this.#connectAny().catch((error: unknown) => {
        if (error instanceof HaretError && error.code === 'unauthenticated') this.#refused(error);
        else this.#reconnect(Math.min(delayMs * 2, 2_000));
      });
    }, delayMs).unref();
  }

  /** The nodes refused our token: stop, and fail every waiting call (it may have run before the refusal). */
  #refused(error: HaretError): void {
    this.#refusal = error;
    const waiting = [...this.#callers.values()];
    this.#callers.clear();
    for (const caller of waiting) caller.reject(new HaretError('unauthenticated', `${error.message}; the call may or may not have executed before`, 'maybe'));
    void this.close();
  }

  /**
   * Tries each address in turn until one welcomes us; rejects `unauthenticated` when none did
   * and at least one refused our token, `unavailable` otherwise.
   */
  async #connectAny(): Promise<void> {
    const failures: string[] = [];
    let unauthenticated = false;
    for (let attempt = 0; attempt < this.#addresses.length; attempt += 1) {
      const address = this.#addresses[this.#next % this.#addresses.length] as HostPort;
      this.#next += 1;
      try {
        await this.#connectTo(address);
        return;
      } catch (error) {
        if (error instanceof HaretError && error.code === 'unauthenticated') unauthenticated = true;
        failures.push(`${address.host}:${address.port}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (unauthenticated) throw new HaretError('unauthenticated', `the node refused our auth token (${failures.join('; ')})`, false);
    throw new HaretError('unavailable', `no node welcomed us (${failures.join('; ')})`, false);
  }

  /**
   * One connection attempt. Settles exactly once: welcomed, or rejected on a connection error,
   * on a close or a connection-level error before the welcome (a node at its connection limit
   * answers `overloaded` and closes), or at `connectTimeoutMs`.
   */
  #connectTo(address: HostPort): Promise<void> {
    return new Promise((resolve, reject) => {
      const timeoutMs = this.#options.connectTimeoutMs ?? 5_000;
      let welcomed = false;
      let settled = false;
      const fail = (reason: string, error: Error = new Error(reason)): void => {
        if (settled) return;
        settled = true;
        framed.destroy('local', reason);
        reject(error);
      };
      const tls = this.#options.tls;
      const token = this.#options.token;
      const framed: FramedSocket = FramedSocket.dial(
        address.host,
        address.port,
        { frameBytesMax: this.#options.frameBytesMax ?? defaultWireLimits.frameBytesMax, helloTimeoutMs: timeoutMs },
        {
          onConnect: () => framed.write(encodeClientFrame({ type: 'hello', version: protocolVersion, client: 'haret-js', ...(token === undefined ? {} : { token }) })),
          onHelloTimeout: () => fail(`no welcome within ${timeoutMs} ms`),
          onFrameError: (_code, message) => {
            // After the welcome the stream is no longer aligned on frames: reconnect.
            if (welcomed) framed.destroy('frame_error', message);
            else fail(`bad frame from the node: ${message}`);
          },
          onFrame: (payload) => {
            const decoded = decodeNodeMessage(payload);
            if (!decoded.ok) return;
            const message = decoded.message;
            if (welcomed) {
              this.#onMessage(message);
            } else if (message.type === 'welcome') {
              welcomed = true;
              settled = true;
              this.#welcomed(framed, address, message);
              resolve();
            } else if (message.type === 'error' && message.id === null) {
              const reason = `${message.code}: ${message.message}`;
              fail(reason, message.code === 'unauthenticated' ? new HaretError('unauthenticated', reason, false) : new Error(reason));
            }
          },
          onClose: (reason) => {
            if (!welcomed) {
              fail(reason.cause === 'socket_error' ? describeSocketError(reason.error, reason.message, tls !== undefined) : tls === undefined ? 'closed before the welcome (if the node serves TLS, give its CA: tls.ca, --tls-ca)' : 'closed before the welcome');
              return;
            }
            if (this.#socket === framed) this.#socket = null;
            // Answers to what was in flight on it will never come: the sessions resend.
            this.#inFlight.clear();
            this.#reconnect(100);
          },
        },
        tls,
      );
    });
  }

  #welcomed(framed: FramedSocket, address: HostPort, welcome: WelcomeMessage): void {
    framed.helloDone();
    framed.setFrameBytesMax(this.#options.frameBytesMax ?? Math.min(Math.max(welcome.frameBytesMax, defaultWireLimits.frameBytesMax), frameBytesCap));
    this.#socket = framed;
    this.#current = address;
    this.node = welcome.node;
    this.#inFlight.clear();
    this.#learn(welcome.namespaces);
    // A reconnect: notices sent meanwhile are lost and the node may have cancelled the
    // watches with the old connection; resubscribe now rather than after the silence timeout.
    this.#watches.lost(null, null);
  }
}

/** A watch request as the wire's message: the same fields, plus where it goes. */
function watchFrame(ns: string, replica: number, request: WatchRequest): ClientWatchMessage {
  switch (request.type) {
    case 'watch_subscribe':
      return { type: request.type, ns, replica, watchId: request.watchId, path: request.path, recursive: request.recursive, fromOp: request.fromOp, values: request.values };
    case 'watch_ack':
      return { type: request.type, ns, replica, watchId: request.watchId, through: request.through };
    case 'watch_cancel':
      return { type: request.type, ns, replica, watchId: request.watchId };
    default:
      return assertNever(request, 'watch request type');
  }
}

/** Connects to the first node of `addresses` ("host:port") that welcomes us; see RemoteConnection. */
export function connect(addresses: readonly string[], options: ConnectOptions = {}): Promise<RemoteConnection> {
  return RemoteConnection.open(addresses, options);
}
