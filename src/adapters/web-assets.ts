/**
 * The web console's static files (the package's `web/` folder), read once at the agent's start
 * into memory by URL path (`/ui/<relative path>`), with their content type. Only the types a page
 * needs are served; anything else in the folder is left out.
 *
 * @example
 * ```ts
 * const assets = loadAssets(defaultAssetsDir());
 * assets.get("/ui/index.html")?.type; // "text/html; charset=utf-8"
 * ```
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MaqetError } from "../errors/maqet-error.ts";

export interface Asset {
  type: string;
  body: Buffer;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** The package's `web/` folder: beside `src/` (sources) or two levels above `dist/src/<chunk>`. */
export function defaultAssetsDir(): string {
  for (const up of ["../../web", "../../../web"]) {
    const dir = fileURLToPath(new URL(`${up}/`, import.meta.url));
    try {
      if (statSync(join(dir, "index.html")).isFile()) return dir;
    } catch {}
  }
  throw new MaqetError("INTERNAL", "The web console's assets (the package's web/ folder) are missing.");
}

/** Every file under the folder, read once, by URL path (`/ui/<relative path>`). */
export function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile() && TYPES[extname(entry.name)]) {
        out.set(`/ui/${rel}`, { type: TYPES[extname(entry.name)]!, body: readFileSync(join(dir, rel)) });
      }
    }
  };
  walk("");
  return out;
}
