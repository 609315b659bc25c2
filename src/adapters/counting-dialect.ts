/**
 * A Kysely dialect that reports every statement it sends (BEGIN and COMMIT included: both
 * drivers send them through the connection) before sending it. For diagnostics and for tests
 * that hold a path to a number of statements, such as the QMP hot path (one append per call).
 *
 * @example
 * ```ts
 * let n = 0;
 * const db = new Kysely<Database>({ dialect: countingDialect(new PgliteDialect({ pglite }), () => n++) });
 * ```
 */
import type { DatabaseConnection, Dialect, Driver } from "kysely";

/**
 * Wraps `dialect` so that `onStatement(sql)` is called for each statement, on any connection.
 *
 * @example
 * ```ts
 * const dialect = countingDialect(new PostgresDialect({ pool }), (sql) => console.log(sql));
 * ```
 */
export function countingDialect(dialect: Dialect, onStatement: (sql: string) => void): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => countingDriver(dialect.createDriver(), onStatement),
  };
}

function countingDriver(driver: Driver, onStatement: (sql: string) => void): Driver {
  // The driver gets its own connection back when releasing it (pg's carries a private release).
  const inner = new WeakMap<DatabaseConnection, DatabaseConnection>();
  const own = (c: DatabaseConnection) => inner.get(c) ?? c;
  return {
    init: () => driver.init(),
    acquireConnection: async () => {
      const connection = await driver.acquireConnection();
      const counted: DatabaseConnection = {
        executeQuery: (query) => {
          onStatement(query.sql);
          return connection.executeQuery(query);
        },
        streamQuery: (query, chunkSize) => {
          onStatement(query.sql);
          return connection.streamQuery(query, chunkSize);
        },
      };
      inner.set(counted, connection);
      return counted;
    },
    // Passed the counting connection: BEGIN/COMMIT/ROLLBACK go through executeQuery and count.
    beginTransaction: (c, settings) => driver.beginTransaction(c, settings),
    commitTransaction: (c) => driver.commitTransaction(c),
    rollbackTransaction: (c) => driver.rollbackTransaction(c),
    ...(driver.savepoint ? { savepoint: (c, name, compile) => driver.savepoint!(c, name, compile) } : {}),
    ...(driver.rollbackToSavepoint
      ? { rollbackToSavepoint: (c, name, compile) => driver.rollbackToSavepoint!(c, name, compile) }
      : {}),
    ...(driver.releaseSavepoint
      ? { releaseSavepoint: (c, name, compile) => driver.releaseSavepoint!(c, name, compile) }
      : {}),
    releaseConnection: (c) => driver.releaseConnection(own(c)),
    destroy: () => driver.destroy(),
  };
}
