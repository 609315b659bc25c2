/**
 * migrateToLatest's shortcut (src/events/migrate.ts): a database that records exactly this
 * build's migrations is read with two plain statements and left alone; anything else goes to
 * kysely's Migrator as before. Run once per dialect on a migrated database of its own per test.
 */
import { type Kysely, sql } from "kysely";
import { describe, expect, it } from "vitest";
import { migrations } from "../../migrations/index.ts";
import { MIGRATION_TABLE, migrateToLatest } from "../../src/events/migrate.ts";
import type { Database } from "../../src/events/schema.ts";
import { failure } from "../support/failure.ts";
import { openPerTest, testDatabases } from "../support/test-databases.ts";

/** `db` with every statement it compiles (raw SQL included) recorded in `seen`. */
function recording(db: Kysely<Database>, seen: string[]): Kysely<Database> {
  return db.withPlugin({
    transformQuery: (args) => {
      seen.push(args.node.kind);
      return args.node;
    },
    transformResult: async (args) => args.result,
  });
}

describe.each(testDatabases())("migrateToLatest on $name", (dialect) => {
  const open = openPerTest(dialect);
  const last = migrations.at(-1)!.name;

  it("reads two statements and applies nothing when every migration is recorded", async () => {
    const { t } = await open();
    const seen: string[] = [];
    expect(await migrateToLatest(recording(t.db, seen))).toEqual([]);
    expect(seen).toHaveLength(2);
  });

  it("hands a recorded migration this build does not know to the Migrator, which refuses it", async () => {
    const { t } = await open();
    await sql`insert into ${sql.table(MIGRATION_TABLE)} (name, timestamp) values ('9999-from-a-newer-maqet', '2026-12-07T00:00:00.000Z')`.execute(
      t.db,
    );
    const error = await failure(migrateToLatest(t.db));
    expect(error).toBeMaqetError("STORE_ERROR");
    expect((error as Error).message).toContain("9999-from-a-newer-maqet");
  });

  it("hands a migration that is not recorded to the Migrator, which runs it", async () => {
    const { t } = await open();
    await sql`delete from ${sql.table(MIGRATION_TABLE)} where name = ${last}`.execute(t.db);
    // The objects are there (only the record was removed), so running it again fails: proof the
    // Migrator ran it rather than the shortcut calling the schema current.
    const error = await failure(migrateToLatest(t.db));
    expect(error).toBeMaqetError("STORE_ERROR", { migration: last });
  });
});
