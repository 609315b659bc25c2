/**
 * The two dialects an int test runs against, each as a fresh migrated database: a PGlite clone of
 * the migrated template, and a new database on this run's PostgreSQL server (with its URL, so a
 * test can open more connections or start other processes on it).
 *
 * @example
 * ```ts
 * describe.each(testDatabases())("on $name", ({ skip, open }) => {
 *   let t: TestDatabase;
 *   beforeAll(async () => { t = await open(); });
 *   afterAll(() => t.close());
 * });
 * ```
 */
import type { Kysely } from "kysely";
import { afterAll, inject } from "vitest";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { migrateToLatest } from "../../src/events/migrate.ts";
import type { Database } from "../../src/events/schema.ts";
import { openTemplateClone } from "./pglite-template.ts";
import { createTestDatabase, startTestPostgres, type TestPostgres } from "./postgres-cluster.ts";

export interface TestDatabase {
  db: Kysely<Database>;
  /** The server database's URL; undefined for PGlite (one in-process connection). */
  url?: string;
  close(): Promise<void>;
}

export interface TestDialect {
  name: "pglite" | "pg";
  /** Why this dialect is skipped; empty when it runs. */
  skip: string;
  open(): Promise<TestDatabase>;
}

/**
 * Both dialects (the server one skipped, with its reason, when the run has no server).
 *
 * @example
 * ```ts
 * for (const d of testDatabases()) console.log(d.name, d.skip || "runs");
 * ```
 */
export function testDatabases(options: { ownCluster?: boolean } = {}): TestDialect[] {
  const shared = inject("databaseUrl");
  // The xid watermark is cluster-wide: a file whose assertions need the projection caught up at
  // once runs its server cases on a cluster of its own, out of reach of other files' transactions.
  const own = options.ownCluster && !process.env.MAQET_TEST_DATABASE_URL;
  let cluster: Promise<TestPostgres> | undefined;
  if (own) {
    afterAll(async () => {
      await (await cluster?.catch(() => undefined))?.stop();
    });
  }
  const baseUrl = async (): Promise<string> => (own ? (await (cluster ??= startTestPostgres())).url : shared);
  const databaseUrl = shared;
  return [
    {
      name: "pglite",
      skip: "",
      async open() {
        const clone = await openTemplateClone(inject("pgliteTemplate"));
        return { db: clone.db, close: clone.close };
      },
    },
    {
      name: "pg",
      skip: databaseUrl ? "" : inject("databaseSkipReason") || "no PostgreSQL server for this run",
      async open() {
        const testDb = await createTestDatabase(await baseUrl());
        const opened = await openPgDatabase({ url: testDb.url });
        await migrateToLatest(opened.db);
        return {
          db: opened.db,
          url: testDb.url,
          close: async () => {
            await opened.close();
            await testDb.drop();
          },
        };
      },
    },
  ];
}
