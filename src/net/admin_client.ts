/** A client of the admin API (src/net/admin.ts): one connection, requests matched by id. */

import { connect as tcpConnect, type Socket } from 'node:net';
import { FrameDecoder } from '../api/frame.ts';
import { parseAddress } from './address.ts';
import { decodeAdminAnswer, encodeAdminMessage, type AdminAnswer, type AdminRequest } from './admin.ts';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
export type AdminQuery = Distribute<AdminRequest>;

export class AdminClient {
  readonly #socket: Socket;
  readonly #waiting = new Map<number, (answer: AdminAnswer) => void>();
  #nextId = 1;

  private constructor(socket: Socket) {
    this.#socket = socket;
    const decoder = new FrameDecoder({ frameBytesMax: 64 * 1024 * 1024 });
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === 'error') {
          socket.destroy();
          return;
        }
        const answer = decodeAdminAnswer(event.payload);
        if (answer === null || answer.id === null) continue;
        const resolve = this.#waiting.get(answer.id);
        this.#waiting.delete(answer.id);
        resolve?.(answer);
      }
    });
    socket.on('close', () => {
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const resolve of waiting) resolve({ type: 'error', id: null, code: 'failed', message: 'the admin connection closed' });
    });
  }

  static open(address: string, timeoutMs = 5_000): Promise<AdminClient> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(port, host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no admin API at ${address} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new AdminClient(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  request(query: AdminQuery): Promise<AdminAnswer> {
    const id = this.#nextId;
    this.#nextId += 1;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#socket.write(encodeAdminMessage({ ...query, id } as AdminRequest));
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}
