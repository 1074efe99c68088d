/**
 * One framed TCP connection, the way every socket of haret is handled: the client API server,
 * the admin server and its client, the client library and the cluster links. Frames are
 * src/api/frame.ts's (a 4-byte big-endian length, then the payload).
 *
 * What each of those needs, done once:
 * - a frame size limit per connection that can change (small until hello, larger after);
 * - frames delivered one by one, and none after the connection started closing;
 * - optional write backpressure: past a soft bound of unsent bytes the socket is not read
 *   until they drain (a peer that does not read its answers sends nothing new), past a hard
 *   bound (default four times the soft one) the connection is destroyed;
 * - a hello deadline (cleared by `helloDone`) and an idle timeout, each with a callback;
 * - "last words": a final frame, then end; what the peer still sends is read and discarded
 *   (a socket that is not read never sees the peer's close), and the socket is destroyed after
 *   a grace period whatever the peer does;
 * - close-once: `destroy` and `lastWords` may be called any number of times, the socket is
 *   destroyed at most once, and `onClose` runs once with the reason the close began with.
 *
 * No backpressure by default: the client library must not stop reading because its own writes
 * are backed up (both ends would then wait for each other).
 */

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { FrameDecoder, frameHeaderBytes, type FrameErrorCode } from '../api/frame.ts';
import { dial, type TlsClientOptions } from './tls.ts';

export type CloseCause =
  /** The peer closed (or the connection ended without another cause). */
  | 'peer'
  /** A socket error (refused, reset, ...); `error` holds it. */
  | 'socket_error'
  /** A bad length prefix and no `onFrameError` handler. */
  | 'frame_error'
  /** No `helloDone` within `helloTimeoutMs` and no `onHelloTimeout` handler. */
  | 'hello_timeout'
  /** No traffic within `idleTimeoutMs` and no `onIdle` handler. */
  | 'idle'
  /** Unsent bytes past the hard bound. */
  | 'write_overflow'
  /** `lastWords` was called. */
  | 'last_words'
  /** The owner called `destroy`. */
  | 'local';

export type CloseReason = { readonly cause: CloseCause; readonly message: string; readonly error?: Error };

export type FramedSocketOptions = {
  /** Largest payload accepted, in bytes; see `setFrameBytesMax`. */
  readonly frameBytesMax: number;
  /** Unsent bytes past which the socket is not read until they drain. Absent: no backpressure. */
  readonly writeBufferBytesMax?: number;
  /** Unsent bytes past which the connection is destroyed. Default: 4 x writeBufferBytesMax. */
  readonly writeBufferHardBytesMax?: number;
  /** The owner must call `helloDone` within this long. Absent: no deadline. */
  readonly helloTimeoutMs?: number;
  /** Neither read nor write for this long calls `onIdle`. Absent: no idle timeout. */
  readonly idleTimeoutMs?: number;
};

export type FramedSocketHandlers = {
  onFrame(payload: Uint8Array): void;
  /** A bad prefix: nothing more will be delivered. Default: destroy with cause `frame_error`. */
  onFrameError?(code: FrameErrorCode, message: string): void;
  /** A dialled socket connected (for TLS: the handshake is done and the server's certificate verified). */
  onConnect?(): void;
  /** Default: destroy with cause `hello_timeout`. */
  onHelloTimeout?(): void;
  /** Default: destroy with cause `idle`. */
  onIdle?(): void;
  /** Unsent bytes drained (after reading resumed, when backpressure had paused it). */
  onDrain?(): void;
  onClose?(reason: CloseReason): void;
};

/** What a write did: sent (or queued), paused reading (soft bound), destroyed (hard bound), or nothing (closing). */
export type WriteOutcome = 'written' | 'paused' | 'overflow' | 'closed';

