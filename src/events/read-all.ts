/**
 * Reading events across streams without ever passing one that a still-open transaction may
 * commit later (the transaction-id watermark).
 *
 * Why (xid, position) order and not position order: positions are drawn at insert time, xids at
 * a transaction's first write. A transaction Y can take its xid before X yet draw its position
 * after X; if Y commits while X is open, Y's row is below the watermark (Y < xmin = X) while X's
 * lower position is not yet visible. A position-ordered reader would return Y's row, move its
 * checkpoint past X's position and never see X's event. Ordered by (xid, position), X's row sorts
 * after Y's, so nothing is skipped. `after` stays a plain global position: the store looks up
 * that event's xid to resume from it.
 *
 * @example
 * ```ts
 * const page = await readAll(db, { after: checkpoint, limit: 500, category: "vm" });
 * checkpoint = page.at(-1)?.globalPosition ?? checkpoint;
 * ```
 */
import { type Kysely, sql } from "kysely";
import type { StoredEvent } from "./envelope.ts";
import type { ReadAllOptions } from "./event-store.ts";
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

/**
 * Events of all streams (or one category) that no open transaction can still precede, in the
 * store's read order: by transaction id, then global position. Within one stream that is version
 * order, and for a single writer it is position order.
 *
 * `after` is the global position of the last event already processed (as returned by an earlier
 * call); the read resumes right after that event. Pass 0 or nothing to start from the beginning.
 *
 * @example
 * ```ts
 * const first = await readAll(db, { limit: 100 });
 * const next = await readAll(db, { after: first.at(-1)?.globalPosition, limit: 100 });
 * ```
 */
export async function readAll(db: Kysely<Database>, options: ReadAllOptions = {}): Promise<StoredEvent[]> {
  const { after, limit, category } = options;
  let query = db
    .selectFrom("maqet_events as e")
    .select(EVENT_COLUMNS.map((c) => `e.${c}` as const))
    .where(sql<boolean>`e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())`);
  if (category !== undefined) query = query.where("e.category", "=", category);
  if (after !== undefined && after > 0) {
    // The cursor is the event at `after` (or the nearest one below, if that position was never
    // committed); both lookups are one backward primary-key probe, run once per query.
    const cursor = (column: "transaction_id" | "global_position") =>
      sql`(select c.${sql.ref(column)} from maqet_events c
            where c.global_position <= ${after}::bigint order by c.global_position desc limit 1)`;
    query = query.where(
      sql<boolean>`(e.transaction_id, e.global_position) >
        (coalesce(${cursor("transaction_id")}, '0'::xid8), coalesce(${cursor("global_position")}, 0))`,
    );
  }
  query = query.orderBy("e.transaction_id").orderBy("e.global_position");
  if (limit !== undefined) query = query.limit(limit);
  const rows = await query.execute();
  return rows.map(toStoredEvent);
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
