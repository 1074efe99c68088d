/**
 * The HTTP listener of the admin side (issue 17): `GET /metrics` (Prometheus text format),
 * `/healthz` (the process is up), `/readyz` (the node serves: 200, or 503 naming what is
 * missing), `/status.json` (what `haret admin status` shows), and the status page: `/` (a
 * self-contained HTML page) and `/history.json` (the rolling history of commits it charts).
 * Anything else is 404; any method but GET and HEAD is 405.
 *
 * The server knows the node only as an `HttpBackend` (typed by shape), so src/net imports
 * nothing of src/node; what each answer holds is the backend's business.
 *
 * Security follows the admin port (src/net/admin.ts, docs/security.md): it binds 127.0.0.1
 * unless told otherwise; with `tls` it serves HTTPS with the same certificate; with
 * `authToken` every path but /healthz and / needs `Authorization: Bearer <token>` (compared in
 * constant time: src/net/auth_token.ts), else 401. /healthz stays open so that a process
 * manager or a load balancer can probe liveness without the credential. / stays open because
 * it is the same static document for everyone (no figure of the node in it) and a browser
 * cannot put a header on a page it navigates to: the page asks its user for the token and
 * sends it as the Bearer header of its own requests for the JSON, which need it. A token in
 * the address (`?token=`) would end up in history, logs and Referer headers, so there is none.
 *
 * Bounded: a request's headers within `headersTimeoutMs` and at most `headerBytesMax` bytes; no
 * request body (a GET that carries one is refused with 413 and the connection closed); an
 * answer within `requestTimeoutMs` (else 503); at most `connectionsMax` connections (more are
 * dropped by the server as they arrive); keep-alive connections idle for `keepAliveTimeoutMs`
 * are closed.
 */

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { adminTokenLengthMax } from '../api/admin_wire.ts';
import { AuthToken } from './auth_token.ts';
import type { TlsServerOptions } from './tls.ts';

export type HttpApiOptions = {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port (see `address`). */
  readonly port?: number;
  /** Serve HTTPS with this certificate. Absent: plain HTTP. */
  readonly tls?: TlsServerOptions;
  /** Every path but /healthz needs `Authorization: Bearer <this>` (1..1024 characters). Absent: none asked for. */
  readonly authToken?: string;
  /** Connections at once; more are dropped as they arrive. Default 64. */
  readonly connectionsMax?: number;
  /** A request is answered within this long (else 503). Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** A request's headers must arrive within this long (and a TLS handshake finish). Default 5 s. */
  readonly headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long. Default 5 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Bytes of request line and headers at most (431 beyond). Default 8 KiB. */
  readonly headerBytesMax?: number;
};

/** The body of one answer, its content type, and any headers of its own (e.g. a Content-Security-Policy). */
export type HttpBody = { readonly contentType: string; readonly body: string; readonly headers?: Readonly<Record<string, string>> };

/** What the listener asks of its node. */
export type HttpBackend = {
  /** The Prometheus exposition (prom-client's text and content type). */
  metrics(): Promise<HttpBody>;
  /** Whether the node is ready, and if not, one line per thing missing. */
  readiness(): Promise<{ readonly ready: boolean; readonly missing: readonly string[] }>;
  /** What `haret admin status` shows, as a JSON-able value. */
  status(): Promise<unknown>;
  /** The status page (GET /): one self-contained document, the same for every request. */
  page(): HttpBody;
  /** The rolling history of commits and commit latency the page charts, as a JSON-able value. */
  history(): Promise<unknown>;
  /** Stops what the backend runs for the listener (its sampling): called when the listener closes or fails to start; may come twice. */
  close(): void;
};

export const httpDefaults = { connectionsMax: 64, requestTimeoutMs: 10_000, headersTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000, headerBytesMax: 8 * 1024 } as const;

const paths = ['/', '/metrics', '/healthz', '/readyz', '/status.json', '/history.json'] as const;
type HttpPath = (typeof paths)[number];
/** Served without the token: liveness, and the page (static; its data needs the token). */
const openPaths: ReadonlySet<HttpPath> = new Set<HttpPath>(['/healthz', '/']);

const textPlain = 'text/plain; charset=utf-8';
const jsonType = 'application/json; charset=utf-8';

export class HttpServer {
  readonly #server: Server;
  readonly #backend: HttpBackend;
  readonly #token: AuthToken | null;
  readonly #requestTimeoutMs: number;
  readonly counters = { requests: 0, unauthorized: 0, notFound: 0, methodNotAllowed: 0, bodyRefused: 0, timeouts: 0, failures: 0 };

  private constructor(backend: HttpBackend, server: Server, options: HttpApiOptions) {
    this.#backend = backend;
    this.#server = server;
    this.#token = options.authToken === undefined ? null : new AuthToken(options.authToken, adminTokenLengthMax, 'http authToken');
    this.#requestTimeoutMs = positive(options.requestTimeoutMs, httpDefaults.requestTimeoutMs, 'requestTimeoutMs');
  }

