/**
 * The library with real QEMU and the embedded store: a VM killed with SIGKILL while a maqet
 * process watches it is recorded as crashed, at once, and status and history say so.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Maqet } from "../../src/mod.ts";
import { processAlive, waitFor } from "../support/cli-runner.ts";
import { firmwareVmYaml } from "../support/firmware-vm.ts";
import { maqetForSuite } from "../support/library-maqet.ts";
import { waitUntil } from "../support/poll.ts";

// The first call creates the embedded store: a minute or more on a loaded 2-core machine.
describe("VM lifecycle through the library (real QEMU)", { timeout: 180_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  maqetForSuite("maqet-lib-", (s) => ({ dir, maqet } = s));
  beforeAll(async () => {
    await writeFile(
      join(dir, "vm.yaml"),
      firmwareVmYaml("lib", "storage:\n  - {name: hdd, type: qcow2, file: lib.qcow2, size: 16M}\n"),
    );
  });

  it("records kill -9 of QEMU as vm.stopped with detail crashed, visible in status and history", async () => {
    await maqet.add(join(dir, "vm.yaml"));
    const started = await maqet.start("lib");
    expect(started.state).toBe("running");
    const pid = started.pid!;
    expect(await processAlive(pid)).toBe(true);
    expect(await maqet.qmp("lib", "query-status")).toMatchObject({ status: "running" });

    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    expect(await waitFor(async () => (await maqet.status("lib")).state === "stopped", 5000)).toBe(true);

    const status = await maqet.status("lib");
    expect(status).toMatchObject({ state: "stopped", pid: null, detail: "crashed" });
    expect(status.lastStop).toMatchObject({ detail: "crashed" });
    const history = await maqet.history("lib");
    expect(history.map((h) => h.type)).toEqual([
      "vm.defined",
      "vm.start-requested",
      "disk.created",
      "vm.started",
      "qmp.command-executed",
      "vm.stopped",
    ]);
    expect(history.at(-1)!.data).toMatchObject({ detail: "crashed", signal: "SIGKILL" });
    // Recorded within 1 s of the kill (the fact's own timestamp, not how often the test polls).
    expect(new Date(history.at(-1)!.at).getTime() - killedAt).toBeLessThan(1000);
    expect(history.at(-1)!.actor).toMatchObject({ pid: process.pid });
  });

  it("restarts after a crash, pauses and resumes via QMP, and stops (guest ignores ACPI → quit)", async () => {
    await maqet.start("lib");
    await maqet.qmp("lib", "stop");
    expect(await waitFor(async () => (await maqet.status("lib")).state === "paused", 3000)).toBe(true);
    expect((await maqet.status("lib")).detail).toBe("user");
    await maqet.qmp("lib", "cont");
    expect(await waitFor(async () => (await maqet.status("lib")).state === "running", 3000)).toBe(true);
    const stopped = await maqet.stop("lib", { timeoutMs: 1000 });
    expect(stopped.lastStop).toMatchObject({ detail: "destroyed", method: "quit" });
    const types = (await maqet.history("lib")).map((h) => h.type);
    expect(types.slice(-10)).toEqual([
      "vm.start-requested",
      "vm.started",
      "qmp.command-executed",
      "vm.paused",
      "qmp.command-executed",
      "vm.resumed",
      "vm.stop-requested",
      "vm.stop-step",
      "vm.stop-step",
      "vm.stopped",
    ]);
  });

  it("events$ replays the store and then goes live", async () => {
    const seen: string[] = [];
    const sub = maqet.events$.subscribe((e) => seen.push(e.type));
    // Replay: exactly what the store holds, in its order (the two tests above wrote it).
    const stored = (await maqet.history("lib")).map((h) => h.type);
    expect(stored.length).toBeGreaterThan(0);
    await waitUntil(
      "events$ to replay the stored history",
      () => [...seen],
      (s) => s.length >= stored.length,
      {
        timeoutMs: 3000,
      },
    );
    expect(seen).toEqual(stored);
    const before = seen.length;
    await maqet.start("lib");
    await maqet.stop("lib", { force: true });
    // Live: the five facts of this start/stop, and nothing else.
    await waitUntil(
      "events$ to deliver the live start/stop",
      () => seen.slice(before),
      (s) => s.length >= 5,
      {
        timeoutMs: 3000,
      },
    );
    sub.unsubscribe();
    expect(seen.slice(before)).toEqual([
      "vm.start-requested",
      "vm.started",
      "vm.stop-requested",
      "vm.stop-step",
      "vm.stopped",
    ]);
  });
});
