/**
 * Names the store an agent serves, so a CLI given `--db` or `--data-dir` can tell whether the
 * agent on the default socket serves the same one: a server URL without its credentials
 * (`postgresql://host:port/db`), or the embedded store's absolute data directory.
 *
 * @example
 * ```ts
 * storeIdOf({ databaseUrl: "postgres://u:secret@db:5432/maqet" }); // "postgresql://db:5432/maqet"
 * storeIdOf({ dataDir: "/home/ada/.local/share/maqet" });        // "embedded:/home/ada/.local/share/maqet"
 * ```
 */
import { resolve } from "node:path";

export function storeIdOf(store: { databaseUrl?: string; dataDir?: string }): string {
  if (store.databaseUrl) {
    try {
      const url = new URL(store.databaseUrl);
      return `postgresql://${url.hostname}:${url.port || "5432"}${url.pathname}`;
    } catch {
      return "postgresql://(unparsable url)";
    }
  }
  return `embedded:${resolve(store.dataDir ?? ".")}`;
}
