/**
 * 0007: a leaner append. Four changes, each measured (docs/benchmarks.md, "Append cost"):
 *
 * 1. The duplicate-id check is one `exists (… event_id = any(ids))` probe of the `event_id`
 *    index, and the function runs with `enable_seqscan = off`. 0002 joined the stored rows to
 *    the batch; PL/pgSQL caches a session's plans, and a plan made while the table was small or
 *    its statistics stale (a sequential scan, or a hash join over the whole table) stayed in use
 *    as the table grew until the next ANALYZE: every append then read the whole events table
 *    (single appends fell from ~2 000/s to ~300/s within 5 000 events; even a probe of one id,
 *    planned right after an ANALYZE of a 100-row table, cost 3 ms per append at 8 000 rows).
 *    With sequential scans off, the only plans left use the index.
 * 2. The function returns only what the caller does not already have: outcome, global position,
 *    stream version, recorded_at and transaction id per appended event, or ONE `duplicate` row
 *    when an id is already stored (the caller then reads those rows itself, see
 *    src/events/append-to-stream.ts). Sending each event's data and metadata back cost a third
 *    of a single append.
 * 3. `pg_notify` only when the caller asks (`p_notify`). A transaction that notifies takes a
 *    database-wide lock at commit and holds it through its WAL flush, so every notifying writer
 *    waited for the others: 8 writers on distinct streams ran at 0.2x of 8 plain inserting
 *    clients. The store on a server notifies after commit instead, from a statement of its own,
 *    coalesced (src/events/commit-notifier.ts); a notify-only transaction commits without
 *    waiting for a flush. PGlite (one session, nothing to wait for) still notifies in the append.
 * 4. The foreign key from `maqet_events.stream_id` to `maqet_streams` is dropped. Its check ran
 *    once per inserted row (a `select … for key share` on the stream row) although the append
 *    function, the only writer of `maqet_events`, upserts or updates that very row first in the
 *    same statement; on a 100-event append that was 100 redundant lookups.
 *
 * Unchanged: the expected version is decided on the locked stream row before any position is
 * drawn (a loser and a recognised retry burn nothing), atomic.
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * await leanAppend.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

const up: readonly string[] = [
  "alter table maqet_events drop constraint if exists maqet_events_stream_id_fkey",
  // The return type changes, so the function is dropped and created again (same transaction).
  "drop function if exists maqet_append(text, jsonb, text, bigint)",
  `create function maqet_append(p_stream_id text, p_events jsonb, p_mode text, p_expected bigint, p_notify boolean)
   returns table (outcome text, global_position bigint, stream_version bigint, recorded_at timestamptz,
                  transaction_id text)
   language plpgsql
   -- Plans are cached per session; one made while a table was small (or its statistics stale) may
   -- be a sequential scan, and would stay in use as the table grows. Every lookup here has an index.
   set enable_seqscan = off
   as $$
   #variable_conflict use_column
   declare
     v_count integer := jsonb_array_length(p_events);
     v_first bigint;
   begin
     -- 1. Any id already stored: report it and write nothing (the caller reads the stored rows).
     if exists (select from maqet_events e
                 where e.event_id = any (array(select (x->>'id')::uuid from jsonb_array_elements(p_events) as x))) then
       return query select 'duplicate'::text, null::bigint, null::bigint, null::timestamptz, null::text;
       return;
     end if;
     -- 2. The expected version, decided on the stream row (created by any/no_stream), locked to commit.
     if p_mode = 'any' or p_mode = 'no_stream' then
       insert into maqet_streams as s (stream_id, version) values (p_stream_id, v_count - 1)
       on conflict (stream_id) do update set version = s.version + v_count, updated_at = now()
          where p_mode = 'any'
       returning s.version - v_count + 1 into v_first;
     else
       update maqet_streams as s set version = s.version + v_count, updated_at = now()
        where s.stream_id = p_stream_id and (p_mode = 'stream_exists' or s.version = p_expected)
       returning s.version - v_count + 1 into v_first;
     end if;
     if v_first is null then
       return; -- the expected version did not hold: nothing written, no position drawn
     end if;
     -- 3. The events: positions drawn only now, behind the stream row's lock.
     if p_notify then
       perform pg_notify('maqet_events', p_stream_id); -- delivered at commit
     end if;
     return query
       with ins as (
         insert into maqet_events (event_id, stream_id, stream_version, type, schema_version, data, metadata)
         select (b.x->>'id')::uuid, p_stream_id, v_first + b.n - 1, b.x->>'type', (b.x->>'schemaVersion')::integer,
                coalesce(b.x->'data', 'null'::jsonb), b.x->'metadata'
           from jsonb_array_elements(p_events) with ordinality as b(x, n)
          order by b.n
         returning global_position, stream_version, recorded_at, transaction_id)
       select 'appended'::text, i.global_position, i.stream_version, i.recorded_at, i.transaction_id::text
         from ins i;
   end
   $$`,
];

/**
 * The lean append function; `down` restores the foreign key (not the 0002 function: run 0002's
 * `up` again for that).
 *
 * @example
 * ```ts
 * await leanAppend.up(db);
 * ```
 */
export const leanAppend: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop function if exists maqet_append(text, jsonb, text, bigint, boolean)").execute(db);
    await sql
      .raw(
        "alter table maqet_events add constraint maqet_events_stream_id_fkey foreign key (stream_id) references maqet_streams (stream_id)",
      )
      .execute(db);
  },
};
