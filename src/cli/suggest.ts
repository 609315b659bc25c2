/**
 * "Did you mean …?" for a mistyped command or option: the nearest candidate by edit distance
 * (insertions, deletions, substitutions and swaps of two neighbours count one each), or one the
 * typed word is a prefix of. Close enough means at most a third of the word's letters changed.
 *
 * @example
 * ```ts
 * nearest("strat", ["start", "stop", "status"]); // "start"
 * didYouMean("strat", ["start", "stop"]);        // " Did you mean 'start'?"
 * ```
 */

/** Optimal string alignment distance (Damerau–Levenshtein without repeated edits of one span). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate, or undefined when none is close enough to be what was meant. */
export function nearest(typed: string, candidates: readonly string[]): string | undefined {
  const word = typed.toLowerCase();
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  if (best) return best.candidate;
  // A unique prefix (`snap` → `snapshot`) of three letters or more.
  const prefixed = word.length >= 3 ? candidates.filter((c) => c.toLowerCase().startsWith(word)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** A sentence to append to an error message: ` Did you mean 'x'?`, or "" when nothing is close. */
export function didYouMean(typed: string, candidates: readonly string[], prefix = ""): string {
  const match = nearest(typed, candidates);
  return match === undefined ? "" : ` Did you mean '${prefix}${match}'?`;
}
