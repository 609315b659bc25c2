/**
 * Words as one POSIX shell line a user can copy: a word with only safe characters stays as is,
 * any other is single-quoted (`'` written as `'\''`). For display only: maqet itself never runs
 * a shell.
 *
 * @example
 * ```ts
 * shellQuote(["qemu-system-x86_64", "-append", "console=ttyS0 quiet"]);
 * // "qemu-system-x86_64 -append 'console=ttyS0 quiet'"
 * ```
 */
export function shellQuote(words: readonly string[]): string {
  return words.map(quoteWord).join(" ");
}

const SAFE = /^[A-Za-z0-9_\-+=.,:/@%^]+$/;

function quoteWord(word: string): string {
  if (SAFE.test(word)) return word;
  return `'${word.replaceAll("'", "'\\''")}'`;
}