export class FramedSocket {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #handlers: FramedSocketHandlers;
  readonly #writeSoftMax: number | null;
  readonly #writeHardMax: number;
  #helloTimer: NodeJS.Timeout | null = null;
  #graceTimer: NodeJS.Timeout | null = null;
  /** Frames are delivered; false once the connection started closing. */
  #reading = true;
  /** Reading paused by backpressure. */
  #paused = false;
  /** Frames of the current chunk decoded but not delivered yet (see `hasMoreInput`). */
  #undelivered = 0;
  #reason: CloseReason | null = null;
  #resolveClosed: (reason: CloseReason) => void = () => undefined;
  /** Resolves once the socket closed, with the reason. */
  readonly closed: Promise<CloseReason>;
  /** performance.now() when the last frame was delivered (or the connection was made). */
  lastFrameMs: number;

  constructor(socket: Socket, options: FramedSocketOptions, handlers: FramedSocketHandlers) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder({ frameBytesMax: options.frameBytesMax });
    this.#handlers = handlers;
    this.#writeSoftMax = options.writeBufferBytesMax ?? null;
    this.#writeHardMax = options.writeBufferHardBytesMax ?? 4 * (options.writeBufferBytesMax ?? 0);
    this.lastFrameMs = performance.now();
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    socket.setNoDelay(true);
    // Over TLS "connected" means the handshake verified the peer; what is written before is queued by node.
    if (handlers.onConnect !== undefined) socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => handlers.onConnect?.());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('error', (error) => this.#destroy({ cause: 'socket_error', message: error.message, error }));
    socket.on('close', () => this.#onClose());
    if (options.helloTimeoutMs !== undefined) {
      this.#helloTimer = setTimeout(() => {
        this.#helloTimer = null;
        if (handlers.onHelloTimeout !== undefined) handlers.onHelloTimeout();
        else this.destroy('hello_timeout', `no hello within ${options.helloTimeoutMs} ms`);
      }, options.helloTimeoutMs);
    }
    if (options.idleTimeoutMs !== undefined) {
      socket.setTimeout(options.idleTimeoutMs, () => {
        if (handlers.onIdle !== undefined) handlers.onIdle();
        else this.destroy('idle', `idle for ${options.idleTimeoutMs} ms`);
      });
    }
  }

  /**
   * Dials host:port, over TLS when `tls` is given (src/net/tls.ts); `onConnect` runs once
   * connected. A certificate that does not verify closes with cause `socket_error`.
   */
  static dial(host: string, port: number, options: FramedSocketOptions, handlers: FramedSocketHandlers, tls?: TlsClientOptions): FramedSocket {
    return new FramedSocket(dial(host, port, tls), options, handlers);
  }

  /** Limit for the frames that follow (one already announced keeps its limit). */
  setFrameBytesMax(frameBytesMax: number): void {
    this.#decoder.setFrameBytesMax(frameBytesMax);
  }

  /** The hello arrived: the hello deadline no longer applies. */
  helloDone(): void {
    if (this.#helloTimer !== null) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
  }

  /** Neither closing nor closed. */
  get isOpen(): boolean {
    return this.#reason === null && !this.#socket.destroyed;
  }

  /** Writes are accepted (open, and the socket is writable). */
  get writable(): boolean {
    return this.isOpen && this.#socket.writable;
  }

  /** Bytes handed to the socket and not yet sent. */
  get writableLength(): number {
    return this.#socket.writableLength;
  }

  /** The socket's own buffer is full: wait for `onDrain` before writing more. */
  get needsDrain(): boolean {
    return this.#socket.writableNeedDrain;
  }

  /**
   * While a frame is being handled: true when more bytes already arrived behind it (later
   * frames of the same chunk, or part of one). A peer that must wait for an answer before
   * sending more breaks the protocol if this is true.
   */
  get hasMoreInput(): boolean {
    return this.#undelivered > 0 || this.#decoder.bufferedBytes > 0;
  }

  /**
   * Bytes of one or more complete frames (prefixes included). Frames written in one turn of the
   * event loop leave together: the socket is corked at the first and uncorked on the next tick,
   * so a batch of answers (a replica's replies arrive batched) costs one writev, not a syscall
   * each (measured: socket writes were a quarter of a node's main thread under 1,024 callers).
   * Backpressure counts what this turn wrote as unsent until then: a turn writing more than
   * the soft bound pauses reading until the kernel has taken it.
   */
  write(frames: Uint8Array): WriteOutcome {
    if (!this.writable) return 'closed';
    this.#corkForThisTurn();
    this.#socket.write(frames);
    return this.#account();
  }

  #corked = false;

  #corkForThisTurn(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    process.nextTick(() => this.#uncork());
  }

  /**
   * Sends what was written since the cork now, not at the end of the turn: for a writer that
   * knows its batch is complete (the TCP server after a batch of replica answers), when more
   * work of the same turn (other actors of the thread) would otherwise hold the answers back.
   */
  flushWrites(): void {
    this.#uncork();
  }

  #uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  }

  /** One frame around `payload`: prefix and payload in two writes, one syscall, no copy of the payload. */
  writePayload(payload: Uint8Array): WriteOutcome {
    if (!this.writable) return 'closed';
    const header = new Uint8Array(frameHeaderBytes);
    new DataView(header.buffer).setUint32(0, payload.byteLength);
    this.#corkForThisTurn();
    this.#socket.write(header);
    this.#socket.write(payload);
    return this.#account();
  }

  /**
   * A final frame, then end: nothing more is delivered or written, what the peer sends is read
   * and discarded, and the socket is destroyed after `graceMs` whatever the peer does. A no-op
   * once the connection is closing.
   */
  lastWords(frame: Uint8Array, graceMs: number, message = 'closed after its last words'): void {
    if (!this.isOpen) return;
    if (!this.#socket.writable) {
      this.destroy('last_words', message);
      return;
    }
    this.#beginClose({ cause: 'last_words', message });
    this.#socket.end(frame);
    this.#socket.resume();
    this.#graceTimer = setTimeout(() => this.#socket.destroy(), graceMs);
    this.#graceTimer.unref();
  }

  /** Closes now (at most once; a later call keeps the first reason). */
  destroy(cause: CloseCause = 'local', message = 'closed by this side'): void {
    this.#destroy({ cause, message });
  }

  #destroy(reason: CloseReason): void {
    this.#beginClose(reason);
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  #beginClose(reason: CloseReason): void {
    this.#reason ??= reason;
    this.#reading = false;
    this.helloDone();
  }

  #onData(chunk: Buffer): void {
    if (!this.#reading) return;
    const events = this.#decoder.push(chunk);
    try {
      for (let index = 0; index < events.length; index += 1) {
        if (!this.#reading) return;
        const event = events[index];
        if (event === undefined) return;
        this.#undelivered = events.length - index - 1;
        if (event.type === 'error') {
          if (this.#handlers.onFrameError !== undefined) this.#handlers.onFrameError(event.code, event.message);
          else this.destroy('frame_error', event.message);
          return;
        }
        this.lastFrameMs = performance.now();
        this.#handlers.onFrame(event.payload);
      }
    } finally {
      this.#undelivered = 0;
    }
  }

  #account(): WriteOutcome {
    if (this.#writeSoftMax === null) return 'written';
    const unsent = this.#socket.writableLength;
    if (unsent > this.#writeHardMax) {
      this.destroy('write_overflow', `${unsent} bytes unsent, over the limit of ${this.#writeHardMax}`);
      return 'overflow';
    }
    if (unsent > this.#writeSoftMax && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
      return 'paused';
    }
    return 'written';
  }

  #onDrain(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    this.#handlers.onDrain?.();
  }

  #onClose(): void {
    this.helloDone();
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    const reason = this.#reason ?? { cause: 'peer', message: 'the connection closed' };
    this.#reason = reason;
    this.#reading = false;
    this.#resolveClosed(reason);
    this.#handlers.onClose?.(reason);
  }
}
