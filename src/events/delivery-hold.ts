/**
 * What holds delivery back: readers only return events written by transactions older than the
 * oldest one still running anywhere in the cluster (transaction ids are cluster-wide, so another
 * database's or another application's transaction counts too). This query names that
 * transaction: its session (or prepared transaction), how long it has been open, what it ran.
 *
 * Visibility: PostgreSQL shows another role's `state`, `query` and `backend_xid` only to
 * superusers and members of `pg_read_all_stats`; for others the holder may come back null while
 * `heldEvents` is not 0. On PGlite (one session) nothing can hold delivery back.
 *
 * @example
 * ```ts
 * const hold = await readDeliveryHold(db);
 * if (hold.holder) console.log(`held by pid ${hold.holder.pid} for ${hold.holder.ageMs} ms`);
 * ```
 */
import { type Kysely, sql } from "kysely";
import type { DeliveryHold } from "./event-store.ts";
import { type Database, toNumber } from "./schema.ts";

interface HoldRow {
  watermark: string | null;
  held_events: string | number;
  kind: "session" | "prepared" | null;
  pid: number | null;
  xid: string | null;
  state: string | null;
  query: string | null;
  since: Date | string | null;
  age_ms: string | number | null;
  database: string | null;
  username: string | null;
  application_name: string | null;
}

/**
 * The read watermark, how many committed events wait behind it, and the oldest open transaction
 * holding an id (sessions and prepared transactions), in one statement.
 *
 * @example
 * ```ts
 * const { watermark, heldEvents, holder } = await readDeliveryHold(db);
 * ```
 */
export async function readDeliveryHold(db: Kysely<Database>): Promise<DeliveryHold> {
  const { rows } = await sql<HoldRow>`
    with snapshot as (
      -- xmax when nothing runs: xmin = xmax means no transaction is in progress.
      select nullif(pg_snapshot_xmin(s), pg_snapshot_xmax(s)) as xmin from pg_current_snapshot() as s
    ),
    holders as (
      select 'session' as kind, a.pid, a.backend_xid as xid, a.state, a.query, a.xact_start as since,
             a.datname::text as database, a.usename::text as username, a.application_name::text as application_name
        from pg_stat_activity a
       where a.backend_xid is not null and a.pid <> pg_backend_pid()
      union all
      select 'prepared', null, p.transaction, p.gid, null, p.prepared, p.database::text, p.owner::text, null
        from pg_prepared_xacts p
    ),
    oldest as (
      select * from holders order by age(xid) desc limit 1
    )
    select s.xmin::text as watermark,
           (select count(*) from maqet_events e where e.transaction_id >= s.xmin) as held_events,
           o.kind, o.pid, o.xid::text as xid, o.state, o.query, o.since,
           (extract(epoch from (clock_timestamp() - o.since)) * 1000)::bigint as age_ms,
           o.database, o.username, o.application_name
      from snapshot s left join oldest o on true`.execute(db);
  const row = rows[0];
  if (row === undefined) return { watermark: null, heldEvents: 0, holder: null };
  return {
    watermark: row.watermark,
    heldEvents: toNumber(row.held_events ?? 0),
    holder:
      row.kind === null || row.xid === null
        ? null
        : {
            kind: row.kind,
            pid: row.pid,
            xid: row.xid,
            state: row.state,
            query: row.query,
            since: row.since === null ? null : row.since instanceof Date ? row.since : new Date(row.since),
            ageMs: row.age_ms === null ? null : toNumber(row.age_ms),
            database: row.database,
            user: row.username,
            applicationName: row.application_name,
          },
  };
}
