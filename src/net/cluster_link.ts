/**
 * The cluster link: TCP between nodes, carrying envelope batches (DESIGN.md "The shape in one
 * picture"). Frames are src/api/frame.ts's (4-byte big-endian length, then the payload),
 * handled by ./framed_socket.ts; each payload is one msgpack value (messages and their codec:
 * src/api/cluster_wire.ts).
 *
 * Direction: a node sends only on connections it dialled and receives envelopes only on
 * connections it accepted, so a pair of nodes holds two one-way connections and never has to
 * choose between two simultaneous ones. The dialler sends hello, the acceptor answers welcome
 * once the dialler is authenticated and from then on only reads; the dialler only writes
 * batches and pings, and reads (to validate and discard) whatever comes back, e.g. an error
 * frame before a close.
 *
 * Who may speak (issue 12). Whoever reaches the cluster port could otherwise claim any node
 * name and speak for its replicas. So a peer proves its name before any envelope is accepted,
 * by one of three modes (`ClusterSecurity`), the same on every member:
 * - 'tls': mutual TLS. Both sides present a certificate signed by the cluster's CA (nothing
 *   else is trusted: not the system store). The name in a hello must be the dialler's
 *   certificate CN or a DNS subjectAltName, and the name in the welcome the acceptor's: a
 *   certificate for n2 cannot claim n1. The chain is checked by TLS, the name binding here
 *   (the dialler dials an address and learns the name from the welcome, so node's hostname
 *   check is replaced by this one). TLS also protects every frame after the handshake.
 * - 'secret': a shared secret of at least 32 bytes and a challenge-response that binds both
 *   names; the secret never crosses the wire.
 *     dialler  -> hello     {node D, incarnation, info, nonce Nd}        (32 random bytes)
 *     acceptor -> challenge {nonce Na}                                    (no name, no info)
 *     dialler  -> proof     {mac HMAC(secret, "hello" | D | incarnation | Nd | Na)}
 *     acceptor -> welcome   {node A, info, mac HMAC(secret, "welcome" | D | A | Nd | Na)}
 *   The acceptor tells nothing (not even its name, nor whether D is its own name) before a
 *   valid proof; fresh nonces on both sides make every MAC single-use; the two labels keep a
 *   MAC made in one role from passing in the other; MACs are compared with timingSafeEqual.
 *   What it does not give: secrecy or integrity of the frames after the handshake. An
 *   attacker on the path between two members can read and inject (use 'tls' there), and one
 *   a member dials could relay that handshake to another member; members dial only addresses
 *   an operator or another member gave them.
 * - 'none': no authentication, and therefore the links listen on a loopback address only
 *   (`start` throws a RangeError otherwise): everything that can reach the port is trusted.
 * In every mode a hello naming the receiving node itself is refused, and so is a hello for a
 * node connected now under a newer incarnation (an old process of a restarted node must not
 * displace the new one); a refusal comes only after the peer authenticated, so an
 * unauthenticated caller learns nothing, and cannot close a member's connection by naming it.
 * The acceptor hands envelopes up with the authenticated name; the cluster (src/node/cluster.ts)
 * then accepts only those sent as actors of that node.
 *
 * Delivery is best effort, like the MessagePorts between workers: the protocols above retry.
 * Envelopes sent to one node within one event-loop turn leave as one frame at setImmediate.
 * While the link is down or its socket is backed up, frames wait in the node's outbox, up to
 * outboxBytesMax (then dropped and counted), and leave in order when it is up again; bytes
 * already handed to a socket that then dies are lost.
 *
 * Limits against hostile peers: a connection may send at most handshakeBytesMax before its
 * hello is accepted (so an unauthenticated peer cannot make us buffer a 256 MiB frame), and
 * frameBytesMax after; connectionsMax inbound connections; handshakeTimeoutMs for the hello;
 * peerSilenceMs of silence. Every fault closes only its own connection and bumps a counter.
 *
 * Counters: framesIn/framesOut count batch frames only (not handshakes, pings or errors), so
 * envelopes/frames is the batching ratio. rejectedConnections counts inbound connections
 * closed before their handshake completed; malformed counts bad frames and non-envelope items;
 * unauthenticated counts handshakes (either direction) whose peer did not prove its name.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { connect as tcpConnect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  batchEnvelopesMax,
  checkInfo,
  clusterProtocolVersion,
  decodeClusterFrame,
  encodeClusterFrame,
  errorMessageCharsMax,
  handshakeBytesMax,
  helloTranscript,
  isNodeName,
  isRelayable,
  nonceBytes,
  welcomeTranscript,
  type ClusterErrorCode,
  type ClusterFrame,
  type HelloFrame,
  type Info,
  type RelayedEnvelope,
  type WelcomeFrame,
} from '../api/cluster_wire.ts';
import { encodeFrame, frameHeaderBytes, frameLengthLimit } from '../api/frame.ts';
import { assertNever } from '../base/assert.ts';
import { protocolNumberMax } from '../base/limits.ts';
import { isLoopbackHost, parseAddress } from './address.ts';
import { FramedSocket } from './framed_socket.ts';
import { createServer as createListener, peerCertificateNames } from './tls.ts';

/** What the link carries; the runtime's Envelope has this shape. */
type Envelope = RelayedEnvelope;

