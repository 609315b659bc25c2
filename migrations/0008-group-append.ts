/**
 * 0008: group commit. `maqet_append_group(appends, notify)` runs several appends (to distinct or
 * equal streams) in ONE transaction, so they share one commit and one WAL flush, while each keeps
 * its own expected-version decision and its own outcome.
 *
 * - Each append is `maqet_append` (0007) run in a PL/pgSQL block with an exception handler, i.e.
 *   a subtransaction: an error in one (a unique violation on an event id written concurrently, a
 *   VM name already claimed, a deadlock) rolls back that append alone and is reported as one
 *   `error` row carrying the SQLSTATE; the others still commit. A conflict (expected version did
 *   not hold) writes nothing and is reported as one `conflict` row; ids already stored as one
 *   `duplicate` row. The caller decides what each outcome means, as for a single append.
 * - Appends run in the order given: the store sends them sorted by stream id (stable), so two
 *   groups lock stream rows in one order and cannot deadlock on them; two appends to one stream
 *   in a group decide one after the other, the second on what the first wrote.
 * - Outcome rows are gathered in arrays and returned only once an append's block has finished:
 *   rows returned from inside a block that then fails could not be taken back.
 *
 *
 * And a leaner row: the category index `(category, transaction_id, global_position)` is dropped.
 * Measured (bench/row-cost.mjs, durable, after a checkpoint): it wrote about 220 WAL bytes and
 * 4 µs of server CPU per event (13% and 10% of a time-ordered row), for reads that the
 * `(transaction_id, global_position)` index serves too: a category-filtered read walks that
 * index in read order and filters (the VM list and the audit read almost every event anyway).
 * docs/events.md, "Indexes", says what each remaining index is for.
 *
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * await groupAppend.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

const up: readonly string[] = [
  "drop index if exists maqet_events_category_idx",
  `create function maqet_append_group(p_appends jsonb, p_notify boolean)
   returns table (idx integer, outcome text, global_position bigint, stream_version bigint,
                  recorded_at timestamptz, transaction_id text, error_state text)
   language plpgsql
   set enable_seqscan = off
   as $$
   #variable_conflict use_column
   declare
     v_append jsonb;
     v_idx integer := -1;
     v_outcome text[];
     v_position bigint[];
     v_version bigint[];
     v_recorded timestamptz[];
     v_transaction text[];
     v_state text;
   begin
     for v_append in select value from jsonb_array_elements(p_appends) loop
       v_idx := v_idx + 1;
       v_state := null;
       begin
         select array_agg(r.outcome), array_agg(r.global_position), array_agg(r.stream_version),
                array_agg(r.recorded_at), array_agg(r.transaction_id)
           into v_outcome, v_position, v_version, v_recorded, v_transaction
           from maqet_append(v_append->>'s', v_append->'e', v_append->>'m', (v_append->>'x')::bigint, p_notify) r;
       exception when others then
         v_state := sqlstate;
       end;
       if v_state is not null then
         return query select v_idx, 'error'::text, null::bigint, null::bigint, null::timestamptz, null::text, v_state;
       elsif v_outcome is null then
         return query select v_idx, 'conflict'::text, null::bigint, null::bigint, null::timestamptz, null::text, null::text;
       else
         return query select v_idx, u.o, u.p, u.v, u.r, u.t, null::text
                        from unnest(v_outcome, v_position, v_version, v_recorded, v_transaction) as u(o, p, v, r, t);
       end if;
     end loop;
   end
   $$`,
];

/**
 * The group append function.
 *
 * @example
 * ```ts
 * await groupAppend.up(db);
 * ```
 */
export const groupAppend: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop function if exists maqet_append_group(jsonb, boolean)").execute(db);
    await sql
      .raw("create index maqet_events_category_idx on maqet_events (category, transaction_id, global_position)")
      .execute(db);
  },
};
