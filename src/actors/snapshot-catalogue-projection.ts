/**
 * The snapshot catalogue as a projection (`maqet_snapshot_catalogue`, migration 0006): one row
 * per VM stream with its folded catalogue, built with `applySnapshotFact` — the same fold
 * `listSnapshots` used to run over the stream, so the two cannot disagree. `list` catches the
 * projection up inline and reads one row.
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner({ db, store, projections: [snapshotCatalogueProjection] });
 * await runner.catchUp(SNAPSHOT_CATALOGUE_PROJECTION);
 * const catalogue = await readSnapshotCatalogue(db, "vm-0b5c…");
 * ```
 */
import { type Kysely, sql } from "kysely";
import type { StoredEvent } from "../events/envelope.ts";
import type { Projection } from "../events/projections/projection.ts";
import {
  applySnapshotFact,
  type CatalogueEntry,
  emptyCatalogue,
  type SnapshotCatalogue,
} from "./snapshot-catalogue.ts";

/** The projection's name (its checkpoint row). */
export const SNAPSHOT_CATALOGUE_PROJECTION = "snapshot-catalogue";

/** Raise when `applySnapshotFact` (or the row layout) changes what a row holds: rebuilds from 0. */
export const SNAPSHOT_CATALOGUE_PROJECTION_VERSION = 1;

// biome-ignore lint/suspicious/noExplicitAny: the table is typed by the SQL of migration 0006
type Db = Kysely<any>;

interface CatalogueRow {
  stream_id: string;
  drives: unknown;
  last_start_version: number;
  version: number;
}

const HANDLED = /^(snapshot\.|vm\.started$|qmp\.command-executed$)/;

/**
 * The `snapshot-catalogue` projection over the `vm` category.
 *
 * @example
 * ```ts
 * await runner.rebuild(snapshotCatalogueProjection.name);
 * ```
 */
export const snapshotCatalogueProjection: Projection = {
  name: SNAPSHOT_CATALOGUE_PROJECTION,
  version: SNAPSHOT_CATALOGUE_PROJECTION_VERSION,
  category: "vm",
  handles: (type) => HANDLED.test(type),
  async apply(trx: Db, events) {
    const byStream = new Map<string, StoredEvent[]>();
    for (const event of events) {
      const list = byStream.get(event.streamId);
      if (list) list.push(event);
      else byStream.set(event.streamId, [event]);
    }
    const { rows } = await sql<CatalogueRow>`
      select stream_id, drives, last_start_version, version from maqet_snapshot_catalogue
       where stream_id = any(${[...byStream.keys()]}::text[])`.execute(trx);
    const current = new Map(rows.map((row) => [row.stream_id, decode(row)]));
    for (const [streamId, streamEvents] of byStream) {
      const catalogue = current.get(streamId) ?? emptyCatalogue();
      for (const event of streamEvents) applySnapshotFact(catalogue, event);
      await sql`
        insert into maqet_snapshot_catalogue (stream_id, drives, last_start_version, version, updated_at)
        values (${streamId}, ${JSON.stringify([...catalogue.drives.values()])}::jsonb,
                ${catalogue.lastStartVersion}, ${catalogue.version}, now())
        on conflict (stream_id) do update
          set drives = excluded.drives, last_start_version = excluded.last_start_version,
              version = excluded.version, updated_at = excluded.updated_at`.execute(trx);
    }
  },
  async reset(trx: Db) {
    await sql`delete from maqet_snapshot_catalogue`.execute(trx);
  },
};

/**
 * A VM's catalogue as the projection last built it (empty when it has no row yet). Catch the
 * projection up first for an answer that includes the latest events.
 *
 * @example
 * ```ts
 * await runner.catchUp(SNAPSHOT_CATALOGUE_PROJECTION);
 * const catalogue = await readSnapshotCatalogue(db, streamId);
 * ```
 */
export async function readSnapshotCatalogue(db: Db, streamId: string): Promise<SnapshotCatalogue> {
  const { rows } = await sql<CatalogueRow>`
    select stream_id, drives, last_start_version, version from maqet_snapshot_catalogue
     where stream_id = ${streamId}`.execute(db);
  return rows[0] ? decode(rows[0]) : emptyCatalogue();
}

function decode(row: CatalogueRow): SnapshotCatalogue {
  const drives = (typeof row.drives === "string" ? JSON.parse(row.drives) : row.drives) as CatalogueEntry[];
  return {
    drives: new Map(drives.map((d) => [d.drive, d])),
    lastStartVersion: Number(row.last_start_version),
    version: Number(row.version),
  };
}