/** How members prove who they are (see the header); the same on every member of a cluster. */
export type ClusterSecurity =
  /** Mutual TLS: PEM strings; the peer's name is its certificate's CN or a DNS subjectAltName. */
  | { readonly mode: 'tls'; readonly cert: string; readonly key: string; readonly ca: string }
  /** A shared secret of at least 32 bytes: challenge-response with HMAC-SHA256. */
  | { readonly mode: 'secret'; readonly secret: Uint8Array }
  /** Nothing: the links bind loopback only (RangeError at start otherwise). */
  | { readonly mode: 'none' };

/** Bytes a cluster secret needs at least (256 bits, the HMAC's own strength). */
export const clusterSecretBytesMin = 32;

export type ClusterLinkOptions = {
  readonly nodeName: string;
  readonly security: ClusterSecurity;
  /**
   * This process's incarnation of the node (bumped at every start, see ClusterMember), sent in
   * the hello: an acceptor refuses a hello older than the one connected now. Default 0.
   */
  readonly incarnation?: number;
  readonly host?: string;
  readonly port?: number;
  readonly info?: Readonly<Record<string, string>>;
  readonly frameBytesMax?: number;
  readonly outboxBytesMax?: number;
  readonly handshakeTimeoutMs?: number;
  readonly heartbeatMs?: number;
  readonly peerSilenceMs?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly connectionsMax?: number;
  /**
   * Connections from one remote address still in their handshake (not yet authenticated):
   * one more is refused `overloaded`, so strangers on one address cannot take every slot of
   * `connectionsMax` from the members. Default 16.
   */
  readonly handshakesPerAddressMax?: number;
};

export type ClusterLinkHandlers = {
  /** Envelopes that arrived from node `from` (already validated as envelopes: from/to strings, msg present). */
  onEnvelopes(from: string, batch: readonly Envelope[]): void;
  /** A peer finished the handshake on our outbound link (info = its handshake info). */
  onPeerUp?(node: string, info: Readonly<Record<string, string>>): void;
  /** Our outbound link to a peer went down (it will keep redialling). Not called by forget or close. */
  onPeerDown?(node: string): void;
};

export type PeerReport = {
  readonly node: string | null;
  /** "host:port" of an outbound link; '' for an outbox whose node has no link yet. */
  readonly address: string;
  readonly state: 'connecting' | 'up' | 'down';
  readonly sentEnvelopes: number;
  readonly droppedEnvelopes: number;
  readonly queuedBytes: number;
  readonly info: Readonly<Record<string, string>>;
};

