/**
 * Snapshots against real qemu-img and QEMU 7.2, through the library and the embedded store:
 *
 * 1. offline round trip: write a pattern with qemu-io, snapshot, overwrite, load, compare;
 * 2. live: save, list, load, delete through QMP jobs on a running firmware-only VM, which keeps
 *    running; every operation recorded with its duration.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import type { Maqet } from "../../src/mod.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

const run = promisify(execFile);
const qemuIo = await createBinaryLocator({ env: process.env })
  .locate("qemu-io")
  .catch(() => undefined);

/** qemu-io's `read -P` fails (and says so) unless every byte has the pattern. */
async function holds(file: string, pattern: string, length = "1M"): Promise<boolean> {
  // It exits 1 and says "Pattern verification failed" when a byte differs.
  const { stdout } = await run(qemuIo!, ["-f", "qcow2", "-c", `read -P ${pattern} 0 ${length}`, file]).catch(
    (error: { stdout?: string }) => ({ stdout: String(error.stdout ?? "") }),
  );
  if (!/read \d+\/\d+ bytes/.test(stdout)) throw new Error(`qemu-io could not read ${file}: ${stdout}`);
  return !/Pattern verification failed/.test(stdout);
}

async function write(file: string, pattern: string, length = "1M"): Promise<void> {
  await run(qemuIo!, ["-f", "qcow2", "-c", `write -P ${pattern} 0 ${length}`, file]);
}

