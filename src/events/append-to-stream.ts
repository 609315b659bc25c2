/**
 * The append: ONE client statement, `select * from maqet_append(...)` (migrations/
 * 0002-append-function.ts), decides and writes, so it is atomic on its own (autocommit) and also
 * runs inside a transaction a caller owns (tests leave one open on purpose). In the function:
 * 1. events whose ids are already stored come back as `duplicate` rows and nothing is written
 *    (idempotency: {@link idempotentResult} tells a faithful retry from EVENT_ID_CONFLICT);
 * 2. one statement decides the expected version on the stream row: an upsert (`any`,
 *    `no_stream`: may create the stream) or an update (`stream_exists`, exact), the condition in
 *    its WHERE clause. PostgreSQL evaluates it on the newest committed row version and holds the
 *    row lock to commit, so racing writers are serialised on the row and each decides on what
 *    the previous one committed. No row: a conflict, nothing else happens;
 * 3. the events are inserted, numbered from the version the stream step returned. Global
 *    positions are drawn only for rows inserted, after the row lock is held: a loser burns no
 *    position;
 * 4. `pg_notify('maqet_events', stream_id)` is delivered at commit.
 * A function rather than one big CTE statement because PL/pgSQL caches its plans per session:
 * the CTE form spent about 1 ms planning each append.
 *
 * @example
 * ```ts
 * const outcome = await appendStatement(db, "vm-1", [prepared], "no_stream");
 * if (outcome.kind === "appended") console.log(outcome.result.nextExpectedVersion);
 * ```
 */
import { type Kysely, sql } from "kysely";
import { MaqetError } from "../errors/maqet-error.ts";
import type { Checkpoint } from "./checkpoint.ts";
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

/** A stored event that carries one of the ids being appended. */
export interface DuplicateRow {
  event: StoredEvent;
  /** Index of the new event with the same id. */
  index: number;
  /** Same stream, type, schema version and data (jsonb equality) as that new event. */
  same: boolean;
}

/** What one run of the statement found; the caller turns it into a result or an error. */
export type AppendOutcome =
  | { kind: "appended"; result: AppendResult; checkpoints: Checkpoint[] }
  | { kind: "conflict" }
  | { kind: "duplicates"; rows: DuplicateRow[] };

interface OutcomeRow {
  outcome: "appended" | "duplicate";
  global_position: string | number;
  event_id: string;
  stream_id: string;
  stream_version: string | number;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: unknown;
  recorded_at: Date | string;
  transaction_id: string;
  same: boolean | null;
  n: string | number;
}

/**
 * Runs the append statement once for `events` (at least one). Does not throw for a conflict or
 * for ids already stored: it reports them. Database errors propagate (a unique violation on
 * `event_id` means a concurrent append of the same ids committed after this statement's
 * snapshot; running the statement again sees it).
 *
 * @example
 * ```ts
 * const outcome = await appendStatement(db, "vm-1", events, 4);
 * ```
 */
export async function appendStatement(
  db: Kysely<Database>,
  streamId: string,
  events: readonly PreparedEvent[],
  expected: ExpectedVersion,
): Promise<AppendOutcome> {
  const count = events.length;
  const batch = JSON.stringify(
    events.map((e) => ({ id: e.id, type: e.type, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata })),
  );
  const mode = expected === "any" || expected === "no_stream" || expected === "stream_exists" ? expected : "exact";
  const { rows } = await sql<OutcomeRow>`
    select * from maqet_append(${streamId}, ${batch}::jsonb, ${expected === -1 ? "no_stream" : mode},
                               ${typeof expected === "number" ? expected : null}::bigint)`.execute(db);

  const duplicates = rows.filter((r) => r.outcome === "duplicate");
  if (duplicates.length > 0) {
    return {
      kind: "duplicates",
      rows: duplicates.map((r) => ({ event: rowToEvent(r), index: toNumber(r.n), same: r.same === true })),
    };
  }
  if (rows.length === 0) return { kind: "conflict" };
  const appended = rows.map((r) => ({ event: rowToEvent(r), transactionId: r.transaction_id }));
  appended.sort((a, b) => a.event.streamVersion - b.event.streamVersion);
  if (appended.length !== count)
    throw new Error(`append to '${streamId}': ${appended.length} of ${count} rows came back`);
  const stored = appended.map((a) => a.event);
  const last = stored.at(-1)!;
  return {
    kind: "appended",
    result: { nextExpectedVersion: last.streamVersion, lastGlobalPosition: last.globalPosition, events: stored },
    checkpoints: appended.map((a) => ({ transactionId: a.transactionId, position: a.event.globalPosition })),
  };
}

