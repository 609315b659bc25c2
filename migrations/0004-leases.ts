/**
 * 0004: VM leases — which process drives which VM. One row per VM while a process holds it.
 * PostgreSQL 15 compatible.
 *
 * @example
 * ```ts
 * await leases.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

const up: readonly string[] = [
  // process_start tells a live holder from a reused pid (the kernel's start time of the pid);
  // renewed_at lets holders on other hosts be judged dead after the lease's time to live.
  `create table maqet_leases (
     vm_id          text primary key,
     host           text not null,
     pid            integer not null,
     process_start  text not null,
     command        text not null default '',
     acquired_at    timestamptz not null default now(),
     renewed_at     timestamptz not null default now(),
     stream_version bigint not null
   )`,
];

/**
 * The leases table.
 *
 * @example
 * ```ts
 * await leases.up(db);
 * ```
 */
export const leases: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop table if exists maqet_leases").execute(db);
  },
};
