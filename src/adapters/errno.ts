/**
 * The errno name (`ENOENT`, `EEXIST`, …) of a failed Node system call, for adapters that tell
 * "not there" from a real failure.
 *
 * @example
 * ```ts
 * try { await unlink(path); } catch (error) { if (errnoOf(error) !== "ENOENT") throw error; }
 * ```
 */
export function errnoOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}
