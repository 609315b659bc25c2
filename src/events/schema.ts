/**
 * Kysely table types for the event store (migrations/0001-initial.ts).
 *
 * `bigint` columns arrive as strings from `pg` and as numbers from PGlite; {@link toNumber}
 * converts either. `xid8` arrives as a string from both and never leaves SQL.
 *
 * @example
 * ```ts
 * const db = new Kysely<Database>({ dialect });
 * const rows = await db.selectFrom("maqet_events").select(["global_position", "type"]).execute();
 * ```
 */
import type { ColumnType, Generated, GeneratedAlways } from "kysely";

/** A `bigint` column: read as string (pg) or number (PGlite), written as number or string. */
export type Int8 = ColumnType<string | number | bigint, number | string | bigint, number | string | bigint>;

/** A `jsonb` column: parsed on read, written as JSON text. */
export type Jsonb<T = unknown> = ColumnType<T, string, string>;

export interface MaqetStreamsTable {
  stream_id: string;
  /** Generated: the text before the first dash, as `categoryOf`. */
  category: GeneratedAlways<string>;
  /** Last event's 0-based version. */
  version: ColumnType<string | number | bigint, number | string | bigint | undefined, number | string | bigint>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface MaqetEventsTable {
  global_position: GeneratedAlways<string | number | bigint>;
  event_id: string;
  stream_id: string;
  category: GeneratedAlways<string>;
  stream_version: Int8;
  type: string;
  schema_version: number;
  data: Jsonb;
  metadata: Jsonb<Record<string, unknown>>;
  recorded_at: Generated<Date>;
  /** `xid8` of the writing transaction (defaults to `pg_current_xact_id()`). */
  transaction_id: Generated<string>;
}

/**
 * The event store's tables, as Kysely sees them.
 *
 * @example
 * ```ts
 * function store(db: Kysely<Database>) { return new PostgresEventStore(db); }
 * ```
 */
export interface Database {
  maqet_streams: MaqetStreamsTable;
  maqet_events: MaqetEventsTable;
}

/**
 * Converts a `bigint` column value (string from pg, number or bigint from PGlite) to a number.
 *
 * @example
 * ```ts
 * toNumber("42"); // 42
 * ```
 */
export function toNumber(value: string | number | bigint): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${String(value)}`);
  return n;
}

/**
 * Starts a statement worth preparing: a fixed text run often (the append). A server driver may
 * run such statements as named prepared statements, parsed and planned once per connection
 * (src/adapters/pg-database.ts does); to any other driver it is a comment.
 *
 * @example
 * ```ts
 * await sql`${sql.raw(PREPARE_MARK)} select * from maqet_append(${id}, ...)`.execute(db);
 * ```
 */
export const PREPARE_MARK = "/* maqet:prepare */";
