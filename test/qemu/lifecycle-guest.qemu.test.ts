/**
 * Lifecycle acceptance on a real booting guest (TCG, ~7 s a boot) and on firmware-only VMs:
 * stop by ACPI power-down, escalation past a guest that ignores it, wait conditions that pass
 * and that time out (exit 2, state accurate), each recorded step by step.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Maqet } from "../../src/mod.ts";
import { createCliSandbox, processAlive, waitFor } from "../support/cli-runner.ts";
import { firmwareVm, firmwareVmYaml } from "../support/firmware-vm.ts";
import { ensureGuest, type Guest, guestVmConfig } from "../support/guest.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

let dir: string;
let maqet: Maqet;
let guest: Guest;

maqetForSuite("maqet-lc-", (s) => ({ dir, maqet } = s));
beforeAll(async () => {
  guest = await ensureGuest();
}, 600_000);

const stepsOf = async (name: string) =>
  (await maqet.history(name)).filter((e) => e.type === "vm.stop-step").map((e) => (e.data as { step: string }).step);

describe("lifecycle on a real guest", { timeout: 180_000 }, () => {
  it("waits for a serial marker, then a host stop powers the guest down by ACPI", async () => {
    await maqet.add(guestVmConfig(guest, { name: "acpi", markers: "UP" }));
    // MAQET-READY: the guest's power-button handler is installed (a press before it is lost).
    const started = await maqet.start("acpi", { waitFor: "serial:MAQET-READY", timeoutMs: 120_000 });
    expect(await (await maqet.console("acpi")).read()).toMatch(/MAQET-MARKER UP/);
    expect(started.state).toBe("running");
    const t0 = Date.now();
    const stopped = await maqet.stop("acpi", { timeoutMs: 60_000 });
    expect(stopped.lastStop).toMatchObject({ detail: "shutdown", method: "powerdown", guest: true });
    expect(Date.now() - t0).toBeLessThan(60_000);
    // The guest powered off; QEMU, kept alive by -no-shutdown, is then ended with quit.
    expect(await stepsOf("acpi")).toEqual(["powerdown", "quit"]);
    expect(await processAlive(started.pid!)).toBe(false);
  });

  it("a guest that ignores ACPI is escalated (quit) and gone within timeout + 5 s, each step recorded", async () => {
    await maqet.add(guestVmConfig(guest, { name: "deaf", action: "ignore-acpi" }));
    const started = await maqet.start("deaf", { waitFor: "serial:MAQET-READY", timeoutMs: 120_000 });
    const t0 = Date.now();
    const stopped = await maqet.stop("deaf", { timeoutMs: 3000 });
    expect(Date.now() - t0).toBeLessThan(3000 + 5000);
    expect(stopped.lastStop).toMatchObject({ detail: "destroyed", method: "quit" });
    expect(await stepsOf("deaf")).toEqual(["powerdown", "quit"]);
    expect(await waitFor(async () => !(await processAlive(started.pid!)), 2000)).toBe(true);
  });
});

describe("wait conditions (firmware-only VMs)", { timeout: 120_000 }, () => {
  it("qmp and process pass; file: passes when the file appears during the wait", async () => {
    await maqet.add(firmwareVm("fw", { memory: "32M" }));
    expect((await maqet.start("fw", { waitFor: "qmp" })).state).toBe("running");
    await maqet.stop("fw", { force: true });
    expect((await maqet.start("fw", { waitFor: "process" })).state).toBe("running");
    await maqet.stop("fw", { force: true });
    const flag = join(dir, "ready.flag");
    // The file appears once QEMU is up (on vm.started), so the start is really waiting for it
    // however slow the machine (a timer could fire before the start, testing "already there").
    const before = (await maqet.history("fw")).length;
    let caughtUp: () => void = () => {};
    const live = new Promise<void>((resolve) => (caughtUp = resolve));
    const writer = maqet.subscribe({ vm: "fw", from: "end" }).subscribe((m) => {
      if (m.kind === "caughtUp") caughtUp();
      else if (m.event.type === "vm.started") void writeFile(flag, "ok");
    });
    await live;
    try {
      expect((await maqet.start("fw", { waitFor: `file:${flag}`, timeoutMs: 10_000 })).state).toBe("running");
    } finally {
      writer.unsubscribe();
    }
    expect((await maqet.history("fw")).slice(before).map((h) => h.type)).toContain("vm.started");
    await maqet.stop("fw", { force: true });
  });

  it("a wait that times out: TIMEOUT (exit 2), vm.wait-failed, the VM still running and accurate", async () => {
    const error = await maqet.start("fw", { waitFor: "serial:NEVER-PRINTED", timeoutMs: 1500 }).catch((e) => e);
    expect(error).toBeMaqetError("TIMEOUT");
    expect(error.exitCode).toBe(2);
    const status = await maqet.status("fw");
    expect(status.state).toBe("running");
    expect(await processAlive(status.pid!)).toBe(true);
    const last = (await maqet.history("fw")).at(-1)!;
    expect(last).toMatchObject({
      type: "vm.wait-failed",
      data: { condition: "serial:NEVER-PRINTED", timeoutMs: 1500 },
    });
    await maqet.stop("fw", { force: true });
  });

  it("through the CLI: --wait-for file: that never appears exits 2; a bad condition exits 3 and records nothing", async () => {
    const box = await createCliSandbox();
    try {
      await writeFile(join(box.home, "w.yaml"), firmwareVmYaml("w", "", { memory: "32M" }));
      expect((await box.run(["add", "w.yaml"])).code).toBe(0);
      const bad = await box.run(["start", "w", "--wait-for", "boot-complete"]);
      expect(bad.stderr).toMatch(/Unknown wait condition 'boot-complete'/);
      expect(bad.code).toBe(3);
      expect(bad.stderr).toMatch(/Unknown wait condition 'boot-complete'/);
      expect((await box.run(["history", "w", "--json"])).json<{ events: unknown[] }>().events).toHaveLength(1);
      const r = await box.run(["start", "w", "--wait-for", `file:${join(box.home, "nope")}`, "--timeout", "1"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/still running/);
      const status = (await box.run(["status", "w", "--json"])).json<{ state: string; pid: number }>();
      expect(status.state).toBe("running");
      expect((await box.run(["stop", "w", "--force"])).code).toBe(0);
    } finally {
      await box.run(["stop", "w", "--force"]);
      await box.cleanup();
    }
  });
});
