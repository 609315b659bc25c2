/**
 * The fact spool (facts kept while the store is unreachable): private files, torn lines
 * skipped, a batch not recorded stays, a failure keeps it and everything after it, and writers
 * and the drainer never lose each other's lines.
 */
import { appendFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  drainSpool,
  readSpool,
  type SpooledFacts,
  spoolFacts,
  spoolPath,
  spoolStoreKey,
} from "../../src/adapters/fact-spool.ts";

const batch = (name: string): SpooledFacts => ({
  store: "postgres://maqet@db/maqet",
  streamId: `vm-${name}`,
  vmId: name,
  name,
  events: [{ id: `${name}-1`, type: "vm.stopped", schemaVersion: 1, data: { detail: "destroyed" } }],
  spooledAt: "2026-12-07T00:00:00.000Z",
});

describe("fact spool", () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-spool-"));
    path = spoolPath(dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("is a 0600 file in a 0700 directory; a torn last line is skipped", async () => {
    await spoolFacts(path, batch("a"));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "spool"))).mode & 0o777).toBe(0o700);
    await appendFile(path, '{"store":"postgres://maqet@db/maqet","streamId":"vm-b","ev');
    expect((await readSpool(path)).map((f) => f.name)).toEqual(["a"]);
  });

  it("drains what was recorded, keeps what was not, and keeps the rest after a failure", async () => {
    for (const name of ["a", "b", "c", "d"]) await spoolFacts(path, batch(name));
    const taken = await drainSpool(path, async (f) => f.name !== "b");
    expect(taken.map((f) => f.name)).toEqual(["a", "c", "d"]);
    expect((await readSpool(path)).map((f) => f.name)).toEqual(["b"]);
    await spoolFacts(path, batch("e"));
    await expect(
      drainSpool(path, async (f) => {
        if (f.name === "b") return true;
        throw new Error("server gone again");
      }),
    ).rejects.toThrow("server gone again");
    expect((await readSpool(path)).map((f) => f.name)).toEqual(["e"]);
    await drainSpool(path, async () => true);
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
    expect(await drainSpool(path, async () => true)).toEqual([]);
  });

  it("a batch spooled while a drain runs is not lost", async () => {
    await spoolFacts(path, batch("a"));
    let late: Promise<void> | undefined;
    await drainSpool(path, async () => {
      late = spoolFacts(path, batch("late")); // waits for the drain's lock
      return true;
    });
    await late;
    expect((await readSpool(path)).map((f) => f.name)).toEqual(["late"]);
    expect(await readFile(path, "utf8")).toContain('"late-1"');
  });

  it("keys a store by its URL without the password", () => {
    expect(spoolStoreKey("postgres://u:secret@db:5432/maqet", "/d/pglite")).toBe("postgres://u@db:5432/maqet");
    expect(spoolStoreKey(undefined, "/d/pglite")).toBe("pglite:/d/pglite");
  });
});
