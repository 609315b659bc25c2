/**
 * PGlite is single-host: every multi-host feature asked of the embedded store says so
 * (CLUSTER_NEEDS_SERVER, exit 3) and changes nothing; single-host use is untouched.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaqet, type Maqet } from "../../src/api/maqet.ts";
import { exitCodeOf } from "../../src/errors/error-codes.ts";

describe("a cluster needs a PostgreSQL server (embedded PGlite store)", { timeout: 120_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-single-"));
    maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run") });
  }, 120_000);
  afterAll(async () => {
    await maqet?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("host commands and placement flags are refused with a fix; plain add still works", async () => {
    for (const call of [
      () => maqet.hosts(),
      () => maqet.drainHost("a"),
      () => maqet.markHostDead("a"),
      () => maqet.add({ name: "pinned", memory: "64M" }, { host: "a" }),
      () => maqet.add({ name: "picky", memory: "64M" }, { constraints: { zone: "a" } }),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: "CLUSTER_NEEDS_SERVER",
        message: expect.stringMatching(/single-host.*PostgreSQL server.*docs\/cluster\.md/s),
      });
    }
    expect(exitCodeOf("CLUSTER_NEEDS_SERVER")).toBe(3);
    expect((await maqet.list()).map((v) => v.name)).toEqual([]);
    const added = await maqet.add({ name: "single", memory: "64M" });
    expect(added).toMatchObject({ name: "single", host: null });
  });

  it("an agent joining as a host on PGlite is refused before it serves", async () => {
    const member = createMaqet({
      dataDir: join(dir, "data2"),
      runtimeDir: join(dir, "run2"),
      supervise: true,
      cluster: { host: "a", member: true },
    });
    try {
      await expect(member.list()).rejects.toMatchObject({
        code: "CLUSTER_NEEDS_SERVER",
        details: { feature: "agent --host" },
      });
    } finally {
      await member.close();
    }
  });
});
