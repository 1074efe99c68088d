/**
 * The client library: `connect(addresses)` talks to a node's TCP client API
 * (docs/protocol.md) and returns the same typed `NamespaceClient` as the embedding API, so code
 * moves between in-process and remote unchanged.
 *
 * The library owns its VR sessions: a session pool per namespace (src/client/pool.ts, the same
 * pure logic as the node's proxy) numbers requests, retries with backoff and gives up with a
 * typed timeout. A retry re-sends the same request number, so after a reconnect, or through
 * another node, a write still runs once (the replicas' client table answers the retry).
 */

import { randomInt } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { randomSessionPrefix } from '../../actors/session_prefix.ts';
import { FrameDecoder } from '../api/frame.ts';
import { parseAddress } from './address.ts';
import { decodeNodeMessage, defaultWireLimits, encodeClientFrame, protocolVersion, type NodeMessage, type WireLimits } from '../api/wire.ts';
import type { ProxyOutcome } from '../../actors/messages.ts';
import { defaultClientConfig, type ClientConfig } from '../client/config.ts';
import { initialPoolState, poolStepAll, type PoolInput, type PoolState } from '../client/pool.ts';
import type { TreeOp } from '../tree/ops.ts';
import { NamespaceClient } from '../node/client.ts';
import { HaretError } from '../node/errors.ts';
import { nodeClientDefaults } from '../node/options.ts';
import { defaultTreeLimits } from '../tree/limits.ts';

export type ConnectOptions = {
  /** Session behaviour in client ticks of `tickMs`; defaults as a node's own proxy. */
  readonly client?: Partial<Omit<ClientConfig, 'replicaCount'>>;
  /** Milliseconds per client tick. Default 50. */
  readonly tickMs?: number;
  /** Sessions per namespace: the most requests in flight. Default 1024. */
  readonly sessionsMax?: number;
  /** Calls waiting for a session per namespace before `overloaded`. Default 100,000. */
  readonly waitingMax?: number;
  /** Deadline to connect and be welcomed, per attempt. Default 5 s. */
  readonly connectTimeoutMs?: number;
  readonly limits?: WireLimits;
};

type Ns = { readonly name: string; pool: PoolState; inputs: PoolInput[] };

/** Addresses learned from redirects are kept up to this many (with the ones given). */
const redirectAddressesMax = 64;

export class RemoteConnection {
  readonly #addresses: { host: string; port: number }[];
  /** The address of the current connection. */
  #current: { host: string; port: number } | null = null;
  readonly #listWaiters = new Map<number, (namespaces: readonly string[]) => void>();
  #lastRedirectMs = Number.NEGATIVE_INFINITY;
  readonly #options: ConnectOptions;
  readonly #limits: WireLimits;
  readonly #namespaces = new Map<string, Ns>();
  readonly #callers = new Map<number, (outcome: ProxyOutcome) => void>();
  readonly #clients = new Map<string, NamespaceClient>();
  #socket: Socket | null = null;
  #next = 0;
  #nextCallId = 1;
  #nextId = 1;
  #stepScheduled = false;
  #closed = false;
  #ticker: NodeJS.Timeout | null = null;
  /** Namespaces the node serves, from its welcome. */
  namespaces: readonly string[] = [];
  /** The node's name, from its welcome. */
  node = '';

  private constructor(addresses: readonly string[], options: ConnectOptions) {
    if (addresses.length === 0) throw new RangeError('connect needs at least one address');
    this.#addresses = addresses.map((address) => parseAddress(address));
    this.#options = options;
    this.#limits = options.limits ?? defaultWireLimits;
  }

  static async open(addresses: readonly string[], options: ConnectOptions = {}): Promise<RemoteConnection> {
    const connection = new RemoteConnection(addresses, options);
    await connection.#connectAny();
    connection.#ticker = setInterval(() => connection.#tick(), options.tickMs ?? 50);
    connection.#ticker.unref();
    return connection;
  }

