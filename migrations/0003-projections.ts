/**
 * 0003: projections — their checkpoints, the VM list read model, and the VM name claims.
 *
 * - `maqet_projection_checkpoints`: one row per projection: where it is in the store's read order
 *   (`position` and that event's `transaction_id`: the cursor `readAll` resumes after), which
 *   version of the projection's code built its rows, and why it stalled, if it did. The runner
 *   updates it in the same transaction as the projection's rows (src/events/projections/).
 * - `maqet_vms`: the VM list (`ls`, `status`), one row per VM stream, written only by the `vms`
 *   projection. `view` is the whole folded `VmView` but its config (what the fold continues
 *   from; `config` holds the config); the other columns are the same view's fields, for SQL and
 *   for people reading the table.
 * - `maqet_vm_names`: which VM holds each name. Maintained by a trigger in the append's own
 *   transaction (an inline projection), so two writers racing to define one name cannot both
 *   commit: the second append fails on the primary key. A read model that lags cannot give that
 *   guarantee, which is why `maqet_vms.name` is indexed but not unique (a unique index there could
 *   only stall the projection on a committed event).
 *
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * import { projections } from "../migrations/0003-projections.ts";
 * await projections.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

/** One statement per element: PGlite's extended protocol runs one statement a call. */
const up: readonly string[] = [
  `create table maqet_projection_checkpoints (
     name            text primary key,
     position        bigint not null default 0,
     transaction_id  xid8 not null default '0',
     version         integer not null default 0,
     events_applied  bigint not null default 0,
     status          text not null default 'running',
     error           text,
     error_position  bigint,
     error_at        timestamptz,
     rebuilt_at      timestamptz,
     updated_at      timestamptz not null default now(),
     constraint maqet_projection_checkpoints_status_check check (status in ('running', 'stalled'))
   )`,
  // Keyed by stream: a read model accepts every committed fact, so nothing here may be unique
  // that the events do not guarantee. `first_position` (the event that created the row) gives
  // `ls` its order: definition order.
  `create table maqet_vms (
     stream_id      text primary key,
     vm_id          text not null,
     name           text not null,
     status         text not null,
     detail         text,
     pid            integer,
     qmp_socket     text,
     runtime_dir    text,
     qemu_version   text,
     accel          text,
     accel_in_use   text,
     config         jsonb not null,
     config_path    text,
     version        bigint not null,
     first_position bigint not null,
     last_position  bigint not null,
     defined_at     timestamptz not null,
     started_at     timestamptz,
     updated_at     timestamptz not null,
     view           jsonb not null
   )`,
  // The one secondary index: lookups by name. A VM id is found by its stream id (`vm-<id>`, the
  // primary key), and `ls` sorts the rows it returns; every further index would be one more
  // write per row a rebuild rewrites.
  `create index maqet_vms_name_idx on maqet_vms (name) where status <> 'removed'`,
  `create table maqet_vm_names (
     name        text primary key,
     vm_id       text not null,
     stream_id   text not null unique,
     claimed_at  bigint not null
   )`,
  // Mirrors the fold (src/actors/vm-view.ts) for names only: the last vm.defined of a stream
  // holds its name until a vm.removed. A second live VM with the same name is a unique violation
  // that rolls the whole append back.
  `create function maqet_vm_names_claim() returns trigger language plpgsql as $$
   begin
     if new.type = 'vm.defined' then
       delete from maqet_vm_names where stream_id = new.stream_id;
       if new.data->>'name' is not null then
         insert into maqet_vm_names (name, vm_id, stream_id, claimed_at)
         values (new.data->>'name', coalesce(new.data->>'vmId', new.stream_id), new.stream_id, new.global_position);
       end if;
     elsif new.type = 'vm.removed' then
       delete from maqet_vm_names where stream_id = new.stream_id;
     end if;
     return null;
   end
   $$`,
  // WHEN is evaluated without calling the function: other events pay next to nothing.
  `create trigger maqet_vm_names_claim after insert on maqet_events
     for each row when (new.category = 'vm' and new.type in ('vm.defined', 'vm.removed'))
     execute function maqet_vm_names_claim()`,
  // Claims for VMs defined before this migration; should history hold two live VMs with one
  // name (possible before names were enforced), the first defined keeps it.
  `insert into maqet_vm_names (name, vm_id, stream_id, claimed_at)
   select last.data->>'name', coalesce(last.data->>'vmId', last.stream_id), last.stream_id, last.global_position
     from (select distinct on (stream_id) stream_id, type, data, global_position
             from maqet_events
            where category = 'vm' and type in ('vm.defined', 'vm.removed')
            order by stream_id, stream_version desc) last
    where last.type = 'vm.defined' and last.data->>'name' is not null
    order by last.global_position
   on conflict do nothing`,
];

/**
 * Projection checkpoints, the VM list and VM name claims.
 *
 * @example
 * ```ts
 * await projections.up(db);
 * ```
 */
export const projections: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop trigger if exists maqet_vm_names_claim on maqet_events").execute(db);
    await sql.raw("drop function if exists maqet_vm_names_claim()").execute(db);
    await sql.raw("drop table if exists maqet_vm_names").execute(db);
    await sql.raw("drop table if exists maqet_vms").execute(db);
    await sql.raw("drop table if exists maqet_projection_checkpoints").execute(db);
  },
};