/**
 * Appends `events` inside the transaction (or on the connection) `db` and throws what the store
 * would: `CONCURRENCY_CONFLICT` or `EVENT_ID_CONFLICT`. An idempotent retry returns the original
 * result. Meant for code that holds a transaction open on purpose (tests of the watermark); the
 * store itself uses {@link appendStatement} and retries what can be retried.
 *
 * @example
 * ```ts
 * const trx = await db.startTransaction().execute();
 * await appendToStream(trx, "vm-1", [prepared], "any");
 * await trx.commit().execute();
 * ```
 */
export async function appendToStream(
  db: Kysely<Database>,
  streamId: string,
  events: readonly PreparedEvent[],
  expected: ExpectedVersion,
): Promise<AppendResult> {
  const outcome = await appendStatement(db, streamId, events, expected);
  if (outcome.kind === "appended") return outcome.result;
  if (outcome.kind === "duplicates") return idempotentResult(streamId, events, expected, outcome.rows);
  throw conflictError(streamId, expected, await currentVersion(db, streamId));
}

/**
 * The stream's committed version now (-1: absent), read in a fresh statement.
 *
 * @example
 * ```ts
 * await currentVersion(db, "vm-1"); // 4
 * ```
 */
export async function currentVersion(db: Kysely<Database>, streamId: string): Promise<number> {
  const row = await db
    .selectFrom("maqet_streams")
    .select("version")
    .where("stream_id", "=", streamId)
    .executeTakeFirst();
  return row === undefined ? -1 : toNumber(row.version);
}

/**
 * After a conflict, in a fresh statement: the stream's committed version (-1: absent) and whether
 * any of `ids` is stored now (an identical append committed after the deciding statement's
 * snapshot: running the statement again answers it as a retry).
 *
 * @example
 * ```ts
 * const { actual, idsStored } = await conflictFacts(db, "vm-1", ["5f0c…"]);
 * ```
 */
export async function conflictFacts(
  db: Kysely<Database>,
  streamId: string,
  ids: readonly string[],
): Promise<{ actual: number; idsStored: boolean }> {
  const { rows } = await sql<{ version: string | number | null; ids_stored: boolean }>`
    select (select version from maqet_streams where stream_id = ${streamId}) as version,
           exists (select from maqet_events where event_id = any(${[...ids]}::uuid[])) as ids_stored`.execute(db);
  const row = rows[0];
  return { actual: row?.version == null ? -1 : toNumber(row.version), idsStored: row?.ids_stored === true };
}

/**
 * True when a stream at version `actual` (-1: absent) satisfies `expected`.
 *
 * @example
 * ```ts
 * expectedVersionHolds("stream_exists", 0); // true
 * ```
 */
export function expectedVersionHolds(expected: ExpectedVersion, actual: number): boolean {
  return (
    expected === "any" ||
    (expected === "no_stream" && actual === -1) ||
    (expected === "stream_exists" && actual >= 0) ||
    expected === actual
  );
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
  if (!expectedVersionHolds(expected, actual)) throw conflictError(streamId, expected, actual);
}

/**
 * The typed conflict: `CONCURRENCY_CONFLICT` with details `{streamId, expected, actual}`.
 *
 * @example
 * ```ts
 * throw conflictError("vm-1", 3, 5);
 * ```
 */
