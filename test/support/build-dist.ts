/** Builds dist/ with the project's own tsc once per test run, so e2e tests run what users run. */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

export async function buildDist(): Promise<void> {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
    cwd: projectRoot,
    stdio: "inherit",
  });
}
