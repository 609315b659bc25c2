/** Builds dist/ as `npm run build` does (tsc, then the bundled `maqet` executable) once per test run, so e2e tests run what users run. */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The `maqet` executable as package.json's `bin` names it: the bundle scripts/build.mjs writes. */
export const cliBin = join(projectRoot, "dist/src/bin/maqet.js");

export async function buildDist(): Promise<void> {
  execFileSync(process.execPath, ["scripts/build.mjs"], {
    cwd: projectRoot,
    stdio: "inherit",
  });
}
