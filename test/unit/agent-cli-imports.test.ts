/**
 * The CLI's path through an agent must import little: no PGlite, Kysely, XState, execa or rxjs at
 * import time (issue 10). Walks the static value imports (not `import type`, not `await import()`)
 * from the thin CLI's entry files through the sources.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(new URL(import.meta.url).pathname), "../..");
const HEAVY = ["@electric-sql/pglite", "kysely", "xstate", "execa", "rxjs", "pg", "yaml"];

function staticImports(file: string, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(file)) return seen;
  const text = readFileSync(file, "utf8");
  const packages: string[] = [];
  seen.set(file, packages);
  // Value imports and re-exports; `import type` / `export type` are erased.
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gms)) {
    const spec = m[1]!;
    if (spec.startsWith(".")) staticImports(resolve(dirname(file), spec), seen);
    else packages.push(spec);
  }
  for (const m of text.matchAll(/^import\s+"([^"]+)"/gm)) packages.push(m[1]!);
  return seen;
}

describe("the thin CLI's imports", () => {
  it("load no store, state machine, process runner or rxjs", () => {
    for (const entry of ["src/cli/bin.ts", "src/cli/agent-cli.ts", "src/cli/render.ts"]) {
      const graph = staticImports(resolve(root, entry));
      const offenders = [...graph].flatMap(([file, pkgs]) =>
        pkgs
          .filter((p) => HEAVY.some((h) => p === h || p.startsWith(`${h}/`)))
          .map((p) => `${file.slice(root.length + 1)} imports ${p}`),
      );
      expect(offenders, entry).toEqual([]);
      // And it does reach the registry (routes come from it), so the walk is real.
      expect(
        [...graph.keys()].some((f) => f.endsWith("src/api/commands.ts")),
        entry,
      ).toBe(true);
    }
  });
});
