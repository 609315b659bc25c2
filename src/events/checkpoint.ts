/**
 * Where a reader of all streams stands: the last event it has processed, named by what the
 * store's read order is made of (the writer's transaction id, then the global position).
 *
 * Why both: the store reads events in (transaction id, position) order, below the oldest open
 * transaction (see read-all.ts). A position alone does not say where in that order to resume
 * without looking the event up; the pair does, exactly, with no lookup and no ambiguity, and it
 * stays valid for a filtered reader that advanced past events it did not want.
 *
 * A checkpoint is plain data: store it as JSON, or as the string {@link formatCheckpoint} gives.
 * Transaction ids are cluster-wide: a checkpoint is only meaningful on the database that issued
 * it (a dump restored into another cluster starts over, see docs/events.md "Operational notes").
 *
 * @example
 * ```ts
 * const cp: Checkpoint = { transactionId: "7431", position: 42 };
 * await store.readAll({ after: cp });
 * localStorage.cp = formatCheckpoint(cp); // "7431:42"
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

export interface Checkpoint {
  /** The writing transaction's id (`xid8`, as a decimal string: it can exceed 2^53). */
  readonly transactionId: string;
  /** The event's global position. */
  readonly position: number;
}

/**
 * Orders two checkpoints as the store reads them: negative when `a` comes first.
 *
 * @example
 * ```ts
 * compareCheckpoints({ transactionId: "9", position: 3 }, { transactionId: "10", position: 1 }); // < 0
 * ```
 */
export function compareCheckpoints(a: Checkpoint, b: Checkpoint): number {
  const ax = BigInt(a.transactionId);
  const bx = BigInt(b.transactionId);
  if (ax !== bx) return ax < bx ? -1 : 1;
  return a.position - b.position;
}

/**
 * True for a well-formed checkpoint object (a decimal transaction id, a position >= 0).
 *
 * @example
 * ```ts
 * isCheckpoint({ transactionId: "12", position: 3 }); // true
 * isCheckpoint(3); // false
 * ```
 */
export function isCheckpoint(value: unknown): value is Checkpoint {
  if (typeof value !== "object" || value === null) return false;
  const c = value as { transactionId?: unknown; position?: unknown };
  return (
    typeof c.transactionId === "string" &&
    /^\d{1,20}$/.test(c.transactionId) &&
    typeof c.position === "number" &&
    Number.isSafeInteger(c.position) &&
    c.position >= 0
  );
}

/**
 * The checkpoint as one string, `"<transactionId>:<position>"`.
 *
 * @example
 * ```ts
 * formatCheckpoint({ transactionId: "7431", position: 42 }); // "7431:42"
 * ```
 */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  return `${checkpoint.transactionId}:${checkpoint.position}`;
}

/**
 * Reads what {@link formatCheckpoint} wrote; throws `INVALID_ARGUMENT` for anything else.
 *
 * @example
 * ```ts
 * parseCheckpoint("7431:42"); // { transactionId: "7431", position: 42 }
 * ```
 */
export function parseCheckpoint(text: string): Checkpoint {
  const match = /^(\d{1,20}):(\d{1,16})$/.exec(text.trim());
  const checkpoint = match ? { transactionId: match[1]!, position: Number(match[2]) } : undefined;
  if (checkpoint === undefined || !isCheckpoint(checkpoint)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid checkpoint '${text}': expected "<transactionId>:<position>", as formatCheckpoint() writes it.`,
      { details: { checkpoint: text } },
    );
  }
  return checkpoint;
}
