/**
 * 0005: the audit trail — one row per event, in the store's read order, each chained to the
 * previous one by a SHA-256 hash (src/events/audit-entry.ts). Written only by the `audit`
 * projection (src/events/projections/audit-projection.ts), in the same transaction as its
 * checkpoint; rebuildable from position 0 with identical rows.
 *
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * import { audit } from "../migrations/0005-audit.ts";
 * await audit.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

/** One statement per element: PGlite's extended protocol runs one statement a call. */
const up: readonly string[] = [
  `create table maqet_audit (
     seq             bigint primary key,
     position        bigint not null unique,
     event_id        uuid not null unique,
     at              timestamptz not null,
     stream_id       text not null,
     vm_id           text,
     vm              text,
     operation       text not null,
     parameters      jsonb not null,
     tier            text,
     rule            text,
     outcome         text not null,
     detail          text,
     actor_user      text,
     actor_uid       integer,
     actor_host      text,
     actor_pid       integer,
     correlation_id  text,
     source          text,
     prev_hash       text not null,
     hash            text not null,
     constraint maqet_audit_seq_check check (seq >= 1)
   )`,
  `create index maqet_audit_vm_idx on maqet_audit (vm_id, seq)`,
  `create index maqet_audit_vm_name_idx on maqet_audit (vm, seq)`,
  `create index maqet_audit_at_idx on maqet_audit (at)`,
];

/**
 * The audit table.
 *
 * @example
 * ```ts
 * await audit.up(db);
 * ```
 */
export const audit: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop table if exists maqet_audit").execute(db);
  },
};
