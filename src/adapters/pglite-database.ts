/**
 * The embedded database: PGlite on a data directory, as a Kysely instance.
 *
 * The data directory is guarded by the data-dir lock for as long as it is open, because two
 * processes on one PGlite directory corrupt it. PGlite is imported only here, and only when this
 * dialect is chosen.
 *
 * @example
 * ```ts
 * const { db, close } = await openPgliteDatabase({ dataDir: "/home/me/.local/share/maqet/pgdata" });
 * try { await migrateToLatest(db); } finally { await close(); }
 * ```
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { MaqetError } from "../errors/maqet-error.ts";
import type { Database } from "../events/schema.ts";
import type { CrashHook } from "../util/crash-points.ts";
import { countingDialect } from "./counting-dialect.ts";
import { acquireDataDirLock } from "./data-dir-lock.ts";
import { PgliteDialect } from "./pglite-driver.ts";

/** An open PGlite database. `close()` is idempotent. */
export interface PgliteDatabase {
  db: Kysely<Database>;
  /** The raw instance, for what Kysely does not cover (LISTEN, dumps). Queries go through `db`. */
  pglite: PGlite;
  close(): Promise<void>;
}

export interface OpenPgliteOptions {
  /** The PGlite data directory; created (parents mode 0700) when missing. */
  dataDir: string;
  /** How long to wait for another process holding the directory (default 5000 ms). */
  lockWaitMs?: number;
  signal?: AbortSignal;
  /** Called with each statement sent (diagnostics, statement-count tests; src/adapters/counting-dialect.ts). */
  onStatement?: (sql: string) => void;
  /** Test-only crash points (docs/crash-points.md). */
  crash?: CrashHook;
}

/**
 * Opens (creating if needed) a PGlite data directory under its lock. Throws STORE_LOCKED when
 * another live process holds it, STORE_ERROR when PGlite cannot start on it.
 *
 * @example
 * ```ts
 * const { db, close } = await openPgliteDatabase({ dataDir, lockWaitMs: 1000 });
 * ```
 */
export async function openPgliteDatabase(options: OpenPgliteOptions): Promise<PgliteDatabase> {
  const dataDir = resolve(options.dataDir);
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    throw new MaqetError(
      "STORE_ERROR",
      `Cannot create the directory for the embedded database ${dataDir}: ${error instanceof Error ? error.message : String(error)}. ` +
        "Choose a writable data directory, or use a PostgreSQL server with --db.",
      { cause: error, details: { dataDir } },
    );
  });
  const lock = await acquireDataDirLock(dataDir, {
    waitMs: options.lockWaitMs,
    signal: options.signal,
    crash: options.crash,
  });
  try {
    if ((await mkdir(dataDir, { recursive: true, mode: 0o700 })) !== undefined)
      options.crash?.("store.data-dir-created");
    const { PGlite } = await import("@electric-sql/pglite");
    const pglite = await PGlite.create({ dataDir, ...startParams(PGlite.defaultStartParams) });
    return wrap(pglite, () => lock.release(), options.onStatement);
  } catch (error) {
    await lock.release();
    throw new MaqetError(
      "STORE_ERROR",
      `Cannot open the embedded database in ${dataDir}: ${error instanceof Error ? error.message : String(error)}. ` +
        "If the directory is damaged, move it away (maqet recreates it) or use a PostgreSQL server with --db.",
      { cause: error, details: { dataDir } },
    );
  }
}

/**
 * PostgreSQL's buffer pool inside PGlite's WASM heap. PGlite keeps initdb's `shared_buffers =
 * 128MB`, and the pool is touched when the server starts: 128 MiB of every open store's RSS
 * (measured: 292 MiB after open, 185 MiB with 32MB). maqet's hot pages (the events' tail and
 * its indexes, the streams, the projections' rows) fit in 32 MiB many times over; the files
 * behind it are in the OS page cache. Durability is untouched (the pool is a cache).
 */
const SHARED_BUFFERS = "32MB";

/** PGlite's own start parameters plus ours; none when a PGlite does not publish its own. */
function startParams(defaults: readonly string[] | undefined): { startParams?: string[] } {
  return Array.isArray(defaults) ? { startParams: [...defaults, "-c", `shared_buffers=${SHARED_BUFFERS}`] } : {};
}

/**
 * Opens an in-memory PGlite loaded from a `dumpDataDir()` tarball (a Blob or a file path):
 * a fresh copy of a prepared database in well under a second, for tests.
 *
 * @example
 * ```ts
 * const { db, close } = await openPgliteFromDump("/tmp/maqet-template.tar");
 * ```
 */
export async function openPgliteFromDump(dump: Blob | string): Promise<PgliteDatabase> {
  const blob = typeof dump === "string" ? new Blob([await readFile(dump)]) : dump;
  const { PGlite } = await import("@electric-sql/pglite");
  const pglite = await PGlite.create({ loadDataDir: blob });
  return wrap(pglite, async () => {});
}

function wrap(pglite: PGlite, afterClose: () => Promise<void>, onStatement?: (sql: string) => void): PgliteDatabase {
  const dialect = new PgliteDialect({ pglite });
  const db = new Kysely<Database>({ dialect: onStatement ? countingDialect(dialect, onStatement) : dialect });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await db.destroy(); // closes pglite once the current transaction, if any, is over
      } finally {
        await afterClose();
      }
    })();
    return closing;
  };
  return { db, pglite, close };
}
