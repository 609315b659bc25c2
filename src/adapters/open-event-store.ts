/**
 * Opens the event store the way the CLI and the library facade want it: a PostgreSQL server when
 * a URL is given, the embedded PGlite data directory otherwise; migrated; with the real
 * OS-user/host/pid recorded as every event's actor. The returned store owns its database.
 *
 * @example
 * ```ts
 * const { store, close } = await openEventStore({ dataDir: "/home/me/.local/share/maqet/pgdata" });
 * try { await store.append("vm-1", events, { expectedVersion: "no_stream" }); } finally { await close(); }
 * ```
 */

import { hostname, userInfo } from "node:os";
import process from "node:process";
import type { Kysely } from "kysely";
import type { EventActor } from "../events/envelope.ts";
import { migrateToLatest } from "../events/migrate.ts";
import type { NotificationSource } from "../events/notifications.ts";
import { PostgresEventStore } from "../events/postgres-event-store.ts";
import type { Database } from "../events/schema.ts";
import type { CrashHook } from "../util/crash-points.ts";
import { checkDatabaseUrl } from "./database-url.ts";
import { openPgDatabase } from "./pg-database.ts";
import { createPgNotificationSource } from "./pg-notifications.ts";
import { openPgliteDatabase } from "./pglite-database.ts";
import { createPgliteNotificationSource } from "./pglite-notifications.ts";

export interface OpenEventStoreOptions {
  /** A PostgreSQL server URL; when absent the embedded PGlite at `dataDir` is used. */
  databaseUrl?: string;
  /** PGlite data directory (ignored with `databaseUrl`). */
  dataDir: string;
  /** How long to wait for another process holding `dataDir` (default 5000 ms). */
  lockWaitMs?: number;
  /** Default `metadata.source` of appended events ("cli", "library", "agent"...). */
  source?: string;
  signal?: AbortSignal;
  /** Called with each statement the store's database connection sends (diagnostics, tests). */
  onStatement?: (sql: string) => void;
  /** Test-only crash points (docs/crash-points.md). */
  crash?: CrashHook;
}

/**
 * An open store; `close()` completes `appended$` and every subscription, closes the LISTEN
 * connection if one was opened, then the database (and its lock).
 */
export interface OpenedEventStore {
  store: PostgresEventStore;
  db: Kysely<Database>;
  dialect: "pg" | "pglite";
  /** LISTEN/NOTIFY wake-ups on this database (the store's own source; other channels may be listened to). */
  notifications?: NotificationSource;
  /** Migrations applied while opening (empty when the schema was already current). */
  applied: string[];
  /**
   * Runs migrations again (a no-op unless another process added some) and returns the migrations
   * this handle applied that no earlier call reported: the first call includes those applied
   * while opening (a CLI process opens, then reports them), later ones only their own (a
   * long-lived agent answers "up to date" the second time, not the opening's list forever).
   */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Opens and migrates the event store. Throws STORE_LOCKED (PGlite directory in use), or
 * STORE_ERROR (server unreachable, migration failed).
 *
 * @example
 * ```ts
 * const opened = await openEventStore({ databaseUrl: process.env.MAQET_DATABASE_URL, dataDir, source: "cli" });
 * console.log(opened.dialect); // "pg" or "pglite"
 * ```
 */
export async function openEventStore(options: OpenEventStoreOptions): Promise<OpenedEventStore> {
  if (options.databaseUrl) checkDatabaseUrl(options.databaseUrl);
  const dialect = options.databaseUrl ? "pg" : "pglite";
  const opened = options.databaseUrl
    ? await openPgDatabase({ url: options.databaseUrl, onStatement: options.onStatement })
    : await openPgliteDatabase({
        dataDir: options.dataDir,
        lockWaitMs: options.lockWaitMs,
        signal: options.signal,
        onStatement: options.onStatement,
        crash: options.crash,
      });
  // Subscriptions' wake-ups: a dedicated LISTEN connection on a server (opened on the first
  // subscriber only), PGlite's in-process listen when embedded.
  const notifications =
    options.databaseUrl !== undefined && options.databaseUrl !== ""
      ? createPgNotificationSource({ url: options.databaseUrl })
      : "pglite" in opened
        ? createPgliteNotificationSource(opened.pglite, opened.db)
        : undefined;
  const applied: string[] = [];
  let reported = 0; // how many of `applied` migrate() has returned
  try {
    applied.push(...(await migrateToLatest(opened.db)));
  } catch (error) {
    await opened.close();
    throw error;
  }
  const actor = systemActor();
  const store = new PostgresEventStore(opened.db, {
    actor: () => actor,
    source: options.source,
    notifications,
    // PGlite is one session in this process: appends are handed to live subscriptions at commit.
    singleSession: "pglite" in opened ? { inTransaction: () => opened.pglite.isInTransaction() } : undefined,
    onClose: () => opened.close(),
  });
  return {
    store,
    db: opened.db,
    dialect,
    notifications,
    applied: [...applied],
    migrate: async () => {
      applied.push(...(await migrateToLatest(opened.db)));
      const fresh = applied.slice(reported);
      reported = applied.length;
      return fresh;
    },
    close: () => store.close(),
  };
}

/**
 * Who this process is, for `metadata.actor`. `userInfo()` throws for a uid without a passwd entry
 * (common in containers), so fall back to the environment and the numeric uid.
 *
 * @example
 * ```ts
 * systemActor(); // { user: "alice", uid: 1000, host: "lab1", pid: 4242 }
 * ```
 */
export function systemActor(): EventActor {
  const uid = typeof process.getuid === "function" ? process.getuid() : -1;
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? process.env.LOGNAME ?? `uid-${uid}`;
  }
  return { user, uid, host: hostname(), pid: process.pid };
}
