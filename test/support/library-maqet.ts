/**
 * A library instance for a test file or suite: `createMaqet` on the embedded store (a copy of the
 * run's template, test/support/embedded-store-template.ts) in a fresh temp directory (data and
 * runtime dirs inside it, this PATH), created before the tests and handed
 * to `set`; after them every VM it lists is force-stopped (nothing left running, pass or fail),
 * (`suite.maqet`: a test that reopens the instance puts the new one there)
 * the instance closed and the directory removed.
 *
 * @example
 * ```ts
 * let maqet: Maqet;
 * let dir: string;
 * maqetForSuite("maqet-lib-", (s) => ({ maqet, dir } = s), { source: "library" });
 * ```
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { createMaqet, type Maqet, type MaqetOptions } from "../../src/mod.ts";
import { seedEmbeddedStore } from "./embedded-store-template.ts";

export interface LibrarySuite {
  dir: string;
  maqet: Maqet;
  /** The options it was created with (to open a second instance on the same store). */
  options: MaqetOptions;
}

/**
 * Registers the hooks (each may take `hookTimeoutMs`, default 300 s: a fresh embedded store takes
 * a minute or more to create on a loaded 2-core machine). `options` (or a function of the
 * directory giving them) are added to the defaults.
 */
export function maqetForSuite(
  prefix: string,
  set: (suite: LibrarySuite) => void,
  options: Partial<MaqetOptions> | ((dir: string) => Partial<MaqetOptions>) = {},
  hookTimeoutMs = 300_000,
): void {
  let suite: LibrarySuite | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    const all: MaqetOptions = {
      dataDir: join(dir, "data"),
      runtimeDir: join(dir, "run"),
      env: { PATH: process.env.PATH },
      ...(typeof options === "function" ? options(dir) : options),
    };
    if (!all.databaseUrl && all.dataDir) await seedEmbeddedStore(all.dataDir);
    suite = { dir, maqet: createMaqet(all), options: all };
    set(suite);
  }, hookTimeoutMs);
  afterAll(async () => {
    if (suite) {
      for (const vm of await suite.maqet.list().catch(() => [])) {
        if (vm.state !== "stopped") await suite.maqet.stop(vm.name, { force: true }).catch(() => undefined);
      }
      await suite.maqet.close();
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }, hookTimeoutMs);
}