export type ClusterLinkStats = {
  readonly framesIn: number;
  readonly framesOut: number;
  readonly envelopesIn: number;
  readonly envelopesOut: number;
  /** Payload bytes of the batch frames counted above. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly malformed: number;
  readonly rejectedConnections: number;
  readonly unauthenticated: number;
  readonly dropped: number;
};

type Settings = {
  readonly nodeName: string;
  readonly security: ClusterSecurity;
  readonly incarnation: number;
  readonly host: string;
  readonly port: number;
  readonly info: Info;
  readonly frameBytesMax: number;
  readonly outboxBytesMax: number;
  readonly handshakeTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly peerSilenceMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly connectionsMax: number;
  readonly handshakesPerAddressMax: number;
};

/** Outboxes for node names never seen on a link: `send` takes names from callers, so they are capped too. */
const outboxesMax = 1024;
/** Node's setTimeout takes at most 2^31 - 1 ms. */
const delayMsMax = 2_147_483_647;
/** A refused connection is destroyed this long after its error frame at the latest. */
const closeGraceMs = 1_000;

type QueuedFrame = { readonly payload: Uint8Array; readonly envelopes: number };

/** Per destination node, whether or not a link to it exists. */
type Outbox = {
  readonly node: string;
  /** Sent this turn, packed at the next flush. */
  pending: Envelope[];
  /** Packed frames waiting for the link; `head` is the next to leave (no O(n) shift). */
  frames: QueuedFrame[];
  head: number;
  bytes: number;
  sent: number;
  dropped: number;
};

type Waiter = { readonly promise: Promise<string>; readonly resolve: (node: string) => void; readonly reject: (error: Error) => void; readonly timer: NodeJS.Timeout };

/** One dialled address. */
type Outbound = {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Learned by the last welcome; kept while down, so `send` and `dial` still know it. */
  node: string | null;
  info: Info;
  state: 'connecting' | 'up' | 'down';
  socket: FramedSocket | null;
  /** The redial delay while down (the handshake deadline is the socket's). */
  timer: NodeJS.Timeout | null;
  heartbeat: NodeJS.Timeout | null;
  /** Something was written since the last heartbeat tick. */
  wrote: boolean;
  backoffMs: number;
  waiter: Waiter | null;
  /** Secret mode: this connection's nonce, sent in the hello; then the acceptor's, from its challenge. */
  nonce: Uint8Array | null;
  acceptorNonce: Uint8Array | null;
  /** TLS mode: the names the acceptor's verified certificate carries, once connected. */
  certificateNames: readonly string[] | null;
};

type Inbound = {
  readonly socket: FramedSocket;
  /** The socket under the frames (a TLSSocket in 'tls' mode): its certificate names the peer. */
  readonly raw: Socket;
  /** The authenticated name; null until the handshake completed. */
  node: string | null;
  incarnation: number;
  /** Secret mode, between hello and proof: what the hello claimed, and our challenge's nonce. */
  claimed: { readonly hello: HelloFrame; readonly diallerNonce: Uint8Array; readonly nonce: Uint8Array } | null;
};

export class ClusterLinks {
  readonly #settings: Settings;
  readonly #handlers: ClusterLinkHandlers;
  readonly #server: Server;
  readonly #ping: Uint8Array;
  /** Outbound links by normalized address. */
  readonly #links = new Map<string, Outbound>();
  /** The outbound link that serves each node (the last one welcomed under that name). */
  readonly #byNode = new Map<string, Outbound>();
  readonly #outboxes = new Map<string, Outbox>();
  readonly #inbound = new Set<Inbound>();
  readonly #inboundByNode = new Map<string, Inbound>();
  /** Refused sockets, closing after their error frame; tracked so close() leaves none. */
  readonly #refused = new Set<FramedSocket>();
  /** TLS mode: every accepted TCP socket, handshaking or not, so close() can end them all. */
  readonly #tlsSockets = new Set<Socket>();
  #flush: NodeJS.Immediate | null = null;
  #closed: Promise<void> | null = null;
  readonly #stats = { framesIn: 0, framesOut: 0, envelopesIn: 0, envelopesOut: 0, bytesIn: 0, bytesOut: 0, malformed: 0, rejectedConnections: 0, unauthenticated: 0, dropped: 0 };

  private constructor(settings: Settings, handlers: ClusterLinkHandlers, server: Server) {
    this.#settings = settings;
    this.#handlers = handlers;
    this.#server = server;
    this.#ping = encodeFrame(encodeClusterFrame({ t: 'ping' }));
  }

  /**
   * Listens; rejects with a RangeError on bad options (among them: mode 'none' on an address
   * that is not loopback) or with the listen error.
   */
  static async start(options: ClusterLinkOptions, handlers: ClusterLinkHandlers): Promise<ClusterLinks> {
    const settings = resolveSettings(options);
    const security = settings.security;
    let links: ClusterLinks | null = null;
    const accept = (socket: Socket): void => {
      if (links !== null) links.#accept(socket);
    };
    const server =
      security.mode === 'tls'
        ? createListener({ tls: { cert: security.cert, key: security.key, ca: security.ca }, handshakeTimeoutMs: settings.handshakeTimeoutMs }, accept, () => {
            // A failed TLS handshake (no certificate, another CA, a timeout): never reached #accept.
            if (links === null) return;
            links.#stats.rejectedConnections += 1;
            links.#stats.unauthenticated += 1;
          })
        : createTcpServer(accept);
    links = new ClusterLinks(settings, handlers, server);
    if (security.mode === 'tls') {
      const tracked = links.#tlsSockets;
      // Handshakes count against connectionsMax too; past it node drops the TCP connection at once.
      server.maxConnections = settings.connectionsMax;
      server.on('drop', () => {
        if (links !== null) links.#stats.rejectedConnections += 1;
      });
      server.on('connection', (socket: Socket) => {
        tracked.add(socket);
        socket.once('close', () => tracked.delete(socket));
      });
    }
    const listening = links;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port, settings.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Accept errors (e.g. out of file descriptors) must not crash the node; the peer redials.
    server.on('error', () => undefined);
    return listening;
  }

  address(): { readonly host: string; readonly port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('cluster links are not listening');
    return { host: address.address, port: address.port };
  }

  /**
   * Keeps an outbound link to `address`. Resolves with the peer's name after the first
   * handshake (at once if the link already learned it); rejects when an attempt fails before
   * one, or after timeoutMs, while the link keeps redialling. A second call while the first is
   * pending returns the same promise; after a rejection a new call waits for the next attempt.
   * A peer that names itself as this node is dropped for good.
   */
  dial(address: string, timeoutMs = 5000): Promise<string> {
    if (this.#closed !== null) return Promise.reject(new Error('cluster links are closed'));
    let host: string;
    let port: number;
    try {
      ({ host, port } = parseAddress(address));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new RangeError(String(error)));
    }
    const key = addressKey(host, port);
    let link = this.#links.get(key);
    if (link === undefined) {
      link = { address: key, host, port, node: null, info: {}, state: 'down', socket: null, timer: null, heartbeat: null, wrote: false, backoffMs: this.#settings.reconnectMinMs, waiter: null, nonce: null, acceptorNonce: null, certificateNames: null };
      this.#links.set(key, link);
      this.#connect(link);
    }
    if (link.node !== null) return Promise.resolve(link.node);
    if (link.waiter !== null) return link.waiter.promise;
    const waiting = link;
    let resolve: (node: string) => void = () => undefined;
    let reject: (error: Error) => void = () => undefined;
    const promise = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const timer = setTimeout(() => this.#settle(waiting, new Error(`no handshake with ${key} within ${timeoutMs} ms`)), Math.min(Math.max(0, timeoutMs), delayMsMax));
    link.waiter = { promise, resolve, reject, timer };
    return promise;
  }

  forget(address: string): void {
    let key: string;
    try {
      const { host, port } = parseAddress(address);
      key = addressKey(host, port);
    } catch {
      return;
    }
    const link = this.#links.get(key);
    if (link !== undefined) this.#dropLink(link, `${key} was forgotten`);
  }

  send(node: string, envelope: Envelope): void {
    const outbox = this.#outboxes.get(node);
    if (this.#closed !== null || !isNodeName(node) || !isRelayable(envelope)) {
      this.#drop(outbox, 1);
      return;
    }
    let target = outbox;
    if (target === undefined) {
      if (this.#outboxes.size >= outboxesMax) {
        this.#drop(undefined, 1);
        return;
      }
      target = { node, pending: [], frames: [], head: 0, bytes: 0, sent: 0, dropped: 0 };
      this.#outboxes.set(node, target);
    }
    target.pending.push(envelope);
    this.#flush ??= setImmediate(() => this.#flushAll());
  }

  isUp(node: string): boolean {
    return this.#byNode.get(node)?.state === 'up';
  }

  peers(): PeerReport[] {
    const reports: PeerReport[] = [];
    const linked = new Set<string>();
    for (const link of this.#links.values()) {
      const outbox = link.node === null ? undefined : this.#outboxes.get(link.node);
      if (link.node !== null) linked.add(link.node);
      reports.push(report(link.node, link.address, link.state, outbox, link.socket?.writableLength ?? 0, link.info));
    }
    for (const outbox of this.#outboxes.values()) {
      if (!linked.has(outbox.node)) reports.push(report(outbox.node, '', 'down', outbox, 0, {}));
    }
    return reports;
  }

  stats(): ClusterLinkStats {
    return { ...this.#stats };
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    if (this.#flush !== null) clearImmediate(this.#flush);
    this.#flush = null;
    const sockets: FramedSocket[] = [...this.#refused];
    for (const link of this.#links.values()) {
      if (link.socket !== null) sockets.push(link.socket);
      this.#dropLink(link, 'cluster links are closed');
    }
    for (const connection of this.#inbound) sockets.push(connection.socket);
    const closed = sockets.map((socket) => socket.closed);
    for (const socket of sockets) socket.destroy('local', 'cluster links are closed');
    // TLS handshakes still in progress hold the server open until they end.
    for (const socket of this.#tlsSockets) socket.destroy();
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.all([serverClosed, ...closed]);
  }

  // ---- outbound: dial, handshake, write ----

  #connect(link: Outbound): void {
    link.timer = null;
    if (this.#closed !== null) return;
    link.state = 'connecting';
    const security = this.#settings.security;
    link.nonce = security.mode === 'secret' ? Uint8Array.from(randomBytes(nonceBytes)) : null;
    link.acceptorNonce = null;
    link.certificateNames = null;
    const hello = encodeFrame(
      encodeClusterFrame({
        t: 'hello',
        version: clusterProtocolVersion,
        node: this.#settings.nodeName,
        incarnation: this.#settings.incarnation,
        info: this.#settings.info,
        ...(link.nonce === null ? {} : { nonce: link.nonce }),
      }),
    );
    const raw: Socket =
      security.mode === 'tls'
        ? tlsConnect({
            host: link.host,
            port: link.port,
            cert: security.cert,
            key: security.key,
            ca: security.ca,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
            // The chain is verified against the cluster CA; the name is bound to the welcome in
            // #onWelcome (we dial an address and learn the name from the answer).
            checkServerIdentity: () => undefined,
          })
        : tcpConnect({ host: link.host, port: link.port });
    const socket: FramedSocket = new FramedSocket(
      raw,
      // The acceptor sends only challenge, welcome or error: nothing larger is ever needed.
      { frameBytesMax: Math.min(handshakeBytesMax, this.#settings.frameBytesMax), helloTimeoutMs: this.#settings.handshakeTimeoutMs },
      {
        onConnect: () => {
          if (security.mode === 'tls') {
            link.certificateNames = peerCertificateNames(raw);
            if (link.certificateNames === null) {
              socket.destroy('local', 'the acceptor presented no verified certificate');
              return;
            }
          }
          socket.write(hello);
        },
        onFrame: (payload) => this.#onOutboundFrame(link, socket, payload),
        onFrameError: (_code, message) => {
          this.#stats.malformed += 1;
          socket.destroy('frame_error', message);
        },
        onDrain: () => this.#pump(link),
        onClose: () => this.#onOutboundClose(link, socket),
      },
    );
    link.socket = socket;
  }

  #onOutboundFrame(link: Outbound, socket: FramedSocket, payload: Uint8Array): void {
    if (link.socket !== socket) return;
    const decoded = decodeClusterFrame(payload);
    if (!decoded.ok) {
      this.#stats.malformed += 1;
      socket.destroy('local', decoded.message);
      return;
    }
    const frame = decoded.frame;
    if (frame.t === 'error' && frame.code === 'same_name') {
      // We dialled ourselves (or a node of our name): no redial would ever succeed.
      this.#dropLink(link, `${link.address} is this node (${this.#settings.nodeName})`);
      return;
    }
    if (frame.t === 'error') {
      // The acceptor refused us and closes; we redial after the backoff.
      this.#settle(link, new Error(`${link.address} refused the handshake: ${frame.code}: ${frame.message}`));
      socket.destroy('local', `refused: ${frame.code}`);
      return;
    }
    const security = this.#settings.security;
    if (frame.t === 'challenge' && security.mode === 'secret' && link.state === 'connecting' && link.acceptorNonce === null && link.nonce !== null) {
      link.acceptorNonce = frame.nonce;
      const mac = hmac(security.secret, helloTranscript(this.#settings.nodeName, this.#settings.incarnation, link.nonce, frame.nonce));
      socket.write(encodeFrame(encodeClusterFrame({ t: 'proof', mac })));
      return;
    }
    if (frame.t !== 'welcome' || link.state === 'up') {
      // After welcome the acceptor has nothing to say.
      this.#stats.malformed += 1;
      socket.destroy('local', `unexpected ${frame.t}`);
      return;
    }
    const problem = this.#checkWelcome(link, frame);
    if (problem !== null) {
      this.#stats.unauthenticated += 1;
      this.#settle(link, new Error(`${link.address} failed authentication: ${problem}`));
      socket.destroy('local', problem);
      return;
    }
    socket.helloDone();
    this.#onWelcome(link, frame);
  }

  /** Null when the welcome proves the acceptor's name (the mode's way), else why not. */
  #checkWelcome(link: Outbound, frame: WelcomeFrame): string | null {
    const security = this.#settings.security;
    switch (security.mode) {
      case 'none':
        return null;
      case 'tls':
        return link.certificateNames?.includes(frame.node) === true ? null : `its certificate does not name ${frame.node}`;
      case 'secret': {
        if (link.nonce === null || link.acceptorNonce === null) return 'a welcome before the challenge';
        if (frame.mac === undefined) return 'a welcome without a mac';
        const expected = hmac(security.secret, welcomeTranscript(this.#settings.nodeName, frame.node, link.nonce, link.acceptorNonce));
        return macsEqual(expected, frame.mac) ? null : 'a welcome whose mac does not prove the cluster secret';
      }
      default:
        return assertNever(security, 'cluster security mode');
    }
  }

  #onWelcome(link: Outbound, frame: WelcomeFrame): void {
    if (link.timer !== null) clearTimeout(link.timer);
    link.timer = null;
    if (frame.node === this.#settings.nodeName) {
      this.#dropLink(link, `${link.address} is this node (${frame.node})`);
      return;
    }
    if (link.node !== null && link.node !== frame.node && this.#byNode.get(link.node) === link) this.#byNode.delete(link.node);
    link.node = frame.node;
    link.info = frame.info;
    link.state = 'up';
    link.backoffMs = this.#settings.reconnectMinMs;
    link.wrote = false;
    this.#byNode.set(frame.node, link);
    link.heartbeat = setInterval(() => this.#heartbeat(link), this.#settings.heartbeatMs);
    this.#pump(link);
    this.#settle(link, frame.node);
    this.#handlers.onPeerUp?.(frame.node, frame.info);
  }

  #onOutboundClose(link: Outbound, socket: FramedSocket): void {
    // A socket replaced or dropped on purpose was already accounted for.
    if (link.socket !== socket) return;
    const wasUp = link.state === 'up';
    this.#stopLink(link);
    link.timer = setTimeout(() => this.#connect(link), link.backoffMs);
    link.backoffMs = Math.min(link.backoffMs * 2, this.#settings.reconnectMaxMs);
    this.#settle(link, new Error(`could not reach ${link.address}`));
    if (wasUp && link.node !== null) this.#handlers.onPeerDown?.(link.node);
  }

  /** Forgets a link for good (forget, close, or a link to ourselves). */
  #dropLink(link: Outbound, reason: string): void {
    this.#links.delete(link.address);
    const socket = link.socket;
    this.#stopLink(link);
    socket?.destroy('local', reason);
    this.#settle(link, new Error(reason));
  }

  /** Down: no socket, no timers, not serving its node. */
  #stopLink(link: Outbound): void {
    link.socket = null;
    link.state = 'down';
    if (link.timer !== null) clearTimeout(link.timer);
    if (link.heartbeat !== null) clearInterval(link.heartbeat);
    link.timer = null;
    link.heartbeat = null;
    if (link.node !== null && this.#byNode.get(link.node) === link) this.#byNode.delete(link.node);
  }

  #settle(link: Outbound, result: string | Error): void {
    const waiter = link.waiter;
    if (waiter === null) return;
    link.waiter = null;
    clearTimeout(waiter.timer);
    if (typeof result === 'string') waiter.resolve(result);
    else waiter.reject(result);
  }

  #heartbeat(link: Outbound): void {
    const socket = link.socket;
    if (link.wrote || socket === null || socket.needsDrain) {
      link.wrote = false;
      return;
    }
    socket.write(this.#ping);
  }

  #flushAll(): void {
    this.#flush = null;
    for (const outbox of this.#outboxes.values()) {
      if (outbox.pending.length === 0) continue;
      const batch = outbox.pending;
      outbox.pending = [];
      const frames: QueuedFrame[] = [];
      this.#pack(outbox, batch, frames);
      for (const frame of frames) this.#deliver(outbox, frame);
    }
  }

  /**
   * Packs a batch into frames: one, unless it does not pack (a value the codec refuses) or
   * exceeds frameBytesMax (the acceptor would close on it); then it is halved until the
   * offending envelopes stand alone and are dropped. Rare, so the repeated packing is fine.
   */
  #pack(outbox: Outbox, batch: readonly Envelope[], out: QueuedFrame[]): void {
    let payload: Uint8Array | null = null;
    try {
      payload = batch.length <= batchEnvelopesMax ? encodeClusterFrame({ t: 'batch', b: batch }) : null;
    } catch {
      payload = null;
    }
    if (payload !== null && payload.byteLength <= this.#settings.frameBytesMax && batch.length <= batchEnvelopesMax) {
      out.push({ payload, envelopes: batch.length });
      return;
    }
    if (batch.length <= 1) {
      this.#drop(outbox, batch.length);
      return;
    }
    const half = batch.length >>> 1;
    this.#pack(outbox, batch.slice(0, half), out);
    this.#pack(outbox, batch.slice(half), out);
  }

  #deliver(outbox: Outbox, frame: QueuedFrame): void {
    const link = this.#byNode.get(outbox.node);
    const socket = link?.socket;
    if (link !== undefined && link.state === 'up' && socket !== undefined && socket !== null && outbox.head === outbox.frames.length && !socket.needsDrain) {
      this.#write(link, socket, outbox, frame);
      return;
    }
    const size = frameSize(frame);
    if (outbox.bytes + size > this.#settings.outboxBytesMax) {
      this.#drop(outbox, frame.envelopes);
      return;
    }
    outbox.frames.push(frame);
    outbox.bytes += size;
  }

  /** Writes queued frames until the socket pushes back (then 'drain' calls again). */
  #pump(link: Outbound): void {
    const socket = link.socket;
    if (link.state !== 'up' || socket === null || link.node === null) return;
    const outbox = this.#outboxes.get(link.node);
    if (outbox === undefined) return;
    while (outbox.head < outbox.frames.length && !socket.needsDrain) {
      const frame = outbox.frames[outbox.head] as QueuedFrame;
      outbox.head += 1;
      outbox.bytes -= frameSize(frame);
      this.#write(link, socket, outbox, frame);
    }
    if (outbox.head === outbox.frames.length) {
      outbox.frames = [];
      outbox.head = 0;
    } else if (outbox.head >= 1024 && outbox.head * 2 >= outbox.frames.length) {
      outbox.frames = outbox.frames.slice(outbox.head);
      outbox.head = 0;
    }
  }

  #write(link: Outbound, socket: FramedSocket, outbox: Outbox, frame: QueuedFrame): void {
    // No copy of a large payload: the prefix goes in a write of its own.
    socket.writePayload(frame.payload);
    link.wrote = true;
    outbox.sent += frame.envelopes;
    this.#stats.framesOut += 1;
    this.#stats.envelopesOut += frame.envelopes;
    this.#stats.bytesOut += frame.payload.length;
  }

  #drop(outbox: Outbox | undefined, envelopes: number): void {
    this.#stats.dropped += envelopes;
    if (outbox !== undefined) outbox.dropped += envelopes;
  }

  // ---- inbound: accept, handshake, read ----

  #accept(raw: Socket): void {
    // Until the hello is accepted a peer is a stranger: small frames only.
    const strangerFrameBytesMax = Math.min(handshakeBytesMax, this.#settings.frameBytesMax);
    const full = this.#closed !== null || this.#inbound.size >= this.#settings.connectionsMax;
    if (full || this.#handshakesFrom(raw.remoteAddress) >= this.#settings.handshakesPerAddressMax) {
      this.#stats.rejectedConnections += 1;
      const refused: FramedSocket = new FramedSocket(raw, { frameBytesMax: strangerFrameBytesMax }, { onFrame: () => undefined, onClose: () => this.#refused.delete(refused) });
      this.#refused.add(refused);
      this.#refuse(refused, 'overloaded', full ? 'too many connections' : 'too many handshakes from this address');
      return;
    }
    // Assigned before any handler can run: they all wait for socket events.
    let connection: Inbound;
    const socket = new FramedSocket(
      raw,
      { frameBytesMax: strangerFrameBytesMax, helloTimeoutMs: this.#settings.handshakeTimeoutMs, idleTimeoutMs: this.#settings.peerSilenceMs },
      {
        onFrame: (payload) => this.#onInboundFrame(connection, payload),
        onFrameError: (code, message) => this.#reject(connection, code === 'frame_too_large' ? 'frame_too_large' : 'malformed', message),
        onHelloTimeout: () => this.#reject(connection, 'handshake_timeout', `no hello within ${this.#settings.handshakeTimeoutMs} ms`),
        onClose: () => {
          this.#inbound.delete(connection);
          if (connection.node !== null && this.#inboundByNode.get(connection.node) === connection) this.#inboundByNode.delete(connection.node);
        },
      },
    );
    connection = { socket, raw, node: null, incarnation: 0, claimed: null };
    this.#inbound.add(connection);
  }

  /** Inbound connections from `address` not yet authenticated (a scan: at most connectionsMax, at accept only). */
  #handshakesFrom(address: string | undefined): number {
    let count = 0;
    for (const connection of this.#inbound) if (connection.node === null && connection.raw.remoteAddress === address) count += 1;
    return count;
  }

  #onInboundFrame(connection: Inbound, payload: Uint8Array): void {
    const decoded = decodeClusterFrame(payload);
    if (!decoded.ok) {
      this.#reject(connection, decoded.code, decoded.message);
      return;
    }
    const frame: ClusterFrame = decoded.frame;
    const from = connection.node;
    if (from === null) {
      this.#onHandshakeFrame(connection, frame);
      return;
    }
    switch (frame.t) {
      case 'batch':
        this.#stats.framesIn += 1;
        this.#stats.bytesIn += payload.length;
        this.#stats.malformed += decoded.malformed;
        this.#stats.envelopesIn += frame.b.length;
        if (frame.b.length > 0) this.#handlers.onEnvelopes(from, frame.b);
        return;
      case 'ping':
        return;
      case 'error':
        connection.socket.destroy('local', `the peer closes: ${frame.code}`);
        return;
      case 'hello':
      case 'challenge':
      case 'proof':
      case 'welcome':
        this.#reject(connection, 'malformed', `unexpected ${frame.t}`);
        return;
      default:
        assertNever(frame, 'cluster frame');
    }
  }

  /** Before the dialler is authenticated: hello, then (secret mode) proof; nothing else. */
  #onHandshakeFrame(connection: Inbound, frame: ClusterFrame): void {
    // A dialler sends nothing more before our answer: bytes already behind its frame break the protocol.
    if (connection.socket.hasMoreInput) {
      this.#reject(connection, 'malformed', 'frames before the handshake completed');
      return;
    }
    const security = this.#settings.security;
    const claimed = connection.claimed;
    if (claimed === null) {
      if (frame.t !== 'hello') {
        this.#reject(connection, 'malformed', 'the first frame must be hello');
        return;
      }
      switch (security.mode) {
        case 'none':
          this.#admit(connection, frame, null);
          return;
        case 'tls': {
          const names = peerCertificateNames(connection.raw);
          if (names === null || !names.includes(frame.node)) {
            this.#unauthenticated(connection, `the certificate does not name ${frame.node}`);
            return;
          }
          this.#admit(connection, frame, null);
          return;
        }
        case 'secret': {
          if (frame.nonce === undefined) {
            this.#unauthenticated(connection, 'a hello without a nonce');
            return;
          }
          // Nothing about this node leaves before a valid proof: only a nonce of our own.
          const nonce = Uint8Array.from(randomBytes(nonceBytes));
          connection.claimed = { hello: frame, diallerNonce: frame.nonce, nonce };
          connection.socket.write(encodeFrame(encodeClusterFrame({ t: 'challenge', nonce })));
          return;
        }
        default:
          assertNever(security, 'cluster security mode');
      }
    }
    if (frame.t !== 'proof' || security.mode !== 'secret') {
      this.#reject(connection, 'malformed', 'after the challenge only a proof');
      return;
    }
    const { hello, diallerNonce, nonce } = claimed;
    const expected = hmac(security.secret, helloTranscript(hello.node, hello.incarnation, diallerNonce, nonce));
    if (!macsEqual(expected, frame.mac)) {
      this.#unauthenticated(connection, 'the proof does not prove the cluster secret');
      return;
    }
    connection.claimed = null;
    this.#admit(connection, hello, hmac(security.secret, welcomeTranscript(hello.node, this.#settings.nodeName, diallerNonce, nonce)));
  }

  /**
   * The dialler proved the name in `hello` (or, in mode 'none', nothing is proved): refuses our
   * own name and an older incarnation than the one connected now, else welcomes.
   */
  #admit(connection: Inbound, hello: HelloFrame, mac: Uint8Array | null): void {
    if (hello.node === this.#settings.nodeName) {
      this.#reject(connection, 'same_name', 'the hello names this node');
      return;
    }
    const previous = this.#inboundByNode.get(hello.node);
    if (previous !== undefined && previous.socket.isOpen && previous.incarnation > hello.incarnation) {
      this.#reject(connection, 'refused', `incarnation ${previous.incarnation} of ${hello.node} is connected`);
      return;
    }
    connection.socket.helloDone();
    connection.node = hello.node;
    connection.incarnation = hello.incarnation;
    // A node dials us once: a second connection means the first is dead to it.
    if (previous !== undefined) previous.socket.destroy('local', `${hello.node} dialled again`);
    this.#inboundByNode.set(hello.node, connection);
    connection.socket.setFrameBytesMax(this.#settings.frameBytesMax);
    connection.socket.write(
      encodeFrame(encodeClusterFrame({ t: 'welcome', version: clusterProtocolVersion, node: this.#settings.nodeName, info: this.#settings.info, ...(mac === null ? {} : { mac }) })),
    );
  }

  #unauthenticated(connection: Inbound, message: string): void {
    this.#stats.unauthenticated += 1;
    this.#reject(connection, 'unauthenticated', message);
  }

  /** A fault on an inbound connection: counted, answered with an error frame, closed. */
  #reject(connection: Inbound, code: ClusterErrorCode, message: string): void {
    if (!connection.socket.isOpen) return;
    if (code !== 'handshake_timeout') this.#stats.malformed += 1;
    if (connection.node === null) this.#stats.rejectedConnections += 1;
    this.#refuse(connection.socket, code, message);
  }

  #refuse(socket: FramedSocket, code: ClusterErrorCode, message: string): void {
    socket.lastWords(encodeFrame(encodeClusterFrame({ t: 'error', code, message: message.slice(0, errorMessageCharsMax) })), closeGraceMs, message);
  }
}

function hmac(secret: Uint8Array, transcript: Uint8Array): Uint8Array {
  return Uint8Array.from(createHmac('sha256', secret).update(transcript).digest());
}

/** Constant time for equal lengths (the length of a MAC is public). */
function macsEqual(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.byteLength === received.byteLength && timingSafeEqual(expected, received);
}

function report(node: string | null, address: string, state: PeerReport['state'], outbox: Outbox | undefined, socketBytes: number, info: Info): PeerReport {
  return { node, address, state, sentEnvelopes: outbox?.sent ?? 0, droppedEnvelopes: outbox?.dropped ?? 0, queuedBytes: (outbox?.bytes ?? 0) + socketBytes, info };
}

function addressKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function frameSize(frame: QueuedFrame): number {
  return frameHeaderBytes + frame.payload.byteLength;
}

function resolveSettings(options: ClusterLinkOptions): Settings {
  if (!isNodeName(options.nodeName)) throw new RangeError(`nodeName ${JSON.stringify(options.nodeName)} must be 1-64 letters, digits, ".", "_" or "-"`);
  const info = options.info ?? {};
  const problem = checkInfo(info);
  if (problem !== null) throw new RangeError(problem);
  const reconnectMinMs = integer('reconnectMinMs', options.reconnectMinMs, 50, 1, delayMsMax);
  const host = options.host ?? '127.0.0.1';
  return {
    nodeName: options.nodeName,
    security: resolveSecurity(options.security, host),
    incarnation: integer('incarnation', options.incarnation, 0, 0, protocolNumberMax),
    host,
    port: integer('port', options.port, 0, 0, 65_535),
    info: { ...info },
    frameBytesMax: integer('frameBytesMax', options.frameBytesMax, 256 * 1024 * 1024, 1, frameLengthLimit),
    outboxBytesMax: integer('outboxBytesMax', options.outboxBytesMax, 64 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
    handshakeTimeoutMs: integer('handshakeTimeoutMs', options.handshakeTimeoutMs, 5000, 1, delayMsMax),
    heartbeatMs: integer('heartbeatMs', options.heartbeatMs, 500, 1, delayMsMax),
    peerSilenceMs: integer('peerSilenceMs', options.peerSilenceMs, 5000, 1, delayMsMax),
    reconnectMinMs,
    reconnectMaxMs: integer('reconnectMaxMs', options.reconnectMaxMs, Math.max(1000, reconnectMinMs), reconnectMinMs, delayMsMax),
    connectionsMax: integer('connectionsMax', options.connectionsMax, 256, 1, 1_000_000),
    handshakesPerAddressMax: integer('handshakesPerAddressMax', options.handshakesPerAddressMax, 16, 1, 1_000_000),
  };
}

function resolveSecurity(security: ClusterSecurity | undefined, host: string): ClusterSecurity {
  // Checked at run time too: JavaScript callers and configuration files reach here.
  if (security === undefined) throw new RangeError('security is required: { mode: "tls" | "secret" | "none" }');
  switch (security.mode) {
    case 'none':
      if (!isLoopbackHost(host)) {
        throw new RangeError(`the cluster links would listen on ${host} with no authentication: give cluster.tls (--tls-cert/--tls-key/--tls-ca) or cluster.secret (--cluster-secret-file), or listen on a loopback address`);
      }
      return { mode: 'none' };
    case 'secret':
      if (!(security.secret instanceof Uint8Array) || security.secret.byteLength < clusterSecretBytesMin) throw new RangeError(`the cluster secret must hold at least ${clusterSecretBytesMin} bytes`);
      // A copy: the caller's buffer may change later.
      return { mode: 'secret', secret: Uint8Array.from(security.secret) };
    case 'tls':
      for (const key of ['cert', 'key', 'ca'] as const) {
        if (typeof security[key] !== 'string' || security[key].length === 0) throw new RangeError(`cluster tls.${key} must be a PEM string`);
      }
      return { mode: 'tls', cert: security.cert, key: security.key, ca: security.ca };
    default:
      return assertNever(security, 'cluster security mode');
  }
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < min || chosen > max) throw new RangeError(`${name} must be an integer in ${min}..${max}`);
  return chosen;
}
