/**
 * The CLI and its stores: `migrate`, the embedded store's one-process lock as a user meets it,
 * and the same lifecycle on a real PostgreSQL server with `--db` (and MAQET_DATABASE_URL).
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { projectRoot } from "../support/build-dist.ts";
import { type CliSandbox, createCliSandbox, processAlive, waitFor } from "../support/cli-runner.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

describe("maqet CLI and its stores", { timeout: 180_000 }, () => {
  let box: CliSandbox;
  beforeAll(async () => {
    // `migrate` on a store no command has opened yet: a fresh one, not the run's template.
    box = await createCliSandbox({ freshStore: true });
  });
  afterAll(async () => {
    await box.cleanup();
  });

  it("migrate applies the schema once, then reports the store up to date", async () => {
    const first = await box.run(["migrate", "--json"]);
    expect(first.code).toBe(0);
    // The store migrates on open, so `migrate` on a fresh store reports what opening applied.
    expect(first.json<{ applied: string[] }>().applied.length).toBeGreaterThan(0);
    const again = await box.run(["migrate"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/up to date/);
  });

  it("a second process meets the embedded store's lock: waits, then exits 1 naming the holder", () =>
    // The in-process CLI meets the lock: with an agent (MAQET_TEST_AGENT=1) it is stopped meanwhile.
    box.withStoreFree(async () => {
      const dataDir = join(box.env.XDG_DATA_HOME!, "maqet", "pglite");
      // A holder that keeps the lock for 20 s, like a long `maqet stop --timeout 20` would.
      const holder = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { acquireDataDirLock } from ${JSON.stringify(join(projectRoot, "dist/src/adapters/data-dir-lock.js"))};
         const lock = await acquireDataDirLock(${JSON.stringify(dataDir)});
         console.log("locked"); setTimeout(() => lock.release().then(() => process.exit(0)), 20000);`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      try {
        await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
        const t0 = Date.now();
        const r = await box.run(["ls"]);
        const waited = Date.now() - t0;
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(String(holder.pid));
        expect(r.stderr).toMatch(/--db/);
        expect(waited).toBeGreaterThanOrEqual(4000);
      } finally {
        holder.kill("SIGKILL");
      }
      // The holder died without releasing: the next command takes the stale lock over.
      await waitFor(async () => !(await processAlive(holder.pid!)), 3000);
      expect((await box.run(["ls"])).code).toBe(0);
    }));

  it("the same lifecycle on a PostgreSQL server with --db, and with MAQET_DATABASE_URL", async () => {
    const db = await createTestDatabase(inject("databaseUrl"));
    try {
      await writeFile(join(box.home, "pgvm.yaml"), "name: pgvm\nbinary: qemu-system-x86_64\naccel: tcg\nmemory: 32M\n");
      expect((await box.run(["add", "pgvm.yaml", "--db", db.url])).code).toBe(0);
      const start = await box.run(["--db", db.url, "start", "pgvm"]);
      expect(start.stderr).toBe("");
      const status = (await box.run(["status", "pgvm", "--json"], { MAQET_DATABASE_URL: db.url })).json<{
        state: string;
        pid: number;
      }>();
      expect(status.state).toBe("running");
      expect(await processAlive(status.pid)).toBe(true);
      expect((await box.run(["stop", "pgvm", "--force", "--db", db.url])).code).toBe(0);
      const types = (await box.run(["history", "pgvm", "--json", "--db", db.url])).json<{
        events: Array<{ type: string }>;
      }>().events;
      expect(types.map((t) => t.type)).toEqual([
        "vm.defined",
        "vm.start-requested",
        "vm.started",
        "vm.stop-requested",
        "vm.stop-step",
        "vm.stopped",
      ]);
      // The embedded store knows nothing of it.
      expect((await box.run(["status", "pgvm"])).code).toBe(3);
    } finally {
      await box.run(["stop", "pgvm", "--force", "--db", db.url]);
      await db.drop();
    }
  });
});