  static start(backend: HttpBackend, options: HttpApiOptions = {}): Promise<HttpServer> {
    return new Promise((resolve, reject) => {
      let api: HttpServer;
      let server: Server;
      try {
        const headersTimeoutMs = positive(options.headersTimeoutMs, httpDefaults.headersTimeoutMs, 'headersTimeoutMs');
        const requestTimeoutMs = positive(options.requestTimeoutMs, httpDefaults.requestTimeoutMs, 'requestTimeoutMs');
        const settings = {
          maxHeaderSize: positive(options.headerBytesMax, httpDefaults.headerBytesMax, 'headerBytesMax'),
          headersTimeout: headersTimeoutMs,
          // Node's own bound on receiving a whole request; the answer has ours (#answer).
          requestTimeout: Math.max(headersTimeoutMs, requestTimeoutMs),
          keepAliveTimeout: positive(options.keepAliveTimeoutMs, httpDefaults.keepAliveTimeoutMs, 'keepAliveTimeoutMs'),
        };
        const handle = (request: IncomingMessage, response: ServerResponse): void => api.#handle(request, response);
        server =
          options.tls === undefined
            ? createHttpServer(settings, handle)
            : createHttpsServer({ ...settings, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2', handshakeTimeout: headersTimeoutMs }, handle);
        // Past it node drops a new connection as it arrives. A malformed request, headers over
        // the size or too slow: node answers 400, 431 or 408 and closes, by itself.
        server.maxConnections = positive(options.connectionsMax, httpDefaults.connectionsMax, 'connectionsMax');
        api = new HttpServer(backend, server, options);
      } catch (error) {
        // Not started: nothing will close the backend but this.
        backend.close();
        reject(error);
        return;
      }
      // Not listening: nothing will close the backend but this.
      const failed = (error: Error): void => {
        backend.close();
        reject(error);
      };
      server.once('error', failed);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', failed);
        resolve(api);
      });
    });
  }

  address(): { readonly host: string; readonly port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the HTTP server is not listening');
    return { host: address.address, port: address.port };
  }

  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void> {
    this.#backend.close();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    this.counters.requests += 1;
    const method = request.method ?? '';
    if (hasBody(request)) {
      this.counters.bodyRefused += 1;
      // Unread bytes would otherwise be parsed as the next request: this connection ends here.
      response.setHeader('Connection', 'close');
      send(response, 413, textPlain, 'a request here takes no body\n');
      return;
    }
    request.resume();
    if (method !== 'GET' && method !== 'HEAD') {
      this.counters.methodNotAllowed += 1;
      response.setHeader('Allow', 'GET, HEAD');
      send(response, 405, textPlain, `${method} is not served here: only GET and HEAD\n`);
      return;
    }
    const path = pathOf(request.url);
    if (path === null) {
      this.counters.notFound += 1;
      send(response, 404, textPlain, `not found; the paths are ${paths.join(', ')}\n`);
      return;
    }
    if (!openPaths.has(path) && this.#token !== null && !this.#token.accepts(bearerToken(request))) {
      this.counters.unauthorized += 1;
      response.setHeader('WWW-Authenticate', 'Bearer realm="haret"');
      send(response, 401, textPlain, 'this node requires its admin token: Authorization: Bearer <token>\n');
      return;
    }
    void this.#answer(path, response);
  }

  /** Answers one path, within the request timeout. */
  async #answer(path: HttpPath, response: ServerResponse): Promise<void> {
    let timer: NodeJS.Timeout | null = null;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#requestTimeoutMs);
    });
    try {
      const answer = await Promise.race([this.#route(path), timedOut]);
      if (answer === 'timeout') {
        this.counters.timeouts += 1;
        send(response, 503, textPlain, `no answer within ${this.#requestTimeoutMs} ms\n`);
        return;
      }
      send(response, answer.status, answer.contentType, answer.body, answer.headers);
    } catch (error) {
      this.counters.failures += 1;
      send(response, 500, textPlain, `${error instanceof Error ? error.message : String(error)}\n`);
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  async #route(path: HttpPath): Promise<{ readonly status: number } & HttpBody> {
    switch (path) {
      case '/healthz':
        return { status: 200, contentType: textPlain, body: 'ok\n' };
      case '/metrics':
        return { status: 200, ...(await this.#backend.metrics()) };
      case '/readyz': {
        const { ready, missing } = await this.#backend.readiness();
        return ready
          ? { status: 200, contentType: textPlain, body: 'ready\n' }
          : { status: 503, contentType: textPlain, body: `not ready:\n${missing.map((line) => `- ${line}\n`).join('')}` };
      }
      case '/status.json':
        return { status: 200, contentType: jsonType, body: `${JSON.stringify(await this.#backend.status())}\n` };
      case '/':
        return { status: 200, ...this.#backend.page() };
      case '/history.json':
        return { status: 200, contentType: jsonType, body: `${JSON.stringify(await this.#backend.history())}\n` };
      default: {
        const never: never = path;
        throw new Error(`unknown path ${String(never)}`);
      }
    }
  }
}

/** The served path a request names (its query string ignored), or null for any other. */
function pathOf(url: string | undefined): HttpPath | null {
  if (url === undefined) return null;
  const end = url.search(/[?#]/);
  const path = end < 0 ? url : url.slice(0, end);
  return (paths as readonly string[]).includes(path) ? (path as HttpPath) : null;
}

/** The token of an `Authorization: Bearer <token>` header, if the request has one. */
function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

/** Whether the request announces a body (GET and HEAD take none here). */
function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

function send(response: ServerResponse, status: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): void {
  if (response.headersSent || response.destroyed) return;
  response.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  // For HEAD node sends the headers only.
  response.end(body);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`http option ${name} must be a positive integer`);
  return v;
}
