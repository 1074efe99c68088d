/**
 * A client of the admin API (src/net/admin.ts): one connection, requests matched by id. Loads
 * the admin protocol (src/api/admin_wire.ts) and the socket helpers, nothing of a node.
 *
 * `open` sends `hello` (with the admin token, if given) and resolves once it is accepted; a
 * refused token rejects with HaretError `unauthenticated`.
 */

import { adminAnswerBytesMax, decodeAdminAnswer, encodeAdminMessage, type AdminAnswer, type AdminRequest } from '../api/admin_wire.ts';
import { HaretError } from '../client/errors.ts';
import { parseAddress } from './address.ts';
import { FramedSocket } from './framed_socket.ts';
import { describeSocketError, type TlsClientOptions } from './tls.ts';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
/** Any request but hello (which `open` sends). */
export type AdminQuery = Distribute<Exclude<AdminRequest, { readonly type: 'hello' }>>;

export type AdminOpenOptions = {
  /** Deadline to connect and be accepted. Default 5 s. */
  readonly timeoutMs?: number;
  /** The node's admin token (`--admin-token-file` on the node). */
  readonly token?: string;
  /** Dial TLS, trusting the node's certificate only if `tls.ca` signed it. */
  readonly tls?: TlsClientOptions;
};

export class AdminClient {
  readonly #framed: FramedSocket;
  readonly #waiting = new Map<number, (answer: AdminAnswer) => void>();
  #nextId = 1;

  private constructor(framed: FramedSocket) {
    this.#framed = framed;
  }

  /**
   * Connects and says hello; rejects with the socket's error, HaretError `unauthenticated`
   * when the node refuses the token, or after `timeoutMs`. (A number is `timeoutMs`, the
   * signature before issue 12.)
   */
  static open(address: string, options: AdminOpenOptions | number = {}): Promise<AdminClient> {
    const { timeoutMs = 5_000, token, tls } = typeof options === 'number' ? { timeoutMs: options } : options;
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      let client: AdminClient | null = null;
      let accepted = false;
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        framed.destroy('local', error.message);
        reject(error);
      };
      const framed: FramedSocket = FramedSocket.dial(
        host,
        port,
        { frameBytesMax: adminAnswerBytesMax, helloTimeoutMs: timeoutMs },
        {
          onConnect: () => {
            client = new AdminClient(framed);
            framed.write(encodeAdminMessage({ type: 'hello', id: 0, ...(token === undefined ? {} : { token }) }));
          },
          onHelloTimeout: () => fail(new Error(`no admin API at ${address} within ${timeoutMs} ms`)),
          onFrame: (payload) => {
            if (client === null) return;
            if (accepted) {
              client.#onAnswer(payload);
              return;
            }
            const answer = decodeAdminAnswer(payload);
            if (answer === null) return fail(new Error(`${address} does not speak the admin protocol`));
            if (answer.type === 'ok' && answer.id === 0) {
              accepted = true;
              settled = true;
              framed.helloDone();
              resolve(client);
              return;
            }
            if (answer.type === 'error') {
              const text = `${address} refused the admin connection: ${answer.code}: ${answer.message}`;
              fail(answer.code === 'unauthenticated' ? new HaretError('unauthenticated', text, false) : new Error(text));
            }
          },
          onClose: (reason) => {
            if (!accepted) fail(new Error(reason.cause === 'socket_error' ? `${address}: ${describeSocketError(reason.error, reason.message, tls !== undefined)}` : `${address} closed the admin connection before accepting it`));
            else if (client !== null) client.#onClose();
          },
        },
        tls,
      );
    });
  }

  request(query: AdminQuery): Promise<AdminAnswer> {
    const id = this.#nextId;
    this.#nextId += 1;
    return new Promise((resolve) => {
      if (this.#framed.write(encodeAdminMessage({ ...query, id } as AdminRequest)) === 'closed') {
        resolve({ type: 'error', id, code: 'failed', message: 'the admin connection closed' });
        return;
      }
      this.#waiting.set(id, resolve);
    });
  }

  close(): void {
    this.#framed.destroy('local', 'closed by the admin client');
  }

  #onAnswer(payload: Uint8Array): void {
    const answer = decodeAdminAnswer(payload);
    if (answer === null) {
      // Not the admin protocol: nothing more from this peer can be trusted to match an id.
      this.#framed.destroy('local', 'an answer that is not one');
      return;
    }
    if (answer.id === null) return;
    const resolve = this.#waiting.get(answer.id);
    this.#waiting.delete(answer.id);
    resolve?.(answer);
  }

  #onClose(): void {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const resolve of waiting) resolve({ type: 'error', id: null, code: 'failed', message: 'the admin connection closed' });
  }
}
