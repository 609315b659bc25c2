/**
 * The shipped `maqet` (the esbuild bundle in dist/src/bin/, package.json's `bin`) keeps the thin
 * path thin (issue 10): what the entry, the agent client and the renderers load statically has no
 * store, state machine, process runner or rxjs, and the in-process CLI is a chunk loaded only on
 * demand. Reads the metafile scripts/build.mjs writes beside the bundle (the global setup builds
 * dist/ as `npm run build` does), so it checks what runs, not the sources.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliBin, projectRoot } from "../support/build-dist.ts";

interface Metafile {
  outputs: Record<string, { imports: Array<{ path: string; kind: string; external?: boolean }>; entryPoint?: string }>;
}

const HEAVY = ["@electric-sql/pglite", "kysely", "xstate", "execa", "rxjs", "pg", "yaml"];
const meta = JSON.parse(readFileSync(join(projectRoot, "dist/src/bin/meta.json"), "utf8")) as Metafile;
const outputOf = (file: string) => {
  const out = meta.outputs[file];
  if (!out)
    throw new Error(`${file} is not an output of the bundle (outputs: ${Object.keys(meta.outputs).join(", ")})`);
  return out;
};

/** Output files and external packages reached from `start` by static imports only. */
function staticClosure(start: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const i of outputOf(file).imports) {
      if (i.kind !== "import-statement") continue;
      if (i.external) packages.add(i.path);
      else visit(i.path);
    }
  };
  visit(start);
  return { files, packages };
}

const heavy = (packages: Set<string>) =>
  [...packages].filter((p) => HEAVY.some((h) => p === h || p.startsWith(`${h}/`)));

/** The chunk `from` loads lazily whose entry point (in dist/src) ends with `source`. */
function lazyChunk(from: string, source: string): string {
  const lazy = outputOf(from)
    .imports.filter((i) => i.kind === "dynamic-import" && !i.external)
    .map((i) => i.path);
  const hit = lazy.find((p) => outputOf(p).entryPoint?.endsWith(source));
  if (!hit) throw new Error(`${from} does not lazily import ${source} (it imports: ${lazy.join(", ")})`);
  return hit;
}

describe("the bundled maqet executable", () => {
  const entry = Object.keys(meta.outputs).find((f) => join(projectRoot, f) === cliBin);

  it("is package.json's bin", () => {
    const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { bin: { maqet: string } };
    expect(join(projectRoot, pkg.bin.maqet)).toBe(cliBin);
    expect(entry, "dist/src/bin/maqet.js in the metafile").toBeDefined();
  });

  it("loads no store, state machine, process runner or rxjs on the way through an agent", () => {
    const start = staticClosure(entry!);
    expect(heavy(start.packages)).toEqual([]);
    const agentCli = lazyChunk(entry!, "src/cli/agent-cli.js");
    expect(heavy(staticClosure(agentCli).packages), "agent-cli").toEqual([]);
    expect(heavy(staticClosure(lazyChunk(agentCli, "src/cli/render.js")).packages), "render").toEqual([]);
  });

  it("loads the in-process CLI only on demand, and that one does reach the store", () => {
    const start = staticClosure(entry!);
    const main = lazyChunk(entry!, "src/cli/main.js");
    expect(start.files.has(main)).toBe(false);
    // The walk is real: the in-process side statically reaches the heavy packages.
    expect(heavy(staticClosure(main).packages)).toEqual(expect.arrayContaining(["kysely", "xstate"]));
  });
});
