/** Builds dist/ as `npm run build` does (tsc, then the bundled `maqet` executable) once per test run, so e2e tests run what users run. */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The `maqet` executable as package.json's `bin` names it: the bundle scripts/build.mjs writes. */
export const cliBin = join(projectRoot, "dist/src/bin/maqet.js");

/** What the build reads: a change to any of them (a newer mtime) means dist/ is stale. */
const BUILD_INPUTS = [
  "src",
  "migrations",
  "scripts/build.mjs",
  "tsconfig.json",
  "tsconfig.build.json",
  "package.json",
  "package-lock.json",
];
/** What the build writes last (the bundle's metafile) and the library's entry. */
const BUILD_OUTPUTS = ["dist/src/bin/meta.json", "dist/src/mod.js", "dist/src/bin/maqet.js"];

function newestMtimeMs(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a file removed or renamed in it
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, entry)));
  return newest;
}

/**
 * True when every build output exists and is newer than every input: `bash scripts/setup.sh`
 * (or `npm run build`) has just built this tree, as in CI, and nothing was edited since.
 */
export function distIsFresh(root = projectRoot): boolean {
  const built = Math.min(
    ...BUILD_OUTPUTS.map((path) => statSync(join(root, path), { throwIfNoEntry: false })?.mtimeMs ?? 0),
  );
  if (built === 0) return false;
  return BUILD_INPUTS.every((path) => newestMtimeMs(join(root, path)) < built);
}

/**
 * Builds dist/ unless it is fresh (see {@link distIsFresh}); `MAQET_TEST_REBUILD=1` builds anyway
 * (a tree copied with its old mtimes kept).
 */
export async function buildDist(): Promise<void> {
  if (process.env.MAQET_TEST_REBUILD !== "1" && distIsFresh()) {
    console.log(
      "global setup: dist/ is newer than src/ and the build's inputs; not rebuilt (MAQET_TEST_REBUILD=1 forces it)",
    );
    return;
  }
  const child = spawn(process.execPath, ["scripts/build.mjs"], { cwd: projectRoot, stdio: "inherit" });
  await new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`npm run build failed (${signal ?? `exit ${code}`}): see its output above`)),
    );
  });
}
