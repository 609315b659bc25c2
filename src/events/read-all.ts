/**
 * Reading events across streams without ever passing one that a still-open transaction may
 * commit later (the transaction-id watermark).
 *
 * Why (xid, position) order and not position order: positions are drawn at insert time, xids at
 * a transaction's first write. A transaction Y can take its xid before X yet draw its position
 * after X; if Y commits while X is open, Y's row is below the watermark (Y < xmin = X) while X's
 * lower position is not yet visible. A position-ordered reader would return Y's row, move its
 * checkpoint past X's position and never see X's event. Ordered by (xid, position), X's row sorts
 * after Y's, so nothing is skipped.
 *
 * Every row below the watermark was written by a transaction that has finished, so what a read
 * returns can never grow behind it: a reader that resumes after the last row it got (its
 * {@link Checkpoint}) misses nothing and sees nothing twice.
 *
 * @example
 * ```ts
 * const page = await readPage(db, { after: checkpoint, limit: 500, category: "vm" });
 * checkpoint = page.head ?? checkpoint;
 * ```
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Checkpoint } from "./checkpoint.ts";
import type { StoredEvent } from "./envelope.ts";
import type { EventFilter, ReadAllOptions } from "./event-store.ts";
import { type Database, toNumber } from "./schema.ts";

/** The columns an event is rebuilt from. */
export const EVENT_COLUMNS = [
  "global_position",
  "event_id",
  "stream_id",
  "stream_version",
  "type",
  "schema_version",
  "data",
  "metadata",
  "recorded_at",
] as const;

/** One `maqet_events` row as selected with {@link EVENT_COLUMNS}. */
export interface EventRow {
  global_position: string | number | bigint;
  event_id: string;
  stream_id: string;
  stream_version: string | number | bigint;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: unknown;
  recorded_at: Date | string;
}

/** A page of events in read order, each with the checkpoint to resume after it. */
export interface EventPage {
  events: Array<{ event: StoredEvent; checkpoint: Checkpoint }>;
  /**
   * The last readable event of the whole store (any stream, filter or not) in the same snapshot
   * as the page, or null when nothing is readable. When the page is shorter than its limit, a
   * reader may move its checkpoint here: no event it wants lies before it unread.
   */
  head: Checkpoint | null;
}

export interface ReadPageOptions extends EventFilter {
  /** Resume after this checkpoint, or after the event at this position (looked up); 0/absent: start. */
  after?: number | Checkpoint;
  limit?: number;
}

const WATERMARK = sql`pg_snapshot_xmin(pg_current_snapshot())`;

/**
 * Events of all streams (or those the filter selects) that no open transaction can still
 * precede, in the store's read order, with the store's head from the same snapshot.
 *
 * @example
 * ```ts
 * const { events, head } = await readPage(db, { after: { transactionId: "812", position: 40 }, limit: 100 });
 * ```
 */
export async function readPage(db: Kysely<Database>, options: ReadPageOptions = {}): Promise<EventPage> {
  const { rows } = await sql<
    EventRow & { transaction_id: string | null; head_xid: string | null; head_pos: string | number | null }
  >`
    select h.head_xid, h.head_pos, p.*
      from (select 1) as one
      left join lateral (
        select e.transaction_id::text as head_xid, e.global_position as head_pos
          from maqet_events e
         where e.transaction_id < ${WATERMARK}
         order by e.transaction_id desc, e.global_position desc
         limit 1) as h on true
      left join lateral (${pageQuery(options)}) as p on true
     order by p.tx_order, p.global_position`.execute(db);
  const first = rows[0];
  const head =
    first?.head_xid == null || first.head_pos == null
      ? null
      : { transactionId: first.head_xid, position: toNumber(first.head_pos) };
  const events = rows
    .filter((r) => r.transaction_id != null)
    .map((r) => ({
      event: toStoredEvent(r),
      checkpoint: { transactionId: r.transaction_id!, position: toNumber(r.global_position) },
    }));
  return { events, head };
}

/**
 * Events of all streams (or those the filter selects) that no open transaction can still
 * precede, in the store's read order: by transaction id, then global position. Within one stream
 * that is version order, and for a single writer it is position order.
 *
 * `after` is a {@link Checkpoint}, or the global position of the last event already processed
 * (the read resumes right after that event). Pass 0 or nothing to start from the beginning.
 *
 * @example
 * ```ts
 * const first = await readAll(db, { limit: 100 });
 * const next = await readAll(db, { after: first.at(-1)?.globalPosition, limit: 100 });
 * ```
 */
export async function readAll(db: Kysely<Database>, options: ReadAllOptions = {}): Promise<StoredEvent[]> {
  const { rows } = await sql<EventRow>`${pageQuery(options, false)}`.execute(db);
  return rows.map(toStoredEvent);
}

