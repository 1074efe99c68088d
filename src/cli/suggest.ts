/**
 * "Did you mean": the nearest name to a mistyped word, shared by the prompt's command language,
 * the admin prompt and the `haret` command's subcommands.
 *
 * The distance is Damerau-Levenshtein in its optimal-string-alignment form: inserting,
 * deleting or replacing one character costs 1, and so does swapping two neighbours, the most
 * common typing slip (`gte` for `get`), which plain Levenshtein counts as 2.
 */

/** Edits (insert, delete, replace, swap two adjacent characters) turning `a` into `b`. */
export function typoDistance(a: string, b: string): number {
  // Three rows suffice: a swap looks two rows back.
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, beforePrevious[j - 2]! + 1);
      current.push(best);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The candidate nearest to `word` when it is close enough to be a plausible typo (one edit for
 * words of up to three characters, two for longer ones), else null. Ties go to the earlier
 * candidate, so callers list the likelier names first.
 */
export function nearest(word: string, candidates: readonly string[]): string | null {
  const threshold = word.length <= 3 ? 1 : 2;
  let best: string | null = null;
  let bestDistance = threshold + 1;
  for (const candidate of candidates) {
    const distance = typoDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
