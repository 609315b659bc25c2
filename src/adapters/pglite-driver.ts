/**
 * A kysely dialect for PGlite (Postgres in WebAssembly, in-process).
 *
 * PGlite is one session, so the "pool" is one connection behind an async mutex: a kysely
 * transaction holds it from BEGIN to COMMIT and every other query waits, which is what keeps a
 * transaction's statements from interleaving with anyone else's. Consequence: inside
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
  /** Resolves when the current holder releases; each acquirer chains onto the previous one. */
  #tail: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  constructor(pglite: PgliteLike) {
    this.#connection = new PgliteConnection(pglite);
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    this.#release = release;
    return this.#connection;
  }
  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
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
    await this.#tail;
    await this.#connection.close();
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
