/**
 * TLS for haret's ports, in one place: the option types every port takes, and the few calls
 * that differ between a plaintext and a TLS socket (listening, dialling). Everything above
 * the socket (FramedSocket, the protocols) is the same for both: a TLSSocket is a Socket.
 *
 * PEM strings, not file names: reading files is the CLI's business (src/cli), and tests pass
 * certificates made at test time.
 */

import { connect as tcpConnect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';

/** A TLS server: its certificate and key; with `ca`, client certificates are requested and verified against it. */
export type TlsServerOptions = { readonly cert: string; readonly key: string; readonly ca?: string };

/**
 * A TLS client: the CA that signed the server's certificate (required: haret never trusts the
 * system store by default, a cluster has its own CA); a client certificate when the server asks
 * for one; `servername` when the server's certificate names a host other than the one dialled.
 */
export type TlsClientOptions = { readonly ca: string; readonly cert?: string; readonly key?: string; readonly servername?: string };

/** How long a TLS handshake may take on a listening port unless the caller says otherwise. */
export const tlsHandshakeTimeoutMsDefault = 10_000;

export type ListenOptions = {
  /** Serve TLS with these; absent: plaintext. */
  readonly tls?: TlsServerOptions;
  /** TLS only: a handshake not done within this long is dropped (node's default is 2 minutes). */
  readonly handshakeTimeoutMs?: number;
  /**
   * TLS only: TCP connections at most, handshaking ones included (their sockets exist before
   * the caller hears of them, so its own connection limit cannot count them); one more is
   * dropped at once. Callers pass their limit plus room for the typed refusals they send.
   */
  readonly socketsMax?: number;
};

/**
 * A server that calls `onConnection` for each connection, once it is ready for frames: at once
 * for plaintext, after the handshake for TLS (a failed handshake never reaches the caller;
 * `onTlsError` hears about it).
 */
export function createServer(options: ListenOptions, onConnection: (socket: Socket) => void, onTlsError?: (error: Error, socket: Socket) => void): Server {
  const tls = options.tls;
  if (tls === undefined) return createTcpServer(onConnection);
  const server = createTlsServer(
    {
      cert: tls.cert,
      key: tls.key,
      ...(tls.ca !== undefined ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
      handshakeTimeout: options.handshakeTimeoutMs ?? tlsHandshakeTimeoutMsDefault,
      minVersion: 'TLSv1.2',
    },
    onConnection,
  );
  if (options.socketsMax !== undefined) server.maxConnections = options.socketsMax;
  // Without a listener a failed handshake is only logged by node; either way the socket is destroyed.
  server.on('tlsClientError', (error, socket) => onTlsError?.(error, socket));
  return server;
}

/**
 * Dials host:port, over TLS when `tls` is given. The TLS socket emits 'connect' once the TCP
 * connection is up; writes made before the handshake completes are queued by node, and a
 * certificate that does not verify surfaces as an 'error' on the socket (e.g. "unable to verify
 * the first certificate", "self-signed certificate in certificate chain").
 */
export function dial(host: string, port: number, tls?: TlsClientOptions): Socket {
  if (tls === undefined) return tcpConnect({ host, port });
  const socket: TLSSocket = tlsConnect({
    host,
    port,
    ca: tls.ca,
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
    // An IP address is not a valid SNI name; node then checks the certificate's IP SANs.
    ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  return socket;
}

/** The peer's certificate common name and DNS names, when the socket is TLS and the peer sent a verified certificate. */
export function peerCertificateNames(socket: Socket): readonly string[] | null {
  const tlsSocket = socket as Partial<TLSSocket>;
  if (typeof tlsSocket.getPeerCertificate !== 'function' || tlsSocket.authorized !== true) return null;
  const certificate = tlsSocket.getPeerCertificate();
  const names: string[] = [];
  const cn = certificate.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...(cn as string[]));
  for (const part of (certificate.subjectaltname ?? '').split(',')) {
    const entry = part.trim();
    if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  }
  return names;
}

/** A socket error as the caller should read it: a certificate the CA does not vouch for says so. */
export function describeSocketError(error: Error | undefined, message: string, tls: boolean): string {
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  if (!tls || typeof code !== 'string' || syscall !== undefined) return message;
  // Node's own TLS errors (a plaintext peer, a protocol mismatch, a wrong host name) ...
  if (code.startsWith('ERR_SSL') || code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS: the handshake with the node failed (${code}: ${message})`;
  // ... else OpenSSL's certificate verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED, ...).
  return `TLS: the node's certificate was not accepted (${code}: ${message}); check the CA given as tls.ca (--tls-ca)`;
}