describe.skipIf(qemuIo === undefined)("snapshots with real qemu-img and QEMU (qemu-io from qemu-utils needed)", () => {
  let dir: string;
  let maqet: Maqet;
  let disk: string;
  maqetForSuite("maqet-snap-", (s) => ({ dir, maqet } = s));
  beforeAll(async () => {
    disk = join(dir, "snap-hdd.qcow2");
    await writeFile(
      join(dir, "vm.yaml"),
      "name: snap\naccel: tcg\nmemory: 64M\nstorage:\n  - {name: hdd, type: qcow2, file: snap-hdd.qcow2, size: 64M}\n  - {name: scratch, type: raw, file: scratch.raw, size: 4M}\n",
    );
    await maqet.add(join(dir, "vm.yaml"));
    await maqet.start("snap"); // creates the disks
    await maqet.stop("snap", { force: true });
  });

  it("1. offline: create, list, load (restores the contents), delete through qemu-img; recorded with durations", async () => {
    const testStarted = Date.now();
    await write(disk, "0xab");
    const created = await maqet.createSnapshot("snap", { tag: "clean" });
    expect(created).toMatchObject({ tag: "clean", drives: ["hdd"], live: false, method: "qemu-img", replaced: false });

    await write(disk, "0xcd");
    expect(await holds(disk, "0xcd")).toBe(true);
    expect(await holds(disk, "0xab")).toBe(false);

    const listed = await maqet.listSnapshots("snap");
    expect(listed.drives.map((d) => [d.drive, d.snapshots.map((s) => s.name)])).toEqual([["hdd", ["clean"]]]);
    // qemu-io wrote the image after the snapshot: its stamp moved, so maqet read it again.
    expect(listed.source).toBe("qemu-img");
    expect((await maqet.listSnapshots("snap")).source).toBe("catalogue");

    const loaded = await maqet.loadSnapshot("snap", { tag: "clean" });
    expect(loaded).toMatchObject({ operation: "load", method: "qemu-img" });
    expect(await holds(disk, "0xab")).toBe(true);

    await expect(maqet.loadSnapshot("snap", { tag: "nope" })).rejects.toMatchObject({
      code: "SNAPSHOT_NOT_FOUND",
      message: expect.stringContaining("Existing snapshots: clean."),
    });
    await expect(maqet.createSnapshot("snap", { drive: "scratch", tag: "x" })).rejects.toMatchObject({
      code: "SNAPSHOT_UNSUPPORTED",
      message: expect.stringContaining("it is raw, and snapshots need qcow2"),
    });
    await maqet.deleteSnapshot("snap", { tag: "clean" });
    expect((await maqet.listSnapshots("snap")).drives[0]!.snapshots).toEqual([]);

    const facts = (await maqet.history("snap")).filter((h) => h.type.startsWith("snapshot."));
    expect(facts.map((h) => h.type)).toEqual([
      "snapshot.create-requested",
      "snapshot.created",
      "snapshot.observed",
      "snapshot.load-requested",
      "snapshot.loaded",
      "snapshot.load-requested",
      "snapshot.load-failed",
      "snapshot.delete-requested",
      "snapshot.deleted",
    ]);
    for (const h of facts.filter((f) => /(created|loaded|deleted|failed)$/.test(f.type))) {
      // Milliseconds this operation took: no more than this whole test has run so far.
      const { durationMs } = h.data as { durationMs: number };
      expect(Number.isInteger(durationMs) && durationMs >= 0, `${h.type} durationMs ${durationMs}`).toBe(true);
      expect(durationMs).toBeLessThanOrEqual(Date.now() - testStarted);
    }
    expect(facts[6]!.data).toMatchObject({ code: "SNAPSHOT_NOT_FOUND", tag: "nope" });
  });

  it("2. live: save, list, load, delete through QMP jobs; the VM keeps running; recorded with durations", async () => {
    const started = await maqet.start("snap");
    const pid = started.pid;
    const since = (await maqet.history("snap")).length;

    const saved = await maqet.createSnapshot("snap", { tag: "live1" });
    expect(saved).toMatchObject({ tag: "live1", drives: ["hdd"], live: true, method: "qmp-job" });
    const listed = await maqet.listSnapshots("snap");
    expect(listed).toMatchObject({ running: true, source: "catalogue" });
    const snapshot = listed.drives[0]!.snapshots.find((s) => s.name === "live1")!;
    expect(snapshot.vmStateSize).toBeGreaterThan(0); // RAM and device state went into the image

    // QEMU agrees, and qemu-img can read the locked image shared (-U).
    const info = await maqet.diskInfo(disk);
    expect(info.inUse).toBe(true);
    expect(info.snapshots.map((s) => s.name)).toEqual(["live1"]);

    await expect(maqet.createSnapshot("snap", { tag: "live1" })).rejects.toMatchObject({ code: "SNAPSHOT_EXISTS" });
    expect(await maqet.createSnapshot("snap", { tag: "live1", overwrite: true })).toMatchObject({ replaced: true });
    expect(await maqet.loadSnapshot("snap", { tag: "live1" })).toMatchObject({ live: true, method: "qmp-job" });
    expect(await maqet.deleteSnapshot("snap", { tag: "live1" })).toMatchObject({ live: true });
    expect((await maqet.listSnapshots("snap")).drives[0]!.snapshots).toEqual([]);

    const status = await maqet.status("snap");
    expect(status).toMatchObject({ state: "running", pid });
    expect(await maqet.qmp("snap", "query-status")).toMatchObject({ status: "running", running: true });
    const jobs = await maqet.qmp<unknown[]>("snap", "query-jobs");
    expect(jobs).toEqual([]); // every job dismissed

    const facts = (await maqet.history("snap")).slice(since);
    const types = facts.map((h) => h.type).filter((t) => t.startsWith("snapshot."));
    expect(types).toEqual([
      "snapshot.create-requested",
      "snapshot.created",
      "snapshot.create-requested",
      "snapshot.create-failed",
      "snapshot.create-requested",
      "snapshot.created",
      "snapshot.load-requested",
      "snapshot.loaded",
      "snapshot.delete-requested",
      "snapshot.deleted",
    ]);
    const done = facts.filter((h) => /snapshot\.(created|loaded|deleted)$/.test(h.type));
    for (const h of done)
      expect(h.data).toMatchObject({ live: true, method: "qmp-job", durationMs: expect.any(Number) });
    // The pauses QEMU makes to save and load are facts too, told apart from a user's pause.
    const pauses = facts.filter((h) => h.type === "vm.paused");
    expect(pauses.length).toBeGreaterThan(0);
    for (const p of pauses) expect(p.data).toMatchObject({ detail: "snapshot" });
  });
});
