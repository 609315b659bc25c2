#!/usr/bin/env node
// `npm run build`: tsc compiles src/ and migrations/ to dist/ (the library, with its .d.ts), then
// esbuild bundles the `maqet` executable into dist/src/bin/: the entry plus chunks for what it
// loads lazily (the in-process CLI, the agent). Node's ESM loader pays per module file (~1 ms
// each on these machines); the thin path through an agent is ~40 files unbundled and 2–3 bundled,
// which is most of the difference between `maqet ls` and a bare `node -e 0`. Packages in
// node_modules stay external (their own loading is theirs), and dist/src/bin/ sits at the same
// depth as dist/src/cli/, so paths the code resolves from import.meta.url (package.json, the
// demo's examples/) are the same for both.
//
//   node scripts/build.mjs            # tsc + bundle
//   node scripts/build.mjs --no-bundle
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
if (!process.argv.includes("--no-bundle")) {
  const { build } = await import("esbuild");
  const outdir = join(root, "dist/src/bin");
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { maqet: join(root, "dist/src/cli/bin.js") },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    outdir,
    chunkNames: "[name]-[hash]",
    sourcemap: "linked",
    logLevel: "warning",
    metafile: true,
  });
  // What each output imports, statically or lazily: test/int/bundle-imports.int.test.ts reads it.
  writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile));
}
