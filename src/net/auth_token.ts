/**
 * A port's token (client or admin, docs/security.md): kept only as its SHA-256 digest, and
 * compared in time that depends neither on where a presented token differs nor on its length
 * (both digests are 32 bytes).
 */

import { createHash, timingSafeEqual } from 'node:crypto';

export class AuthToken {
  readonly #digest: Buffer;

  /** RangeError unless `token` is 1..`lengthMax` characters (a longer one could never be presented). */
  constructor(token: string, lengthMax: number, what: string) {
    if (typeof token !== 'string' || token.length < 1 || token.length > lengthMax) throw new RangeError(`${what} must be 1..${lengthMax} characters`);
    this.#digest = digestOf(token);
  }

  /** Whether `presented` (absent: refused) is this token. */
  accepts(presented: string | undefined): boolean {
    return timingSafeEqual(this.#digest, digestOf(presented ?? '')) && presented !== undefined;
  }
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
