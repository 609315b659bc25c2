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
import type { TestDatabase } from "./test-databases.ts";

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

/**
 * Runs `calls` so that they really race on a server: a transaction holds `streamId` (its row when
 * `present`, an uncommitted insert of its key when `absent`), the calls start, and the hold is
 * released (committed, or rolled back when `absent`) only once `waiters` backends (default: one
 * per call) wait on it; `blocking: false` for calls that must not wait (they settle first). On
 * PGlite (one session) the calls simply run together, serialised by the driver.
 *
 * @example
 * ```ts
 * const results = await raceOnStream(t, streamId, "present", () => [appendA(), appendB()]);
 * ```
 */
export async function raceOnStream<T>(
  t: Pick<TestDatabase, "db" | "concurrent">,
  streamId: string,
  state: "absent" | "present",
  calls: () => Array<Promise<T>>,
  options: { blocking?: boolean; waiters?: number } = {},
): Promise<PromiseSettledResult<T>[]> {
  if (!t.concurrent) return Promise.allSettled(calls());
  const holder = await t.db.startTransaction().execute();
  try {
    if (state === "present") {
      await holder
        .selectFrom("maqet_streams")
        .select("version")
        .where("stream_id", "=", streamId)
        .forUpdate()
        .execute();
    } else {
      // An uncommitted stream row: appends that may create the stream wait on its key.
      await holder.insertInto("maqet_streams").values({ stream_id: streamId, version: 0 }).execute();
    }
    const started = calls();
    const pending = Promise.allSettled(started);
    if (options.blocking ?? true) await waitForLockWaiters(t.db, options.waiters ?? started.length);
    else await pending;
    await (state === "present" ? holder.commit() : holder.rollback()).execute();
    return await pending;
  } catch (error) {
    await holder
      .rollback()
      .execute()
      .catch(() => {});
    throw error;
  }
}
