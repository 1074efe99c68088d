/**
 * A tiny seeded PRNG (mulberry32) whose whole state is one uint32 kept in protocol state, so
 * randomised timeouts replay exactly from a seed (DESIGN.md convention 2). Not for secrets.
 */

export type Prng = { readonly seed: number };

export function makePrng(seed: number): Prng {
  return { seed: seed >>> 0 };
}

/** The next value in [0, 1) and the advanced generator. */
export function nextFloat(prng: Prng): { readonly value: number; readonly prng: Prng } {
  const seed = (prng.seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  const value = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  return { value, prng: { seed } };
}

/** A uniform integer in [0, bound). */
export function nextInt(prng: Prng, bound: number): { readonly value: number; readonly prng: Prng } {
  const next = nextFloat(prng);
  return { value: Math.floor(next.value * bound), prng: next.prng };
}
