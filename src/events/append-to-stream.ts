/**
 * The append SQL: runs inside a transaction the caller owns, so the store (and tests that need a
 * transaction left open on purpose) share one code path.
 *
 * Order matters: the stream row is locked (`for update`) before any global position is drawn,
 * so a writer that loses the expected-version check burns no positions.
 *
 * @example
 * ```ts
 * const result = await db.transaction().execute((trx) =>
 *   appendToStream(trx, "vm-1", [prepared], "no_stream"),
 * );
 * ```
 */
import { type Kysely, sql } from "kysely";
import { MaqetError } from "../errors/maqet-error.ts";
import type { EventMetadata, StoredEvent } from "./envelope.ts";
import type { AppendResult, ExpectedVersion } from "./event-store.ts";
import { type Database, toNumber } from "./schema.ts";

/** The channel every committed append notifies, with the stream id as payload (a wake-up only). */
export const EVENTS_CHANNEL = "maqet_events";

/** An event ready to store: id and metadata already filled in. */
export interface PreparedEvent {
  id: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: EventMetadata;
}

interface InsertedRow {
  global_position: string | number;
  event_id: string;
  stream_version: string | number;
  recorded_at: Date | string;
}

/**
 * Appends `events` (at least one) to `streamId` inside the transaction `trx`.
 * Throws `CONCURRENCY_CONFLICT` when `expected` does not hold and `STORE_ERROR` for a duplicate
 * event id; either way the caller must roll the transaction back.
 *
 * @example
 * ```ts
 * const trx = await db.startTransaction().execute();
 * await appendToStream(trx, "vm-1", [prepared], "any");
 * await trx.commit().execute();
 * ```
 */
export async function appendToStream(
  trx: Kysely<Database>,
  streamId: string,
  events: readonly PreparedEvent[],
  expected: ExpectedVersion,
): Promise<AppendResult> {
  // Only these modes may create the stream; for the others a missing row is already a conflict.
  if (expected === "any" || expected === "no_stream" || expected === -1) {
    await trx
      .insertInto("maqet_streams")
      .values({ stream_id: streamId })
      .onConflict((c) => c.doNothing())
      .execute();
  }
  const locked = await trx
    .selectFrom("maqet_streams")
    .select("version")
    .where("stream_id", "=", streamId)
    .forUpdate()
    .executeTakeFirst();
  const actual = locked === undefined ? -1 : toNumber(locked.version);
  checkExpectedVersion(streamId, expected, actual);

  const first = actual + 1;
  const batch = JSON.stringify(
    events.map((e) => ({ id: e.id, type: e.type, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata })),
  );
  let inserted: InsertedRow[];
  try {
    // One statement for the whole batch, and one parameter whatever its size (no 65535 cap).
    const result = await sql<InsertedRow>`
      insert into maqet_events (event_id, stream_id, stream_version, type, schema_version, data, metadata)
      select (e->>'id')::uuid, ${streamId}, ${first}::bigint + b.n - 1, e->>'type',
             (e->>'schemaVersion')::integer, coalesce(e->'data', 'null'::jsonb), e->'metadata'
        from jsonb_array_elements(${batch}::jsonb) with ordinality as b(e, n)
       order by b.n
      returning global_position, event_id, stream_version, recorded_at`.execute(trx);
    inserted = result.rows;
  } catch (error) {
    throw duplicateIdError(streamId, error) ?? error;
  }
  const last = actual + events.length;
  // The notification rides on the version update (one round trip less); it is delivered at commit.
  await trx
    .updateTable("maqet_streams")
    .set({ version: last, updated_at: sql`now()` })
    .where("stream_id", "=", streamId)
    .returning(sql<void>`pg_notify(${EVENTS_CHANNEL}, stream_id)`.as("notified"))
    .execute();

  const byVersion = new Map(inserted.map((r) => [toNumber(r.stream_version), r]));
  const stored = events.map((e, i): StoredEvent => {
    const row = byVersion.get(first + i);
    if (row === undefined) throw new Error(`append to '${streamId}': no row returned for version ${first + i}`);
    return {
      id: e.id,
      streamId,
      streamVersion: first + i,
      globalPosition: toNumber(row.global_position),
      type: e.type,
      schemaVersion: e.schemaVersion,
      data: e.data,
      metadata: e.metadata,
      recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(row.recorded_at),
    };
  });
  return { nextExpectedVersion: last, lastGlobalPosition: stored.at(-1)?.globalPosition ?? -1, events: stored };
}

/**
 * Throws `CONCURRENCY_CONFLICT` unless a stream at version `actual` (-1: absent) satisfies `expected`.
 *
 * @example
 * ```ts
 * checkExpectedVersion("vm-1", "no_stream", -1); // ok
 * checkExpectedVersion("vm-1", 3, 5); // throws CONCURRENCY_CONFLICT
 * ```
 */
export function checkExpectedVersion(streamId: string, expected: ExpectedVersion, actual: number): void {
  const holds =
    expected === "any" ||
    (expected === "no_stream" && actual === -1) ||
    (expected === "stream_exists" && actual >= 0) ||
    expected === actual;
  if (holds) return;
  const want =
    expected === "no_stream"
      ? "no stream yet"
      : expected === "stream_exists"
        ? "an existing stream"
        : `version ${String(expected)}`;
  const found = actual === -1 ? "the stream does not exist" : `the stream is at version ${actual}`;
  throw new MaqetError(
    "CONCURRENCY_CONFLICT",
    `Append to stream '${streamId}' refused: expected ${want}, but ${found}. ` +
      "Another writer got there first; read the stream again and retry with its current version.",
    { details: { streamId, expected, actual } },
  );
}

/** A unique violation on `event_id` as a clear error; undefined for any other error. */
function duplicateIdError(streamId: string, error: unknown): MaqetError | undefined {
  const e = error as { code?: unknown; constraint?: unknown; detail?: unknown } | null;
  if (e?.code !== "23505" || e.constraint !== "maqet_events_event_id_key") return undefined;
  const eventId = typeof e.detail === "string" ? /\(event_id\)=\(([^)]+)\)/.exec(e.detail)?.[1] : undefined;
  return new MaqetError(
    "STORE_ERROR",
    `Append to stream '${streamId}' failed: event id ${eventId ?? "(unknown)"} is already stored. ` +
      "Event ids must be unique; retrying an append with the same ids is not supported yet, " +
      "so read the stream to see whether the first attempt committed.",
    { cause: error, details: { streamId, eventId } },
  );
}