export function conflictError(streamId: string, expected: ExpectedVersion, actual: number): MaqetError {
  const want =
    expected === "no_stream"
      ? "no stream yet"
      : expected === "stream_exists"
        ? "an existing stream"
        : `version ${String(expected)}`;
  const found = actual === -1 ? "the stream does not exist" : `the stream is at version ${actual}`;
  return new MaqetError(
    "CONCURRENCY_CONFLICT",
    `Append to stream '${streamId}' refused: expected ${want}, but ${found}. ` +
      "Another writer got there first; read the stream again and retry with its current version.",
    { details: { streamId, expected, actual } },
  );
}

/**
 * Decides what an append whose ids are (partly) stored means. A faithful retry (every id stored
 * in this stream with the same type, schema version and data, in the same order on consecutive
 * versions that `expected` could have produced) returns the original result; anything else is
 * `EVENT_ID_CONFLICT` and writes nothing.
 *
 * @example
 * ```ts
 * const original = idempotentResult("vm-1", events, "no_stream", outcome.rows);
 * ```
 */
export function idempotentResult(
  streamId: string,
  events: readonly PreparedEvent[],
  expected: ExpectedVersion,
  rows: readonly DuplicateRow[],
): AppendResult {
  const byIndex = [...rows].sort((a, b) => a.index - b.index);
  const elsewhere = byIndex.find((r) => r.event.streamId !== streamId);
  if (elsewhere) {
    throw idConflict(
      streamId,
      byIndex,
      "other-stream",
      `event id ${elsewhere.event.id} is already stored in stream '${elsewhere.event.streamId}'`,
    );
  }
  const changed = byIndex.find((r) => !r.same);
  if (changed) {
    throw idConflict(
      streamId,
      byIndex,
      "different-content",
      `event id ${changed.event.id} is already stored (version ${changed.event.streamVersion}, type ` +
        `${changed.event.type}) with a different type, schema version or data than event #${changed.index} (${events[changed.index]?.type})`,
    );
  }
  if (byIndex.length !== events.length) {
    const stored = new Set(byIndex.map((r) => r.event.id));
    const missing = events.filter((e) => !stored.has(e.id)).map((e) => e.id);
    throw idConflict(
      streamId,
      byIndex,
      "partial",
      `${byIndex.length} of the ${events.length} event ids are already stored, ${missing.length} are new (${missing[0]}…)`,
    );
  }
  const first = byIndex[0]!.event.streamVersion;
  if (byIndex.some((r, i) => r.index !== i || r.event.streamVersion !== first + i)) {
    throw idConflict(
      streamId,
      byIndex,
      "order",
      `the event ids are stored at versions ${byIndex.map((r) => r.event.streamVersion).join(", ")}, not in this order on consecutive versions`,
    );
  }
  if (!expectedVersionHolds(expected, first - 1)) {
    throw idConflict(
      streamId,
      byIndex,
      "expected-version",
      `the events are already stored from version ${first}, which expected version ${JSON.stringify(expected)} could not have produced`,
    );
  }
  const stored = byIndex.map((r) => r.event);
  const last = stored.at(-1)!;
  return { nextExpectedVersion: last.streamVersion, lastGlobalPosition: last.globalPosition, events: stored };
}

function idConflict(streamId: string, rows: readonly DuplicateRow[], reason: string, what: string): MaqetError {
  return new MaqetError(
    "EVENT_ID_CONFLICT",
    `Append to stream '${streamId}' refused: ${what}. Nothing was written. An event id names one ` +
      "fact forever: retry an append only with the same events in the same order, and give new events new ids.",
    { details: { streamId, reason, eventIds: rows.map((r) => r.event.id) } },
  );
}

function rowToEvent(r: OutcomeRow): StoredEvent {
  return {
    id: r.event_id,
    streamId: r.stream_id,
    streamVersion: toNumber(r.stream_version),
    globalPosition: toNumber(r.global_position),
    type: r.type,
    schemaVersion: r.schema_version,
    data: r.data,
    metadata: r.metadata as EventMetadata,
    recordedAt: r.recorded_at instanceof Date ? r.recorded_at : new Date(r.recorded_at),
  };
}
