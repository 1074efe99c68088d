/**
 * The simulator's seeded PRNG: xoshiro128** seeded through splitmix32. Everything random in a
 * simulated run (network faults, workload, crash schedule, nonces) comes from one of these,
 * derived from the run's seed, so one seed replays a run exactly. Never Math.random.
 *
 * `fork()` derives an independent generator (and advances this one), so components can draw
 * without disturbing each other's sequences when code is added to one of them.
 */

/** splitmix32 step: a well-mixed 32-bit value from a 32-bit counter. */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Any integer (or float: its integer bits are used) seeds a generator. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`prng seed must be finite, got ${seed}`);
    // Mix both 32-bit halves of a safe integer so seeds 1 and 2**32 + 1 differ.
    const low = seed >>> 0;
    const high = Math.floor(Math.abs(seed) / 4294967296) >>> 0;
    let s = splitmix32(low ^ splitmix32(high ^ 0x5bd1e995));
    this.#a = s;
    s = splitmix32(s);
    this.#b = s;
    s = splitmix32(s);
    this.#c = s;
    s = splitmix32(s);
    this.#d = s;
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1; // xoshiro must not be all zero
  }

  /** The next uint32 (xoshiro128**). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#b << 9) >>> 0;
    this.#c = (this.#c ^ this.#a) >>> 0;
    this.#d = (this.#d ^ this.#b) >>> 0;
    this.#b = (this.#b ^ this.#c) >>> 0;
    this.#a = (this.#a ^ this.#d) >>> 0;
    this.#c = (this.#c ^ t) >>> 0;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.next() / 4294967296;
  }

  /** A uniform integer in [0, n); n must be a positive integer up to 2**32. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1 || n > 4294967296) throw new RangeError(`prng.int bound must be in 1..2**32, got ${n}`);
    // Rejection sampling removes the modulo bias.
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.next();
      if (x < limit) return x % n;
    }
  }

  /** A uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`prng.range: hi (${hi}) < lo (${lo})`);
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p (p <= 0: never, p >= 1: always, without drawing). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.float() < p;
  }

  /** A uniformly chosen element; the array must not be empty. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('prng.pick from an empty array');
    return items[this.int(items.length)] as T;
  }

  /** An exponentially distributed float with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }

  /** A new array with the items in random order (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }

  /** `count` random bytes. */
  bytes(count: number): Uint8Array {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** An independent generator derived from this one's next outputs (advances this one). */
  fork(): Prng {
    return new Prng(this.next() * 4096 + (this.next() & 0xfff));
  }
}
