/**
 * A client written from docs/protocol.md alone, for tests that must see what the client
 * library hides: it speaks raw frames, sends whatever it is told (valid or not), and records
 * every message the node sends, with the time it arrived.
 */

import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FrameDecoder } from '../../src/api/frame.ts';
import { decodeNodeMessage, encodeClientFrame, type ClientMessage, type NodeMessage, type WelcomeMessage } from '../../src/api/wire.ts';

export type Received = { readonly message: NodeMessage; readonly atMs: number };

/** Frames of up to 64 MiB are read (larger than any node's limit, so the test sees what a node sends). */
const readLimit = 64 * 1024 * 1024;

export class RawClient {
  readonly socket: Socket;
  readonly received: Received[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  readonly #decoder = new FrameDecoder({ frameBytesMax: readLimit });
  #waiters: { predicate: (message: NodeMessage) => boolean; resolve: (received: Received) => void }[] = [];
  /** Messages by the id they carry, and callers waiting for one (kept apart: a flood test waits on thousands). */
  readonly #byId = new Map<number, Received[]>();
  readonly #idWaiters = new Map<number, ((received: Received) => void)[]>();
  #closeWaiters: (() => void)[] = [];
  /** Frames that did not decode (the test asserts there are none where it matters). */
  undecodable = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    void this.closed.then(() => {
      this.#isClosed = true;
      for (const waiter of this.#closeWaiters) waiter();
    });
  }

  /**
   * Connects (no hello). `ca`: over TLS, trusting that CA; `localAddress`: the address to
   * connect from (another loopback address, 127.0.0.2, is another client to the node).
   */
  static connect(port: number, host = '127.0.0.1', options: { readonly ca?: string; readonly localAddress?: string } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const tls = options.ca !== undefined;
      const socket = tls
        ? tlsConnect({ port, host, ca: options.ca, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) })
        : tcpConnect({ port, host, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) });
      socket.setNoDelay(true);
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and says hello (with `token`, if given); resolves with the welcome. */
  static async open(port: number, token?: string): Promise<{ client: RawClient; welcome: WelcomeMessage }> {
    const client = await RawClient.connect(port);
    client.send({ type: 'hello', version: 1, client: 'raw-test', ...(token === undefined ? {} : { token }) });
    const welcome = await client.next((m) => m.type === 'welcome', 10_000);
    return { client, welcome: welcome.message as WelcomeMessage };
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(...messages: ClientMessage[]): void {
    this.socket.write(Buffer.concat(messages.map((message) => encodeClientFrame(message))));
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The first message (already received or to come) matching `predicate`. */
  next(predicate: (message: NodeMessage) => boolean, timeoutMs = 10_000): Promise<Received> {
    const found = this.received.find((r) => predicate(r.message));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw client: no matching message within ${timeoutMs} ms (have ${this.received.map((r) => r.message.type).join(', ')})`)), timeoutMs);
      this.#waiters.push({
        predicate,
        resolve: (received) => {
          clearTimeout(timer);
          resolve(received);
        },
      });
    });
  }

  /** The message answering `id` (answer, redirect, namespaces, pong or error with that id). */
  answerTo(id: number, timeoutMs = 10_000): Promise<Received> {
    const found = this.#byId.get(id)?.[0];
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw client: no answer to id ${id} within ${timeoutMs} ms`)), timeoutMs);
      const waiters = this.#idWaiters.get(id) ?? [];
      waiters.push((received) => {
        clearTimeout(timer);
        resolve(received);
      });
      this.#idWaiters.set(id, waiters);
    });
  }

  /** Every message with this id received so far. */
  allFor(id: number): NodeMessage[] {
    return (this.#byId.get(id) ?? []).map((r) => r.message);
  }

  /** Resolves when the node has closed the connection; rejects after `timeoutMs`. */
  closedWithin(timeoutMs: number): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw client: still open after ${timeoutMs} ms`)), timeoutMs);
      this.#closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops reading (the node's writes then back up); `resume` reads again. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    for (const event of this.#decoder.push(chunk)) {
      if (event.type !== 'frame') return;
      const decoded = decodeNodeMessage(event.payload);
      if (!decoded.ok) {
        this.undecodable += 1;
        continue;
      }
      const received = { message: decoded.message, atMs: performance.now() };
      this.received.push(received);
      const id = 'id' in received.message ? received.message.id : null;
      if (id !== null) {
        const list = this.#byId.get(id) ?? [];
        list.push(received);
        this.#byId.set(id, list);
        const waiters = this.#idWaiters.get(id);
        this.#idWaiters.delete(id);
        for (const waiter of waiters ?? []) waiter(received);
      }
      if (this.#waiters.length === 0) continue;
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.predicate(received.message)) return true;
        waiter.resolve(received);
        return false;
      });
    }
  }
}

/** A register request. */
export function register(id: number, clientId: string, replica = 0, ns = 'default'): ClientMessage {
  return { type: 'request', id, ns, replica, clientId, requestNum: 0, op: { type: 'register' } };
}

/** A tree request. */
export function treeRequest(id: number, clientId: string, requestNum: number, op: import('../../src/tree/ops.ts').TreeOp, replica = 0, ns = 'default'): ClientMessage {
  return { type: 'request', id, ns, replica, clientId, requestNum, op: { type: 'tree', op } };
}

/** Sends `messages` in windows of `window` in flight, waiting for each window's answers; returns them by id. */
export async function inWindows(client: RawClient, messages: readonly ClientMessage[], window: number, timeoutMs = 30_000): Promise<Map<number, NodeMessage>> {
  const answers = new Map<number, NodeMessage>();
  for (let at = 0; at < messages.length; at += window) {
    const slice = messages.slice(at, at + window);
    client.send(...slice);
    for (const message of slice) {
      const id = (message as { id: number }).id;
      answers.set(id, (await client.answerTo(id, timeoutMs)).message);
    }
  }
  return answers;
}
