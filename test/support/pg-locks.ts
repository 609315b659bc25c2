/**
 * Waiting for PostgreSQL backends to block on a lock: how a test proves that appends it means to
 * race are really in flight together (each waiting on a row lock) before it lets them go.
 *
 * @example
 * ```ts
 * const pending = Promise.allSettled([appendA(), appendB()]);
 * await waitForLockWaiters(db, 2); // throws, with the count seen, if they never both wait
 * await holder.commit().execute();
 * ```
 */
import { type Kysely, sql } from "kysely";
import type { Database } from "../../src/events/schema.ts";
import { waitUntil } from "./poll.ts";

/**
 * Resolves once at least `count` backends of this database wait on a lock; throws (with the last
 * count) after `timeoutMs`, so a "race" never quietly runs one append after the other.
 *
 * @example
 * ```ts
 * await waitForLockWaiters(db, 2);
 * ```
 */
export async function waitForLockWaiters(db: Kysely<Database>, count: number, timeoutMs = 10_000): Promise<void> {
  await waitUntil(
    `${count} backends waiting on a lock`,
    async () =>
      (
        await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(db)
      ).rows[0]?.n ?? 0,
    (n) => n >= count,
    { timeoutMs, everyMs: 10 },
  );
}
