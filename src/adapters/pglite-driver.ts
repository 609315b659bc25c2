/**
 * A kysely dialect for PGlite (Postgres in WebAssembly, in-process).
 *
 * PGlite is one session, so the "pool" is one connection behind an async mutex: a kysely
 * transaction holds it from BEGIN to COMMIT and every other query waits, which is what keeps a
 * transaction's statements from interleaving with anyone else's. Waiters go in order, those
 * asking at low priority (src/adapters/db-priority.ts: the agent's live projections) after the
 * others. Consequence: inside
 * `db.transaction().execute(trx => ...)` use `trx`, never `db`, or the callback waits for itself.
 *
 * @example
 * ```ts
 * const pglite = await PGlite.create("/var/lib/maqet/pgdata");
 * const db = new Kysely<Database>({ dialect: new PgliteDialect({ pglite }) });
 * ```
 */
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";
import { isLowPriority } from "./db-priority.ts";

/** The part of PGlite this driver calls (typed here so the module never loads PGlite itself). */
export interface PgliteLike {
  query<T>(
    sql: string,
    params?: unknown[],
    options?: { rowMode?: "object" },
  ): Promise<{ rows: T[]; affectedRows?: number; command?: string }>;
  close(): Promise<void>;
  readonly closed: boolean;
}

export interface PgliteDialectConfig {
  pglite: PgliteLike;
}

/**
 * Kysely dialect over one PGlite instance; `db.destroy()` closes the instance.
 *
 * @example
 * ```ts
 * const db = new Kysely<Database>({ dialect: new PgliteDialect({ pglite }) });
 * await db.destroy(); // also closes pglite
 * ```
 */
export class PgliteDialect implements Dialect {
  readonly #config: PgliteDialectConfig;
  constructor(config: PgliteDialectConfig) {
    this.#config = config;
  }
  createDriver(): Driver {
    return new PgliteDriver(this.#config.pglite);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  // biome-ignore lint/suspicious/noExplicitAny: the Dialect interface's own signature
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

/**
 * The single-connection driver behind {@link PgliteDialect}.
 *
 * @example
 * ```ts
 * const driver = new PgliteDriver(pglite); // normally created by PgliteDialect
 * ```
 */
export class PgliteDriver implements Driver {
  readonly #connection: PgliteConnection;
  readonly #lock = new SessionLock();

  constructor(pglite: PgliteLike) {
    this.#connection = new PgliteConnection(pglite);
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock.acquire(isLowPriority());
    return this.#connection;
  }
  async releaseConnection(): Promise<void> {
    this.#lock.release();
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const mode = [settings.isolationLevel && `isolation level ${settings.isolationLevel}`, settings.accessMode];
    await connection.executeQuery(CompiledQuery.raw(`begin ${mode.filter(Boolean).join(" ")}`.trim()));
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }
  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteIdent(name)}`));
  }
  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to savepoint ${quoteIdent(name)}`));
  }
  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release savepoint ${quoteIdent(name)}`));
  }
  async destroy(): Promise<void> {
    // Wait for the current holder, so a closing store does not cut a transaction in half.
    await this.#lock.acquire(true);
    try {
      await this.#connection.close();
    } finally {
      this.#lock.release();
    }
  }
}

/** How long a low-priority waiter may be passed over before it goes next anyway. */
const LOW_PRIORITY_MAX_WAIT_MS = 200;

/**
 * The one session's lock: one holder, then the waiters in order, those of ordinary priority
 * before the low-priority ones (src/adapters/db-priority.ts), unless a low-priority one has
 * waited {@link LOW_PRIORITY_MAX_WAIT_MS} (a busy agent still keeps its projections going).
 */
class SessionLock {
  #held = false;
  readonly #waiting: Array<() => void> = [];
  readonly #waitingLow: Array<{ since: number; go: () => void }> = [];

  acquire(low: boolean): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((go) => {
      if (low) this.#waitingLow.push({ since: performance.now(), go });
      else this.#waiting.push(go);
    });
  }

  release(): void {
    const oldLow = this.#waitingLow[0];
    const next =
      oldLow !== undefined &&
      (this.#waiting.length === 0 || performance.now() - oldLow.since > LOW_PRIORITY_MAX_WAIT_MS)
        ? this.#waitingLow.shift()!.go
        : this.#waiting.shift();
    if (next === undefined) this.#held = false;
    else next();
  }
}

const DML = new Set(["INSERT", "UPDATE", "DELETE", "MERGE"]);

class PgliteConnection implements DatabaseConnection {
  readonly #pglite: PgliteLike;
  constructor(pglite: PgliteLike) {
    this.#pglite = pglite;
  }
  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.#pglite.query<R>(query.sql, [...query.parameters], { rowMode: "object" });
    const affected = result.command !== undefined && DML.has(result.command) ? result.affectedRows : undefined;
    return affected === undefined ? { rows: result.rows } : { rows: result.rows, numAffectedRows: BigInt(affected) };
  }
  async *streamQuery<R>(query: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    // PGlite has no cursors over its single session; page the finished result instead.
    const { rows } = await this.executeQuery<R>(query);
    for (let i = 0; i < rows.length; i += chunkSize) yield { rows: rows.slice(i, i + chunkSize) };
  }
  async close(): Promise<void> {
    if (!this.#pglite.closed) await this.#pglite.close();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
