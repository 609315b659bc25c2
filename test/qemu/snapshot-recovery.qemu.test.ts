/**
 * Every snapshot request gets its outcome (issue 18, acceptance 2). The CLI is killed (SIGKILL,
 * through the MAQET_CRASH_AT hook) right after `snapshot.<op>-requested`, inside a live job, or
 * after the effect but before the outcome, offline (qemu-img) and live (QMP jobs on a running
 * firmware-only VM); the next command (`snapshot list`) records the true outcome, and what
 * `snapshot list` says equals `qemu-img snapshot -l`. Real QEMU, qemu-img, qemu-io, embedded store.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CrashSandbox, createCrashSandbox, openRequests } from "../support/crash-runner.ts";

const exec = promisify(execFile);

/** The tags `qemu-img snapshot -l` lists (-U: readable while QEMU holds the image). */
async function qemuImgTags(file: string): Promise<string[]> {
  const { stdout } = await exec("qemu-img", ["snapshot", "-l", "-U", file]);
  return stdout
    .split("\n")
    .slice(2)
    .map((line) => line.trim().split(/\s+/)[1])
    .filter((t): t is string => t !== undefined && t !== "")
    .sort();
}

async function qemuIo(file: string, command: string): Promise<string> {
  const { stdout } = await exec("qemu-io", ["-f", "qcow2", "-c", command, file]).catch(
    (error: { stdout?: string }) => ({ stdout: String(error.stdout ?? "") }),
  );
  return stdout;
}

interface Listing {
  source: string;
  drives: { drive: string; snapshots: { name: string }[] }[];
}

describe("an interrupted snapshot request gets its true outcome from the next command", () => {
  let box: CrashSandbox;
  let disk: string;

  beforeAll(async () => {
    box = await createCrashSandbox("pglite");
    disk = join(box.home, "hdd.qcow2");
    await writeFile(
      join(box.home, "vm.yaml"),
      "name: snap\naccel: tcg\nmemory: 32M\nstorage:\n  - {name: hdd, type: qcow2, file: hdd.qcow2, size: 16M}\n",
    );
    for (const args of [
      ["add", "vm.yaml"],
      ["start", "snap"],
      ["stop", "snap", "--force"],
    ]) {
      const r = await box.run(args);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 900_000);

  afterAll(async () => {
    await box?.run(["stop", "snap", "--force"]);
    await box?.cleanup();
  });

  /** Runs one snapshot command that dies at `point`, then `snapshot list`; returns the outcome recorded and the listing. */
  async function killedThenListed(args: string[], point: string) {
    const killed = await box.run(["snapshot", ...args], { crashAt: point });
    expect(killed.signal, `${args.join(" ")} at ${point}: ${killed.stderr}`).toBe("SIGKILL");
    expect(killed.stderr).toContain(`crash point ${point}`);

    const listed = await box.run(["snapshot", "list", "snap", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const after = await box.history("snap");
    expect(openRequests(after)).toEqual([]);
    // No event lost: the killed command's request is there, and its outcome follows it.
    const request = after.findLastIndex((e) => e.type === `snapshot.${args[0]}-requested`);
    expect(request).toBeGreaterThan(0);
    expect(after.map((e) => e.version)).toEqual(after.map((_, i) => i));
    const outcome = after
      .slice(request + 1)
      .find((e) => e.type.startsWith("snapshot.") && e.type !== "snapshot.observed");
    const listing = listed.json<Listing>();
    expect(listing.drives.map((d) => d.snapshots.map((s) => s.name).sort())).toEqual([await qemuImgTags(disk)]);
    return { outcome: outcome!, tags: listing.drives[0]!.snapshots.map((s) => s.name).sort() };
  }

  it("offline create: killed after the request -> create-failed (interrupted); after qemu-img ran -> created (recovered)", async () => {
    const a = await killedThenListed(["create", "snap", "s1"], "snapshot.requested");
    expect(a.outcome).toMatchObject({
      type: "snapshot.create-failed",
      data: { tag: "s1", reason: "interrupted", recovered: true },
    });
    expect(a.tags).toEqual([]);

    const b = await killedThenListed(["create", "snap", "s1"], "snapshot.applied");
    expect(b.outcome).toMatchObject({
      type: "snapshot.created",
      data: { tag: "s1", recovered: true, method: "qemu-img", live: false },
    });
    expect(b.tags).toEqual(["s1"]);
  }, 900_000);

  it("offline load: killed after the request -> the revert is finished and recorded as loaded (recovered)", async () => {
    expect(await qemuIo(disk, "write -P 0xab 0 64k")).toMatch(/wrote/);
    expect((await box.run(["snapshot", "create", "snap", "pattern-ab"])).code).toBe(0);
    expect(await qemuIo(disk, "write -P 0xcd 0 64k")).toMatch(/wrote/);
    const r = await killedThenListed(["load", "snap", "pattern-ab"], "snapshot.requested");
    expect(r.outcome).toMatchObject({ type: "snapshot.loaded", data: { tag: "pattern-ab", recovered: true } });
    expect(await qemuIo(disk, "read -P 0xab 0 64k")).not.toMatch(/Pattern verification failed/);
  }, 900_000);

  it("offline delete: killed after the request -> delete-failed (interrupted); after qemu-img ran -> deleted (recovered)", async () => {
    const a = await killedThenListed(["delete", "snap", "s1"], "snapshot.requested");
    expect(a.outcome).toMatchObject({ type: "snapshot.delete-failed", data: { tag: "s1", reason: "interrupted" } });
    expect(a.tags).toContain("s1");
    const b = await killedThenListed(["delete", "snap", "s1"], "snapshot.applied");
    expect(b.outcome).toMatchObject({ type: "snapshot.deleted", data: { tag: "s1", recovered: true } });
    expect(b.tags).not.toContain("s1");
  }, 900_000);

  it("live: killed after the request, inside the QMP job, and after the job -> the job's true outcome", async () => {
    const started = await box.run(["start", "snap"]);
    expect(started.code, started.stderr).toBe(0);

    const a = await killedThenListed(["create", "snap", "live1"], "snapshot.requested");
    expect(a.outcome).toMatchObject({ type: "snapshot.create-failed", data: { reason: "interrupted", live: true } });
    expect(a.tags).not.toContain("live1");

    const b = await killedThenListed(["create", "snap", "live1"], "snapshot.job-started");
    expect(b.outcome).toMatchObject({ type: "snapshot.created", data: { tag: "live1", live: true, recovered: true } });
    expect(b.tags).toContain("live1");

    const c = await killedThenListed(["load", "snap", "live1"], "snapshot.job-started");
    expect(c.outcome).toMatchObject({ type: "snapshot.loaded", data: { tag: "live1", recovered: true } });

    const d = await killedThenListed(["delete", "snap", "live1"], "snapshot.applied");
    expect(d.outcome).toMatchObject({ type: "snapshot.deleted", data: { tag: "live1", recovered: true } });
    expect(d.tags).not.toContain("live1");

    // The VM ran on throughout, and maqet left none of its jobs in QEMU.
    const status = await box.run(["status", "snap", "--json"]);
    expect(status.json<{ state: string }>().state).toBe("running");
    const jobs = await box.run(["qmp", "snap", "query-jobs", "--json"]);
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(JSON.stringify(jobs.json())).not.toContain("maqet-snapshot-");
  }, 1_800_000);
});
