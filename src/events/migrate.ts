/**
 * Brings a database to the newest schema with kysely's Migrator over the static migration list.
 *
 * Safe to run on every open and from several processes at once: kysely runs the whole batch in
 * one transaction under a Postgres advisory lock, so a failure leaves the schema as it was.
 *
 * @example
 * ```ts
 * const applied = await migrateToLatest(db); // ["0001-initial"] the first time, [] afterwards
 * ```
 */
import { type Kysely, type Migration, Migrator } from "kysely";
import { migrations } from "../../migrations/index.ts";
import { MaqetError } from "../errors/maqet-error.ts";

/** Where kysely records applied migrations; fixed forever once released. */
export const MIGRATION_TABLE = "maqet_migrations";
/** The row kysely locks while migrating. */
export const MIGRATION_LOCK_TABLE = "maqet_migrations_lock";

/**
 * Applies every migration not yet applied, in order, and returns the names it applied.
 * Throws `STORE_ERROR` (with the failing migration's name and the database error as `cause`).
 *
 * @example
 * ```ts
 * try { await migrateToLatest(db); }
 * catch (e) { if (isMaqetError(e, "STORE_ERROR")) console.error(e.message); }
 * ```
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed tables exist (kysely's Migrator takes Kysely<any>)
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: {
      async getMigrations(): Promise<Record<string, Migration>> {
        return Object.fromEntries(migrations.map((m) => [m.name, m.migration]));
      },
    },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
    // Byte order, not locale order: names are zero-padded ASCII.
    nameComparator: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    // 0002 landed after 0003+ had been applied in some databases; a migration that is missing
    // below the last applied one runs then (each one is independent of the later ones).
    allowUnorderedMigrations: true,
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r) => r.status === "Error")?.migrationName;
    const what = failed === undefined ? "preparing the migrations" : `migration '${failed}'`;
    const reason = error instanceof Error ? error.message : String(error);
    throw new MaqetError(
      "STORE_ERROR",
      `Database migration failed in ${what}: ${reason}. The whole run was rolled back; ` +
        "check that the database user may create tables, then open the store again.",
      { cause: error, details: { migration: failed } },
    );
  }
  return names(results, "Success");
}

function names(results: ReadonlyArray<{ migrationName: string; status: string }>, status: string): string[] {
  return results.filter((r) => r.status === status).map((r) => r.migrationName);
}