  /**
   * Asks the node for the namespaces it serves now (a namespace created in the cluster after
   * this connection was welcomed is not in `namespaces` until then).
   */
  refreshNamespaces(timeoutMs = 5_000): Promise<readonly string[]> {
    const socket = this.#socket;
    if (this.#closed || socket === null || !socket.writable) return Promise.reject(new HaretError('stopped', 'not connected', false));
    const id = this.#nextId++;
    return new Promise<readonly string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#listWaiters.delete(id)) reject(new HaretError('timeout', `no namespace list within ${timeoutMs} ms`, false));
      }, timeoutMs);
      timer.unref();
      this.#listWaiters.set(id, (namespaces) => {
        clearTimeout(timer);
        resolve(namespaces);
      });
      socket.write(encodeClientFrame({ type: 'list_namespaces', id }));
    });
  }

  /** The typed client of a namespace, the same class the embedding API returns. */
  client(namespace = 'default'): NamespaceClient {
    let client = this.#clients.get(namespace);
    if (client === undefined) {
      if (!this.namespaces.includes(namespace)) throw new HaretError('unknown_namespace', `no namespace ${namespace} on ${this.node}`, false);
      client = new NamespaceClient(namespace, (ns, op) => this.#call(ns, op), defaultTreeLimits);
      this.#clients.set(namespace, client);
    }
    return client;
  }

  /** Closes the connection; calls still waiting fail with `stopped`. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#socket?.destroy();
    this.#socket = null;
    const waiting = [...this.#callers.values()];
    this.#callers.clear();
    for (const resolve of waiting) resolve({ type: 'timeout' });
  }

  #pool(ns: string): Ns {
    let state = this.#namespaces.get(ns);
    if (state === undefined) {
      const client: ClientConfig = { ...defaultClientConfig, ...nodeClientDefaults, ...this.#options.client, replicaCount: 1 };
      const prefix = randomSessionPrefix(this.#namespaces.size);
      state = {
        name: ns,
        pool: initialPoolState({ client, sessionsMax: this.#options.sessionsMax ?? 1024, waitingMax: this.#options.waitingMax ?? 100_000, clientIdPrefix: prefix }, randomInt(2 ** 31)),
        inputs: [],
      };
      this.#namespaces.set(ns, state);
    }
    return state;
  }

  #call(ns: string, op: TreeOp): Promise<ProxyOutcome> {
    if (this.#closed) return Promise.reject(new HaretError('stopped', 'the connection is closed', false));
    const callId = this.#nextCallId;
    this.#nextCallId += 1;
    const promise = new Promise<ProxyOutcome>((resolve) => this.#callers.set(callId, resolve));
    this.#pool(ns).inputs.push({ type: 'call', callId, op });
    this.#scheduleStep();
    return promise;
  }

  #tick(): void {
    for (const ns of this.#namespaces.values()) ns.inputs.push({ type: 'tick' });
    this.#step();
  }

  #scheduleStep(): void {
    if (this.#stepScheduled) return;
    this.#stepScheduled = true;
    setImmediate(() => this.#step());
  }

  /** One pool transition per namespace for everything queued; requests leave in one write. */
  #step(): void {
    this.#stepScheduled = false;
    const frames: Uint8Array[] = [];
    for (const ns of this.#namespaces.values()) {
      if (ns.inputs.length === 0) continue;
      const inputs = ns.inputs;
      ns.inputs = [];
      const result = poolStepAll(ns.pool, inputs);
      ns.pool = result.state;
      for (const effect of result.effects) {
        if (effect.type === 'send') {
          // The node forwards to the namespace's primary; the replica index is the node's business.
          const request = effect.request;
          frames.push(encodeClientFrame({ type: 'request', id: this.#nextId++, ns: ns.name, clientId: request.clientId, requestNum: request.requestNum, op: request.op }));
        } else if (effect.type === 'result') {
          const resolve = this.#callers.get(effect.callId);
          this.#callers.delete(effect.callId);
          resolve?.(effect.result);
        }
      }
    }
    if (frames.length > 0 && this.#socket !== null && this.#socket.writable) this.#socket.write(Buffer.concat(frames));
  }

  #onMessage(message: NodeMessage): void {
    switch (message.type) {
      case 'answer': {
        const ns = this.#namespaces.get(message.ns);
        if (ns === undefined) return;
        ns.inputs.push({ type: 'receive', message: message.answer });
        this.#scheduleStep();
        return;
      }
      case 'error':
        // A request refused by the node is retried by its session (same request number); a
        // connection-level error closes the connection, and we reconnect.
        if (message.id === null) this.#socket?.destroy();
        return;
      case 'redirect':
        this.#followRedirect(message.address);
        return;
      case 'namespaces': {
        const waiter = this.#listWaiters.get(message.id);
        this.#listWaiters.delete(message.id);
        this.namespaces = message.namespaces;
        waiter?.(message.namespaces);
        return;
      }
      case 'welcome':
      case 'pong':
      case 'retry_after':
        return;
      default: {
        const never: never = message;
        void never;
      }
    }
  }

  /**
   * The node cannot reach the namespace's replicas and names the node that hosts its primary:
   * reconnect there (at most once a second, so two nodes cannot bounce us back and forth);
   * the sessions resend what was in flight. Without an address the session's retry resends.
   */
  #followRedirect(address: string | null): void {
    if (address === null) return;
    let target: { host: string; port: number };
    try {
      target = parseAddress(address);
    } catch {
      return;
    }
    const now = performance.now();
    const same = (a: { host: string; port: number } | null): boolean => a !== null && a.host === target.host && a.port === target.port;
    if (same(this.#current) || now - this.#lastRedirectMs < 1_000) return;
    this.#lastRedirectMs = now;
    let index = this.#addresses.findIndex(same);
    if (index < 0 && this.#addresses.length < redirectAddressesMax) {
      this.#addresses.push(target);
      index = this.#addresses.length - 1;
    }
    if (index < 0) return;
    this.#next = index;
    this.#socket?.destroy();
  }

  /** Tries again after `delayMs`, doubling up to 2 s, until connected or closed. */
  #reconnect(delayMs: number): void {
    if (this.#closed) return;
    setTimeout(() => {
      if (this.#closed || this.#socket !== null) return;
      this.#connectAny().catch(() => this.#reconnect(Math.min(delayMs * 2, 2_000)));
    }, delayMs).unref();
  }

  /** Tries each address in turn until one welcomes us. */
  async #connectAny(): Promise<void> {
    let lastError: unknown = null;
    for (let attempt = 0; attempt < this.#addresses.length; attempt += 1) {
      const address = this.#addresses[this.#next % this.#addresses.length] as { host: string; port: number };
      this.#next += 1;
      try {
        await this.#connectTo(address);
        return;
      } catch (error) {
        lastError = error;
      }
    }
    throw new HaretError('timeout', `could not connect to ${this.#addresses.map((a) => `${a.host}:${a.port}`).join(', ')}: ${String(lastError)}`, false);
  }

  #connectTo(address: { host: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(address.port, address.host);
      const decoder = new FrameDecoder({ frameBytesMax: this.#limits.frameBytesMax });
      let welcomed = false;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('no welcome in time'));
      }, this.#options.connectTimeoutMs ?? 5_000);
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(encodeClientFrame({ type: 'hello', version: protocolVersion, client: 'haret-js' })));
      socket.on('data', (chunk: Buffer) => {
        for (const event of decoder.push(chunk)) {
          if (event.type === 'error') {
            socket.destroy();
            return;
          }
          const decoded = decodeNodeMessage(event.payload, this.#limits);
          if (!decoded.ok) continue;
          if (!welcomed && decoded.message.type === 'welcome') {
            welcomed = true;
            clearTimeout(timer);
            this.namespaces = decoded.message.namespaces;
            this.node = decoded.message.node;
            this.#socket = socket;
            this.#current = address;
            resolve();
            continue;
          }
          if (welcomed) this.#onMessage(decoded.message);
        }
      });
      socket.on('error', (error) => {
        if (!welcomed) {
          clearTimeout(timer);
          reject(error);
        }
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (!welcomed) return;
        if (this.#socket === socket) this.#socket = null;
        // Reconnect; the sessions' retries re-send what was in flight (same request numbers).
        this.#reconnect(100);
      });
    });
  }
}

/** Connects to the first node of `addresses` ("host:port") that answers; see RemoteConnection. */
export function connect(addresses: readonly string[], options: ConnectOptions = {}): Promise<RemoteConnection> {
  return RemoteConnection.open(addresses, options);
}
