/**
 * 0001: the event store — one row per stream, one row per event.
 *
 * PostgreSQL 15 compatible (the embedded PGlite is 18; nothing newer than 15 is used). Released
 * migrations are append-only: fix a mistake with a new migration, never by editing this one.
 *
 * @example
 * ```ts
 * import { initial } from "../migrations/0001-initial.ts";
 * await initial.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

/** The statements of `up`, one per element: PGlite's extended protocol runs one statement a call. */
const up: readonly string[] = [
  // `version` is the last event's 0-based stream version; -1 only inside the transaction that
  // creates the stream, so a committed row always has at least one event.
  `create table maqet_streams (
     stream_id  text primary key,
     category   text generated always as (split_part(stream_id, '-', 1)) stored,
     version    bigint not null default -1,
     created_at timestamptz not null default now(),
     updated_at timestamptz not null default now()
   )`,
  `create index maqet_streams_category_idx on maqet_streams (category)`,
  // `transaction_id` is the writer's xid: readers only take rows below the snapshot's xmin, so a
  // still-open transaction can never later commit a row behind a reader's checkpoint.
  // `category` mirrors categoryOf() (the text before the first dash) so category reads use an index.
  `create table maqet_events (
     global_position bigint generated always as identity primary key,
     event_id        uuid not null unique,
     stream_id       text not null references maqet_streams (stream_id),
     category        text generated always as (split_part(stream_id, '-', 1)) stored,
     stream_version  bigint not null,
     type            text not null,
     schema_version  integer not null,
     data            jsonb not null,
     metadata        jsonb not null,
     recorded_at     timestamptz not null default now(),
     transaction_id  xid8 not null default pg_current_xact_id(),
     constraint maqet_events_stream_version_key unique (stream_id, stream_version),
     constraint maqet_events_stream_version_check check (stream_version >= 0)
   )`,
  `create index maqet_events_transaction_idx on maqet_events (transaction_id, global_position)`,
  `create index maqet_events_category_idx on maqet_events (category, transaction_id, global_position)`,
];

/**
 * The initial schema.
 *
 * @example
 * ```ts
 * await initial.up(db);
 * ```
 */
export const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop table if exists maqet_events").execute(db);
    await sql.raw("drop table if exists maqet_streams").execute(db);
  },
};
