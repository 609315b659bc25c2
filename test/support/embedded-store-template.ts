/**
 * One embedded store per test run, created by maqet itself (the built CLI's `maqet ls`), that
 * sandboxes copy as their data directory instead of creating their own: creating and migrating a
 * PGlite store costs ~6 s of CPU more than opening one (9 s against 2.7 s for a first `maqet ls`
 * on the 2-core dev machine), and the suite made ~40 of them. A copy is what a user's data
 * directory is after their first command: the schema migrated, no VM, no event.
 *
 * Tests about the first command itself (creating and migrating a store) ask for a fresh one:
 * `createCliSandbox({ freshStore: true })`.
 *
 * @example
 * ```ts
 * const template = await buildEmbeddedStoreTemplate(); // global setup, once dist/ is built
 * await seedEmbeddedStore(join(home, ".local/share/maqet")); // a sandbox, before its first command
 * ```
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { cliBin } from "./build-dist.ts";

/**
 * Runs the built CLI's `maqet ls` once in an empty sandbox (a child process, so it runs beside the
 * rest of the global setup); `path` is the data directory it created (`<path>/pglite`).
 */
export async function buildEmbeddedStoreTemplate(): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "maqet-store-template-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const env = {
      HOME: dir,
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      XDG_DATA_HOME: join(dir, "data"),
      XDG_RUNTIME_DIR: join(dir, "run"),
    };
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, [cliBin, "ls"], { cwd: dir, env, timeout: 600_000 }, (error, _stdout, stderr) =>
        error ? reject(new Error(`maqet ls (the store template) failed: ${error.message}\n${stderr}`)) : resolve(),
      );
    });
    const path = join(dir, "data", "maqet");
    const left = (await readdir(path)).filter((f) => f !== "pglite");
    if (left.length > 0) throw new Error(`the store template has more than pglite/ in it: ${left.join(", ")}`);
    return { path, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/**
 * Copies the run's store template to `dataDir` (which must not exist yet), modes kept. Without
 * a template (a run whose global setup did not make one) the first command creates the store.
 */
export async function seedEmbeddedStore(dataDir: string): Promise<void> {
  const template = inject("embeddedStoreTemplate");
  if (!template) return;
  await cp(template, dataDir, { recursive: true, errorOnExist: true, force: false });
}
