/**
 * A PostgreSQL server as a Kysely instance, over a `pg` pool. `pg` is imported only here, and only
 * when a server URL is given, so embedded (PGlite) users never load it.
 *
 * @example
 * ```ts
 * const { db, close } = await openPgDatabase({ url: "postgres://maqet@db.example/maqet" });
 * try { await migrateToLatest(db); } finally { await close(); }
 * ```
 */

import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from "kysely";
import type { Pool, PoolClient } from "pg";
import { MaqetError } from "../errors/maqet-error.ts";
import { type Database, PREPARE_MARK } from "../events/schema.ts";
import { countingDialect } from "./counting-dialect.ts";
import { storeLost } from "./pg-connection-loss.ts";

/** An open server database. `close()` ends the pool and is idempotent. */
export interface PgDatabase {
  db: Kysely<Database>;
  /** The pool, for what Kysely does not cover (LISTEN on a dedicated client). */
  pool: Pool;
  close(): Promise<void>;
}

export interface OpenPgOptions {
  /** A libpq connection URL: `postgres://user:password@host:port/database`. */
  url: string;
  /** Pool size (default 10). */
  maxConnections?: number;
  /** Shown in `pg_stat_activity` (default "maqet"). */
  applicationName?: string;
  /** Called with each statement sent (diagnostics, statement-count tests; src/adapters/counting-dialect.ts). */
  onStatement?: (sql: string) => void;
}

/**
 * Connects a pool to `url` and checks it with one round trip, so a wrong URL fails here with
 * STORE_ERROR rather than on the first append.
 *
 * @example
 * ```ts
 * const { db } = await openPgDatabase({ url: process.env.MAQET_DATABASE_URL!, maxConnections: 4 });
 * ```
 */
export async function openPgDatabase(options: OpenPgOptions): Promise<PgDatabase> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? "maqet",
  });
  // An idle client that loses its server emits "error" on the pool; unhandled, it kills the
  // process. The next query reconnects (or reports the failure), so swallowing it here is safe.
  pool.on("error", () => {});
  // A client the pool lent out has no "error" listener (pg-pool removes its idle one at
  // checkout), yet `pg` emits "error" on any client whose server goes away, even mid-query: a
  // server restart while a statement or a transaction held a client killed the process (every
  // cluster agent at once, in the chaos test). The statement itself still fails with the error,
  // and the pool drops the broken client at release, so a listener that ignores it is enough.
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  try {
    await pool.query("select 1");
  } catch (error) {
    await pool.end().catch(() => {});
    throw new MaqetError(
      "STORE_ERROR",
      `Cannot connect to the PostgreSQL server at ${redact(options.url)}: ${error instanceof Error ? error.message : String(error)}. ` +
        "Check the URL given with --db or MAQET_DATABASE_URL, and that the server is running.",
      { cause: error, details: { url: redact(options.url) } },
    );
  }
  const dialect = new PostgresDialect({ pool: preparingPool(pool) });
  const db = new Kysely<Database>({
    dialect: options.onStatement ? countingDialect(dialect, options.onStatement) : dialect,
  });
  let closing: Promise<void> | undefined;
  return {
    db,
    pool,
    close: () => {
      closing ??= db.destroy(); // ends the pool
      return closing;
    },
  };
}

/**
 * The pool as Kysely sees it: each client runs statements that start with {@link PREPARE_MARK}
 * as named prepared statements (`pg` prepares a name once per connection), everything else as
 * before: an append took ~330 µs as an unnamed statement, ~200 µs prepared (parse and plan of
 * the call skipped). Names come from a per-process table of the marked texts, so one text has one name.
 */
function preparingPool(pool: Pool): PostgresPool {
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (name === undefined) {
      name = `maqet_${names.size + 1}`;
      names.set(text, name);
    }
    return name;
  };
  // A statement or a connection lost to a server restart fails with STORE_ERROR
  // (pg-connection-loss.ts), and its client leaves the pool at release: the server's error reaches
  // the statement before the socket's end reaches the client, which still looked usable, went
  // back to the pool, and failed the next statement too ("Connection terminated unexpectedly").
  const coded = <T>(result: T, onLost: () => void = () => {}): T =>
    result instanceof Promise
      ? (result.catch((error: unknown) => {
          const coded = storeLost(error);
          if (coded !== error) onLost();
          throw coded;
        }) as T)
      : result; // a cursor (Kysely's streaming) reports its errors on its own reads
  const wrap = (client: PoolClient): PostgresPoolClient => {
    let lost = false;
    const onLost = () => {
      lost = true;
    };
    return {
      query: ((text: unknown, parameters?: unknown[]) =>
        coded(
          typeof text === "string" && text.startsWith(PREPARE_MARK)
            ? client.query({ name: nameOf(text), text, values: parameters })
            : client.query(text as string, parameters),
          onLost,
        )) as unknown as PostgresPoolClient["query"],
      release: () => client.release(lost || undefined),
    };
  };
  return {
    connect: async () => wrap(await coded(pool.connect())),
    end: () => pool.end(),
  };
}

/**
 * The URL without its password, for messages and logs.
 *
 * @example
 * ```ts
 * redact("postgres://u:secret@h/db"); // "postgres://u:***@h/db"
 * ```
 */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}
