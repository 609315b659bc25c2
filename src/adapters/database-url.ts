/**
 * The PostgreSQL server URL (`--db`, `MAQET_DATABASE_URL`, `databaseUrl`) checked before any
 * connection: `notaurl` or `mysql://…` is invalid input (INVALID_ARGUMENT, exit 3) that says
 * what is expected, not a driver error about a host named "base".
 *
 * @example
 * ```ts
 * checkDatabaseUrl("postgres://maqet@db.example/maqet"); // ok
 * checkDatabaseUrl("mysql://db/maqet");                   // throws INVALID_ARGUMENT
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

const PROTOCOLS = ["postgres:", "postgresql:"];

/** Throws INVALID_ARGUMENT unless `url` is a postgres:// or postgresql:// URL. The password never appears in the message. */
export function checkDatabaseUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed !== undefined && PROTOCOLS.includes(parsed.protocol)) return;
  const shown = parsed === undefined ? url.replace(/:[^:@/]*@/, ":***@") : `${parsed.protocol}//…`;
  throw new MaqetError(
    "INVALID_ARGUMENT",
    `Invalid database URL '${shown}' (--db or MAQET_DATABASE_URL): expected postgres://user:password@host:port/database (or postgresql://…). Leave it out for the embedded store.`,
    { details: { expected: "postgres://user:password@host:port/database" } },
  );
}
