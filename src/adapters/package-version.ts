/**
 * maqet's version from package.json (src/ and dist/src/ sit at different depths below it).
 *
 * @example
 * ```ts
 * packageVersion(); // "0.1.0"
 * ```
 */
import { readFileSync } from "node:fs";

export function packageVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "maqet") return pkg.version ?? "unknown";
    } catch {}
  }
  return "unknown";
}
