/**
 * 0009: many hosts on one PostgreSQL (docs/cluster.md).
 *
 * - `maqet_hosts`: one row per agent host. `lease_expires_at` is set from the DATABASE's clock
 *   (`clock_timestamp()` + the host's time to live) at each renewal, and judged against it; no
 *   host's clock is ever compared with another's. `term` rises at every join, so a renewal of an
 *   older incarnation (an agent restarted under it) renews nothing. `recorded_state` is the last
 *   host fact appended to the host's stream: an observer moves it (compare-and-set in the same
 *   transaction as the fact), so two observers never record one transition twice.
 * - `maqet_placements`: which host owns each VM, and the owner epoch, the fencing token: it rises
 *   by one at every placement change, in the same transaction as the `vm.placed` that says so.
 * - `maqet_check_epoch`: a trigger on the event insert (so inside the append's own transaction,
 *   on every dialect): an event whose metadata carries `epoch` is refused (SQLSTATE MQ409) unless
 *   that epoch is the VM's current one. It takes a share lock on the placement row, so a
 *   placement change waits for an append that decided on the old epoch to commit, and an append
 *   that waited sees the new one: no append under an old epoch commits after the change.
 * - `maqet_commands`: commands routed to the host that owns a VM (claimed with `FOR UPDATE SKIP
 *   LOCKED`, at most one active per VM; the unique partial index enforces it).
 *
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * await hosts.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

const up: readonly string[] = [
  `create table maqet_hosts (
     name              text primary key,
     labels            jsonb not null default '{}',
     memory_bytes      bigint not null default 0,
     cpus              integer not null default 0,
     term              bigint not null default 1,
     lease_ttl_ms      integer not null,
     fence_after_ms    integer not null,
     joined_at         timestamptz not null default clock_timestamp(),
     renewed_at        timestamptz not null default clock_timestamp(),
     lease_expires_at  timestamptz not null,
     draining          boolean not null default false,
     recorded_state    text not null default 'up',
     fenced_at         timestamptz,
     fence_method      text,
     left_at           timestamptz
   )`,
  `create table maqet_placements (
     stream_id  text primary key,
     vm_id      text not null,
     host       text not null,
     epoch      bigint not null,
     reason     text not null,
     placed_at  timestamptz not null default clock_timestamp()
   )`,
  "create index maqet_placements_host_idx on maqet_placements (host)",
  `create function maqet_check_epoch() returns trigger language plpgsql as $$
   declare
     v_epoch bigint;
     v_host text;
     v_want bigint := (new.metadata->>'epoch')::bigint;
   begin
     select p.epoch, p.host into v_epoch, v_host from maqet_placements p where p.stream_id = new.stream_id for share;
     if coalesce(v_epoch, 0) <> v_want then
       raise exception 'stale owner epoch % for stream % (current epoch %, owner %)',
         v_want, new.stream_id, coalesce(v_epoch, 0), coalesce(v_host, 'none')
         using errcode = 'MQ409',
               detail = json_build_object('streamId', new.stream_id, 'epoch', v_want,
                                          'currentEpoch', coalesce(v_epoch, 0), 'owner', v_host)::text;
     end if;
     return new;
   end
   $$`,
  // WHEN is evaluated without calling the function: events without an epoch pay next to nothing.
  `create trigger maqet_check_epoch before insert on maqet_events
     for each row when (new.metadata ? 'epoch')
     execute function maqet_check_epoch()`,
  `create table maqet_commands (
     id           uuid primary key,
     vm_id        text not null,
     host         text not null,
     method       text not null,
     args         jsonb not null,
     caller       jsonb not null default '{}',
     idempotent   boolean not null default false,
     state        text not null default 'queued',
     claimed_by   text,
     claimed_term bigint,
     attempts     integer not null default 0,
     result       jsonb,
     error        jsonb,
     created_at   timestamptz not null default clock_timestamp(),
     claimed_at   timestamptz,
     finished_at  timestamptz
   )`,
  "create index maqet_commands_queue_idx on maqet_commands (host, created_at) where state = 'queued'",
  "create unique index maqet_commands_active_idx on maqet_commands (vm_id) where state = 'running'",
  "create index maqet_commands_open_idx on maqet_commands (host) where state in ('queued', 'running')",
  "create index maqet_commands_finished_idx on maqet_commands (finished_at) where finished_at is not null",
];

/**
 * The hosts, placements and routed-commands tables, and the epoch check.
 *
 * @example
 * ```ts
 * await hosts.up(db);
 * ```
 */
export const hosts: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const statement of [
      "drop table if exists maqet_commands",
      "drop trigger if exists maqet_check_epoch on maqet_events",
      "drop function if exists maqet_check_epoch()",
      "drop table if exists maqet_placements",
      "drop table if exists maqet_hosts",
    ]) {
      await sql.raw(statement).execute(db);
    }
  },
};
