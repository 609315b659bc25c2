/**
 * The append: ONE client statement, `select * from maqet_append(...)` (migrations/
 * 0007-lean-append.ts, first written in 0002), decides and writes, so it is atomic on its own
 * (autocommit) and also runs inside a transaction a caller owns (tests leave one open on
 * purpose). In the function:
 * 1. if any id is already stored (one index probe per event), one `duplicate` row comes back and
 *    nothing is written; the stored rows are then read by a statement of their own
 *    (idempotency: {@link idempotentResult} tells a faithful retry from EVENT_ID_CONFLICT);
 * 2. one statement decides the expected version on the stream row: an upsert (`any`,
 *    `no_stream`: may create the stream) or an update (`stream_exists`, exact), the condition in
 *    its WHERE clause. PostgreSQL evaluates it on the newest committed row version and holds the
 *    row lock to commit, so racing writers are serialised on the row and each decides on what
 *    the previous one committed. No row: a conflict, nothing else happens;
 * 3. the events are inserted, numbered from the version the stream step returned. Global
 *    positions are drawn only for rows inserted, after the row lock is held: a loser burns no
 *    position;
 * 4. with `notify` (the default), `pg_notify('maqet_events', stream_id)` is delivered at commit.
 *    The store on a server passes false and notifies after commit ({@link notifyStreams}): a
 *    notifying transaction holds a database-wide lock through its commit, serialising writers.
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
import { type EventRow, toStoredEvent } from "./read-all.ts";
import { type Database, PREPARE_MARK, toNumber } from "./schema.ts";

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

/** What `maqet_append` returns per appended event, or once for `duplicate` (other columns null). */
export interface OutcomeRow {
  outcome: "appended" | "duplicate";
  global_position: string | number | null;
  stream_version: string | number | null;
  recorded_at: Date | string | null;
  transaction_id: string | null;
}

/** A stored event carrying one of the ids being appended, as {@link duplicateRows} selects it. */
interface DuplicateEventRow extends EventRow {
  same: boolean;
  n: string | number;
}

/**
 * Runs the append statement once for `events` (at least one). Does not throw for a conflict or
 * for ids already stored: it reports them. Database errors propagate (a unique violation on
 * `event_id` means a concurrent append of the same ids committed after this statement's
 * snapshot; running the statement again sees it).
 *
 * The function returns positions, versions, times and transaction ids only; the events it
 * reports are built from what was sent (data and metadata as JSON gives them back).
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
  notify = true,
): Promise<AppendOutcome> {
  const batch = JSON.stringify(
    events.map((e) => ({ id: e.id, type: e.type, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata })),
  );
  const mode = expected === "any" || expected === "no_stream" || expected === "stream_exists" ? expected : "exact";
  const { rows } = await sql<OutcomeRow>`${sql.raw(PREPARE_MARK)}
    select * from maqet_append(${streamId}, ${batch}::jsonb, ${expected === -1 ? "no_stream" : mode},
                               ${typeof expected === "number" ? expected : null}::bigint, ${notify}::boolean)`.execute(
    db,
  );

  if (rows[0]?.outcome === "duplicate") return { kind: "duplicates", rows: await duplicateRows(db, streamId, batch) };
  if (rows.length === 0) return { kind: "conflict" };
  return appendedOutcome(streamId, events, JSON.parse(batch), rows);
}

/**
 * The `appended` outcome from the rows `maqet_append` returned for `events`: the stored events
 * are built from what was sent (`sent`: the batch as JSON gave it back, so undefined is dropped
 * and dates are strings, as the database stored them) and the rows' positions, versions, times.
 *
 * @example
 * ```ts
 * const outcome = appendedOutcome("vm-1", events, JSON.parse(batch), rows);
 * ```
 */
export function appendedOutcome(
  streamId: string,
  events: readonly PreparedEvent[],
  sent: ReadonlyArray<{ data?: unknown; metadata: EventMetadata }>,
  rows: readonly OutcomeRow[],
): AppendOutcome & { kind: "appended" } {
  const count = events.length;
  if (rows.length !== count) throw new Error(`append to '${streamId}': ${rows.length} of ${count} rows came back`);
  const appended = rows
    .map((r) => ({ row: r, version: toNumber(r.stream_version!) }))
    .sort((a, b) => a.version - b.version)
    .map(({ row, version }, i) => ({
      event: {
        id: events[i]!.id,
        streamId,
        streamVersion: version,
        globalPosition: toNumber(row.global_position!),
        type: events[i]!.type,
        schemaVersion: events[i]!.schemaVersion,
        data: sent[i]!.data ?? null,
        metadata: sent[i]!.metadata,
        recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(row.recorded_at!),
      } satisfies StoredEvent,
      transactionId: row.transaction_id!,
    }));
  const stored = appended.map((a) => a.event);
  const last = stored.at(-1)!;
  return {
    kind: "appended",
    result: { nextExpectedVersion: last.streamVersion, lastGlobalPosition: last.globalPosition, events: stored },
    checkpoints: appended.map((a) => ({ transactionId: a.transactionId, position: a.event.globalPosition })),
  };
}

/**
 * The stored events carrying ids of `batch` (the JSON array sent to `maqet_append`), each with
 * the index of the new event with the same id and whether it is the same fact (same stream,
 * type, schema version and data, compared as jsonb). A statement of its own, planned with its
 * actual arguments: it runs only when an append meets ids already stored.
 *
 * @example
 * ```ts
 * const rows = await duplicateRows(db, "vm-1", JSON.stringify(events));
 * ```
 */
export async function duplicateRows(db: Kysely<Database>, streamId: string, batch: string): Promise<DuplicateRow[]> {
  const { rows } = await sql<DuplicateEventRow>`
    select e.global_position, e.event_id, e.stream_id, e.stream_version, e.type, e.schema_version, e.data,
           e.metadata, e.recorded_at,
           (e.stream_id = ${streamId} and e.type = b.x->>'type'
             and e.schema_version = (b.x->>'schemaVersion')::integer
             and e.data = coalesce(b.x->'data', 'null'::jsonb)) as same,
           b.n - 1 as n
      from jsonb_array_elements(${batch}::jsonb) with ordinality as b(x, n)
      join maqet_events e on e.event_id = (b.x->>'id')::uuid`.execute(db);
  return rows.map((r) => ({ event: toStoredEvent(r), index: toNumber(r.n), same: r.same === true }));
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
 * Wakes LISTENers of {@link EVENTS_CHANNEL}: one notification per stream id, in a statement of
 * its own (so outside any append's transaction: its commit writes no WAL to wait for).
 *
 * @example
 * ```ts
 * await notifyStreams(db, ["vm-1", "vm-2"]);
 * ```
 */
export async function notifyStreams(db: Kysely<Database>, streamIds: readonly string[]): Promise<void> {
  await sql`select pg_notify(${EVENTS_CHANNEL}, s) from unnest(${[...streamIds]}::text[]) as s`.execute(db);
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
