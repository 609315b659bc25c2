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
import { type Kysely, type Migration, Migrator, sql } from "kysely";
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
  if (await allApplied(db)) return [];
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

/**
 * Whether the database records exactly the migrations this build has, each applied: then there is
 * nothing to do and kysely's Migrator is skipped. The Migrator checks that its tables exist with
 * a catalogue introspection query, twice, before it even locks: on the embedded store those are
 * the most expensive statements a CLI call sends (0.2–0.5 s each at a cold start), and every open
 * paid them. Two plain reads instead. Anything else (no table yet, a migration missing, a name this
 * build does not know: a newer maqet migrated it, which the Migrator reports) goes to the Migrator.
 * A migration another process is applying right now is not committed, so it reads as missing here
 * and the Migrator waits for that process under its lock, as before.
 */
// biome-ignore lint/suspicious/noExplicitAny: as migrateToLatest
async function allApplied(db: Kysely<any>): Promise<boolean> {
  const table = await sql<{ present: boolean }>`select to_regclass(${MIGRATION_TABLE}) is not null as present`.execute(
    db,
  );
  if (table.rows[0]?.present !== true) return false;
  const recorded = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(db);
  const names = new Set(recorded.rows.map((r) => r.name));
  return names.size === migrations.length && migrations.every((m) => names.has(m.name));
}
