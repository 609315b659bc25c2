/**
 * The one dialect harness of the int tests: the two dialects a test runs against, each as a fresh
 * migrated database: a PGlite clone of the migrated template, and a new database on this run's
 * PostgreSQL server, or on a cluster of the file's own (`ownCluster`). Each opened database can
 * LISTEN and open event stores wired the way `openEventStore` wires them, so store suites need
 * no harness of their own.
 *
 * @example
 * ```ts
 * describe.each(testDatabases())("on $name", (dialect) => {
 *   let t: TestDatabase;
 *   let store: PostgresEventStore;
 *   openForSuite(dialect, (opened) => ({ t, store } = opened));
 * });
 * ```
 */
import type { PGlite } from "@electric-sql/pglite";
import type { Kysely } from "kysely";
import pg from "pg";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { createPgNotificationSource } from "../../src/adapters/pg-notifications.ts";
import { createPgliteNotificationSource } from "../../src/adapters/pglite-notifications.ts";
import { migrateToLatest } from "../../src/events/migrate.ts";
import { PostgresEventStore, type PostgresEventStoreOptions } from "../../src/events/postgres-event-store.ts";
import type { Database } from "../../src/events/schema.ts";
import { openTemplateClone } from "./pglite-template.ts";
import { createTestDatabase, startTestPostgres, type TestPostgres } from "./postgres-cluster.ts";
import { testActor } from "./store-events.ts";

/** `application_name` of the LISTEN connections of stores opened by {@link TestDatabase.openStore}. */
export const LISTEN_APP = "maqet-listen";

export interface StoreOptions extends PostgresEventStoreOptions {
  /** Server only: the store's own pool size (default 6). */
  maxConnections?: number;
}

export interface TestDatabase {
  db: Kysely<Database>;
  /** The server database's URL; undefined for PGlite (one in-process connection). */
  url?: string;
  /** More than one connection (a server): transactions can stay open beside each other. */
  concurrent: boolean;
  /** LISTEN on a channel (PGlite's one session; a dedicated client on the server); resolves with the unlisten. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * A store on this database as `openEventStore` opens it: {@link testActor}, LISTEN wake-ups
   * (application name {@link LISTEN_APP}), on PGlite the single-session hand-over, on the server
   * a pool of its own (closed with the store). `options` override.
   */
  openStore(options?: StoreOptions): Promise<PostgresEventStore>;
  close(): Promise<void>;
}

export interface TestDialect {
  name: "pglite" | "pg";
  open(): Promise<TestDatabase>;
}

/**
 * Both dialects. The global setup starts a server or fails, so a run without one is a broken
 * setup: this throws (when the file is collected) rather than skipping the server cases.
 *
 * `ownCluster`: the server cases run on a throwaway cluster of this file's own (started on the
 * first open, stopped after the file), for files that hold transactions or row locks open on
 * purpose: the xid watermark is cluster-wide, so on the shared cluster they would hold back other
 * files' reads (and other files' transactions theirs). Ignored when MAQET_TEST_DATABASE_URL
 * points the run at an external server.
 *
 * @example
 * ```ts
 * for (const d of testDatabases({ ownCluster: true })) console.log(d.name);
 * ```
 */
export function testDatabases(options: { ownCluster?: boolean } = {}): TestDialect[] {
  const server = serverDatabases(options);
  return [
    { name: "pglite", open: openPgliteTestDatabase },
    {
      name: "pg",
      async open() {
        const testDb = await server.create();
        const opened = await openPgDatabase({ url: testDb.url });
        await migrateToLatest(opened.db);
        return {
          db: opened.db,
          url: testDb.url,
          concurrent: true,
          listen: async (channel, onPayload) => {
            const client = new pg.Client({ connectionString: testDb.url });
            await client.connect();
            client.on("notification", (n) => onPayload(n.payload ?? ""));
            await client.query(`listen ${channel}`);
            return () => client.end();
          },
          openStore: async ({ maxConnections = 6, ...options } = {}) => {
            const pool = await openPgDatabase({ url: testDb.url, maxConnections });
            return new PostgresEventStore(pool.db, {
              actor: () => testActor,
              notifications: createPgNotificationSource({ url: testDb.url, applicationName: LISTEN_APP }),
              onClose: pool.close,
              ...options,
            });
          },
          close: async () => {
            await opened.close();
            await testDb.drop(); // with (force): a store left open by a failed test cannot keep it
          },
        };
      },
    },
  ];
}