/**
 * The checkpoint of the last readable event, or null when none is readable yet.
 *
 * @example
 * ```ts
 * const end = await readHead(db); // subscribe "from the end"
 * ```
 */
export async function readHead(db: Kysely<Database>): Promise<Checkpoint | null> {
  // Qualified names: a bare `transaction_id` in ORDER BY would sort by the text output column
  // ("999" after "1003"), not by the xid8.
  const { rows } = await sql<{ transaction_id: string; global_position: string | number }>`
    select e.transaction_id::text as transaction_id, e.global_position
      from maqet_events e
     where e.transaction_id < ${WATERMARK}
     order by e.transaction_id desc, e.global_position desc
     limit 1`.execute(db);
  const row = rows[0];
  return row === undefined ? null : { transactionId: row.transaction_id, position: toNumber(row.global_position) };
}

/**
 * The checkpoint of the event at `position`, or of the nearest readable one below it (a position
 * that was never committed); null when there is none. Turns a position someone wrote down into
 * an exact place in read order.
 *
 * @example
 * ```ts
 * await checkpointAt(db, 42); // { transactionId: "7431", position: 42 }
 * ```
 */
export async function checkpointAt(db: Kysely<Database>, position: number): Promise<Checkpoint | null> {
  const { rows } = await sql<{ transaction_id: string; global_position: string | number }>`
    select e.transaction_id::text as transaction_id, e.global_position
      from maqet_events e
     where e.global_position <= ${position}::bigint
     order by e.global_position desc
     limit 1`.execute(db);
  const row = rows[0];
  return row === undefined ? null : { transactionId: row.transaction_id, position: toNumber(row.global_position) };
}

/**
 * The WHERE conditions of the store's read order: below the transaction-id watermark, the
 * filter, and after the cursor (a checkpoint, or the event at a position, looked up). Shared by
 * every reader of `maqet_events` in read order (pages, `readAll`, projection rebuilds).
 *
 * @example
 * ```ts
 * const where = sql.join(readOrderConditions({ after: 40, category: "vm" }), sql` and `);
 * ```
 */
export function readOrderConditions(options: ReadPageOptions): RawBuilder<unknown>[] {
  const { after, category, streamId, types } = options;
  const conditions: RawBuilder<unknown>[] = [sql`e.transaction_id < ${WATERMARK}`];
  if (category !== undefined) conditions.push(sql`e.category = ${category}`);
  if (streamId !== undefined) conditions.push(sql`e.stream_id = ${streamId}`);
  if (types !== undefined) conditions.push(sql`e.type = any(${[...types]}::text[])`);
  if (typeof after === "object") {
    conditions.push(
      sql`(e.transaction_id, e.global_position) > (${after.transactionId}::xid8, ${after.position}::bigint)`,
    );
  } else if (after !== undefined && after > 0) {
    // The cursor is the event at `after` (or the nearest one below, if that position was never
    // committed); both lookups are one backward primary-key probe, run once per query.
    const cursor = (column: "transaction_id" | "global_position") =>
      sql`(select c.${sql.ref(column)} from maqet_events c
            where c.global_position <= ${after}::bigint order by c.global_position desc limit 1)`;
    conditions.push(
      sql`(e.transaction_id, e.global_position) >
        (coalesce(${cursor("transaction_id")}, '0'::xid8), coalesce(${cursor("global_position")}, 0))`,
    );
  }
  return conditions;
}

/**
 * The filtered, watermarked, ordered page as a SELECT (usable alone or as a lateral subquery).
 * `checkpoints`: also select each row's transaction id as text (its checkpoint) and as xid8 (to
 * order the outer query); `readAll` needs neither (skipping them: PGlite readAll 0.66-0.79x -> 0.84-0.86x a raw SELECT).
 */
function pageQuery(options: ReadPageOptions, checkpoints = true): RawBuilder<unknown> {
  const conditions = readOrderConditions(options);
  return sql`
    select ${sql.join(EVENT_COLUMNS.map((c) => sql.ref(`e.${c}`)))}${
      checkpoints ? sql`, e.transaction_id::text as transaction_id, e.transaction_id as tx_order` : sql``
    }
      from maqet_events e
     where ${sql.join(conditions, sql` and `)}
     order by e.transaction_id, e.global_position
     ${options.limit === undefined ? sql`` : sql`limit ${options.limit}`}`;
}

/**
 * Rebuilds a {@link StoredEvent} from a row, converting `bigint` strings to numbers.
 *
 * @example
 * ```ts
 * const events = rows.map(toStoredEvent);
 * ```
 */
export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.event_id,
    streamId: row.stream_id,
    streamVersion: toNumber(row.stream_version),
    globalPosition: toNumber(row.global_position),
    type: row.type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata as StoredEvent["metadata"],
    recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(row.recorded_at),
  };
}
