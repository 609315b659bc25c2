/**
 * 0006: the snapshot catalogue — one row per VM stream holding that VM's folded snapshot
 * catalogue (src/actors/snapshot-catalogue.ts): per drive, the tags last seen, the image's stamp
 * and whether the entry went stale; and the stream version of the VM's last start. Written only
 * by the `snapshot-catalogue` projection (src/actors/snapshot-catalogue-projection.ts), in the
 * same transaction as its checkpoint; rebuildable from position 0.
 *
 * PostgreSQL 15 compatible. Released migrations are append-only.
 *
 * @example
 * ```ts
 * import { snapshotCatalogue } from "../migrations/0006-snapshot-catalogue.ts";
 * await snapshotCatalogue.up(db); // normally run through migrateToLatest(db)
 * ```
 */
import { type Kysely, type Migration, sql } from "kysely";

/** One statement per element: PGlite's extended protocol runs one statement a call. */
const up: readonly string[] = [
  `create table maqet_snapshot_catalogue (
     stream_id           text primary key,
     drives              jsonb not null,
     last_start_version  integer not null,
     version             integer not null,
     updated_at          timestamptz not null default now()
   )`,
];

/**
 * The snapshot catalogue table.
 *
 * @example
 * ```ts
 * await snapshotCatalogue.up(db);
 * ```
 */
export const snapshotCatalogue: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of up) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql.raw("drop table if exists maqet_snapshot_catalogue").execute(db);
  },
};
