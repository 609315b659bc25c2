/**
 * 0002: the append as one server-side function, `maqet_append(stream, events, mode, expected)`.
 *
 * Why a function: the append is one client statement either way, but a multi-CTE statement is
 * parsed and planned on every call (about 1 ms, several times the execution); PL/pgSQL caches
 * its statements' plans per session, so a call costs little more than its work. The logic is
 * the one src/events/append-to-stream.ts documents:
 * 1. events whose ids are already stored come back as `duplicate` rows, and nothing is written
 *    (the caller decides: a faithful retry, or EVENT_ID_CONFLICT);
 * 2. otherwise ONE statement decides the expected version on the stream row: an upsert (modes
 *    `any` and `no_stream`, which may create the stream) or an update (`stream_exists`,
 *    `exact`), with the condition in its WHERE clause, evaluated by PostgreSQL on the newest
 *    committed row version under the row lock (held to commit). No row: a conflict, nothing
 *    written, no position drawn;
 * 3. the events are inserted (positions drawn only now, behind the lock) and come back as
 *    `appended` rows; `pg_notify('maqet_events', stream)` is delivered at commit.
 *
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * await appendFunction.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

const up: readonly string[] = [
  `create function maqet_append(p_stream_id text, p_events jsonb, p_mode text, p_expected bigint)
   returns table (outcome text, global_position bigint, event_id uuid, stream_id text, stream_version bigint,
                  type text, schema_version integer, data jsonb, metadata jsonb, recorded_at timestamptz,
                  transaction_id text, same boolean, n bigint)
   language plpgsql as $$
   #variable_conflict use_column
   declare
     v_count bigint := jsonb_array_length(p_events);
     v_ids uuid[];
     v_first bigint;
   begin
     -- "= any(array)" probes the event_id index; a join to jsonb_array_elements would be planned
     -- once for the session (generic plan) as a hash join over the whole table.
     v_ids := array(select (x->>'id')::uuid from jsonb_array_elements(p_events) as x);
     return query
       select 'duplicate'::text, e.global_position, e.event_id, e.stream_id, e.stream_version, e.type,
              e.schema_version, e.data, e.metadata, e.recorded_at, e.transaction_id::text,
              (e.stream_id = p_stream_id and e.type = b.x->>'type'
                and e.schema_version = (b.x->>'schemaVersion')::integer
                and e.data = coalesce(b.x->'data', 'null'::jsonb)),
              b.n - 1
         from maqet_events e
         join jsonb_array_elements(p_events) with ordinality as b(x, n) on (b.x->>'id')::uuid = e.event_id
        where e.event_id = any(v_ids);
     if found then
       return;
     end if;
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
     perform pg_notify('maqet_events', p_stream_id);
     return query
       with ins as (
         insert into maqet_events (event_id, stream_id, stream_version, type, schema_version, data, metadata)
         select (b.x->>'id')::uuid, p_stream_id, v_first + b.n - 1, b.x->>'type', (b.x->>'schemaVersion')::integer,
                coalesce(b.x->'data', 'null'::jsonb), b.x->'metadata'
           from jsonb_array_elements(p_events) with ordinality as b(x, n)
          order by b.n
         returning *)
       select 'appended'::text, i.global_position, i.event_id, i.stream_id, i.stream_version, i.type,
              i.schema_version, i.data, i.metadata, i.recorded_at, i.transaction_id::text, null::boolean,
              i.stream_version
         from ins i;
   end
   $$`,
];

/**
 * The append function.
 *
 * @example
 * ```ts
 * await appendFunction.up(db);
 * ```
 */
export const appendFunction: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop function if exists maqet_append(text, jsonb, text, bigint)").execute(db);
  },
};
