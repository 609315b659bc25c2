/**
 * A statement that failed because the PostgreSQL server went away or is not back yet (a restart, a
 * failover, the network): the driver's own error (`Connection terminated unexpectedly`,
 * `ECONNREFUSED`, SQLSTATE 57P01 `terminating connection due to administrator command`, 57P03
 * `the database system is starting up`, class 08...) becomes `STORE_ERROR`, the documented code
 * for an unreachable server, instead of reaching the caller as an uncoded error (reported as
 * INTERNAL, "this is a bug", by the CLI and the agent). Every other database error (a constraint,
 * a serialization failure, the stale-epoch trigger) is left as it is: code reads its SQLSTATE.
 *
 * @example
 * ```ts
 * try { await client.query(text) } catch (e) { throw storeLost(e) }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

/** SQLSTATEs of a server that is shutting down, restarting or not accepting connections yet. */
const SERVER_GONE_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);
/** Socket errors of a connection that could not be made or was cut. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);
/** What `pg` throws, without a code, for a connection lost mid-statement or unusable since. */
const DRIVER_MESSAGES = [
  /^Connection terminated/,
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
  /^timeout exceeded when trying to connect/,
];

/**
 * True when `error` says the server connection failed (not that the statement was refused).
 *
 * @example
 * ```ts
 * isConnectionLoss(Object.assign(new Error("boom"), { code: "57P01" })); // true
 * ```
 */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (SERVER_GONE_STATES.has(code) || code.startsWith("08") || SOCKET_CODES.has(code))) {
    return true;
  }
  return DRIVER_MESSAGES.some((pattern) => pattern.test(error.message));
}

/**
 * `error` as STORE_ERROR when it is a lost or refused connection ({@link isConnectionLoss}); any
 * other error unchanged.
 *
 * @example
 * ```ts
 * await client.query(text).catch((e) => { throw storeLost(e); });
 * ```
 */
export function storeLost(error: unknown): unknown {
  if (!isConnectionLoss(error)) return error;
  return new MaqetError(
    "STORE_ERROR",
    `The PostgreSQL server did not answer: ${(error as Error).message}. ` +
      "It may be restarting or failing over; check that it is running and reachable, then try again.",
    { cause: error, details: { reason: "connection-lost" } },
  );
}
