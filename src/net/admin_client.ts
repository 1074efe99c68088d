/**
 * A client of the admin API (src/net/admin.ts): one connection, requests matched by id. Loads
 * the admin protocol (src/api/admin_wire.ts) and the socket helper, nothing of a node.
 */

import { adminAnswerBytesMax, decodeAdminAnswer, encodeAdminMessage, type AdminAnswer, type AdminRequest } from '../api/admin_wire.ts';
import { parseAddress } from './address.ts';
import { FramedSocket } from './framed_socket.ts';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
export type AdminQuery = Distribute<AdminRequest>;

export class AdminClient {
  readonly #framed: FramedSocket;
  readonly #waiting = new Map<number, (answer: AdminAnswer) => void>();
  #nextId = 1;

  private constructor(framed: FramedSocket) {
    this.#framed = framed;
  }

  /** Connects; rejects with the socket's error, or after `timeoutMs`. */
  static open(address: string, timeoutMs = 5_000): Promise<AdminClient> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      let client: AdminClient | null = null;
      const framed: FramedSocket = FramedSocket.dial(
        host,
        port,
        { frameBytesMax: adminAnswerBytesMax, helloTimeoutMs: timeoutMs },
        {
          onConnect: () => {
            // Connected is all the "hello" this protocol has.
            framed.helloDone();
            client = new AdminClient(framed);
            resolve(client);
          },
          onHelloTimeout: () => {
            framed.destroy('hello_timeout', `no admin API at ${address} within ${timeoutMs} ms`);
            reject(new Error(`no admin API at ${address} within ${timeoutMs} ms`));
          },
          onFrame: (payload) => {
            if (client !== null) client.#onAnswer(payload);
          },
          onClose: (reason) => {
            if (client === null) reject(reason.error ?? new Error(reason.message));
            else client.#onClose();
          },
        },
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
