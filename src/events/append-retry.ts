/**
 * An append run until it has an answer: first in a group (group commit), then, when the outcome
 * asks for it, again on its own, at most {@link MAX_APPEND_ATTEMPTS} times. Run again: a part of
 * a group that raised (`error`: alone, the error is met exactly as a lone append meets it); a
 * unique violation on an event id, or a conflict after which our ids turn out stored (an
 * identical append committed after this statement's snapshot: the next run sees it and answers
 * as a retry); and a conflict whose fresh read shows the stream already in the expected state (it
 * moved there after the decision; deciding again is as if this append arrived a moment later).
 *
 * @example
 * ```ts
 * const { written, ...result } = await appendUntilDecided(append, {
 *   db,
 *   inGroup: (a) => groups.submit(a),
 *   alone: (a) => writeAlone(a),
 * });
 * ```
 */
import type { Kysely } from "kysely";
import type { GroupedAppend, GroupedOutcome } from "./append-group.ts";
import { conflictError, conflictFacts, expectedVersionHolds, idempotentResult } from "./append-to-stream.ts";
import type { Checkpoint } from "./checkpoint.ts";
import type { AppendResult } from "./event-store.ts";
import type { Database } from "./schema.ts";

/** An append's result, whether it wrote (false: an idempotent retry), and the written events' checkpoints. */
export type WrittenAppend = AppendResult & { written: boolean; checkpoints: Checkpoint[] };

/** A conflict is re-checked at most this often when the stream moved into the expected state meanwhile. */
export const MAX_APPEND_ATTEMPTS = 5;

/** Where an append is written: in the next group, or alone and at once; `db` answers a conflict's facts. */
export interface AppendWriters {
  db: Kysely<Database>;
  inGroup(append: GroupedAppend): Promise<GroupedOutcome>;
  alone(append: GroupedAppend): Promise<GroupedOutcome>;
}

/**
 * Writes `append` (see the file's comment for when it runs again); throws CONCURRENCY_CONFLICT
 * when the stream is not in the expected state, and what a lone append throws otherwise.
 */
export async function appendUntilDecided(append: GroupedAppend, writers: AppendWriters): Promise<WrittenAppend> {
  const { streamId, events: prepared, expected } = append;
  for (let attempt = 1; ; attempt++) {
    let outcome: GroupedOutcome;
    try {
      outcome = attempt === 1 ? await writers.inGroup(append) : await writers.alone(append);
    } catch (error) {
      if (isEventIdViolation(error) && attempt < MAX_APPEND_ATTEMPTS) continue;
      throw error;
    }
    if (outcome.kind === "error") {
      if (attempt < MAX_APPEND_ATTEMPTS) continue;
      throw new Error(`append failed in its group with SQLSTATE ${outcome.sqlState}`);
    }
    if (outcome.kind === "appended") return { ...outcome.result, written: true, checkpoints: outcome.checkpoints };
    if (outcome.kind === "duplicates") {
      return { ...idempotentResult(streamId, prepared, expected, outcome.rows), written: false, checkpoints: [] };
    }
    const { actual, idsStored } = await conflictFacts(
      writers.db,
      streamId,
      prepared.map((e) => e.id),
    );
    if ((!idsStored && !expectedVersionHolds(expected, actual)) || attempt >= MAX_APPEND_ATTEMPTS) {
      throw conflictError(streamId, expected, actual);
    }
  }
}

/** A unique violation on `event_id`: an append of the same ids committed concurrently. */
function isEventIdViolation(error: unknown): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return e?.code === "23505" && e.constraint === "maqet_events_event_id_key";
}