/**
 * A PGlite clone of the migrated template as a {@link TestDatabase}, with the raw instance (for
 * tests that watch or count what the session is sent).
 *
 * @example
 * ```ts
 * const t = await openPgliteTestDatabase();
 * const store = await t.openStore();
 * ```
 */
export async function openPgliteTestDatabase(): Promise<TestDatabase & { pglite: PGlite }> {
  const clone = await openTemplateClone(inject("pgliteTemplate"));
  return {
    db: clone.db,
    pglite: clone.pglite,
    concurrent: false,
    listen: (channel, onPayload) => clone.pglite.listen(channel, onPayload),
    openStore: async ({ maxConnections: _, ...options } = {}) =>
      new PostgresEventStore(clone.db, {
        actor: () => testActor,
        notifications: createPgliteNotificationSource(clone.pglite, clone.db),
        // As openEventStore opens it: the store's own appends are handed over at commit.
        singleSession: { inTransaction: () => clone.pglite.isInTransaction() },
        ...options,
      }),
    close: clone.close,
  };
}

/**
 * Empty databases on this run's PostgreSQL server, or (`ownCluster`) on a cluster of this file's
 * own, started on the first `create()` and stopped after the file. Call it at the top of a file or
 * describe (it registers the afterAll).
 *
 * @example
 * ```ts
 * const server = serverDatabases({ ownCluster: true });
 * const { url, drop } = await server.create();
 * ```
 */
export function serverDatabases(options: { ownCluster?: boolean } = {}): {
  create(): Promise<{ url: string; drop(): Promise<void> }>;
} {
  const shared = inject("databaseUrl");
  if (!shared)
    throw new Error(`no PostgreSQL server for this run: ${inject("databaseSkipReason") || "unknown reason"}`);
  const own = options.ownCluster && !process.env.MAQET_TEST_DATABASE_URL;
  let cluster: Promise<TestPostgres> | undefined;
  if (own) {
    afterAll(async () => {
      await (await cluster?.catch(() => undefined))?.stop();
    });
  }
  return {
    create: async () => {
      if (!own) return createTestDatabase(shared);
      cluster ??= startTestPostgres();
      return createTestDatabase((await cluster).url);
    },
  };
}

/**
 * Opens `dialect`'s database and a store on it (`new PostgresEventStore(db, storeOptions)`: the
 * test keeps the database) before the suite's tests, hands both to `set`, and closes them after.
 *
 * @example
 * ```ts
 * let t: TestDatabase;
 * let store: PostgresEventStore;
 * openForSuite(dialect, (opened) => ({ t, store } = opened), { source: "test" });
 * ```
 */
/**
 * For tests that each want a fresh database: the returned function opens one (and a store on it)
 * for the test that calls it; both are closed after that test.
 *
 * @example
 * ```ts
 * const fresh = openPerTest(dialect, { source: "test" });
 * it("…", async () => {
 *   const { t, store } = await fresh();
 * });
 * ```
 */
export function openPerTest(
  dialect: TestDialect,
  storeOptions: PostgresEventStoreOptions = {},
): () => Promise<{ t: TestDatabase; store: PostgresEventStore }> {
  let opened: { t: TestDatabase; store: PostgresEventStore } | undefined;
  afterEach(async () => {
    await opened?.store.close();
    await opened?.t.close();
    opened = undefined;
  });
  return async () => {
    const t = await dialect.open();
    opened = { t, store: new PostgresEventStore(t.db, storeOptions) };
    return opened;
  };
}

export function openForSuite(
  dialect: TestDialect,
  set: (opened: { t: TestDatabase; store: PostgresEventStore }) => void,
  storeOptions: PostgresEventStoreOptions = {},
): void {
  let opened: { t: TestDatabase; store: PostgresEventStore } | undefined;
  let t: TestDatabase | undefined;
  beforeAll(async () => {
    t = await dialect.open();
    opened = { t, store: new PostgresEventStore(t.db, storeOptions) };
    set(opened);
  });
  afterAll(async () => {
    await opened?.store.close();
    await t?.close();
  });
}
