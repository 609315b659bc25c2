/**
 * The test guest booted by maqet (library, embedded store, real QEMU under TCG): its marker
 * reaches the serial log maqet captures, and a guest power-off is recorded as a guest shutdown.
 * Two real boots (~6 s each); the guest is built once per machine (test/support/guest.ts).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaqet, type Maqet } from "../../src/mod.ts";
import { waitFor } from "../support/cli-runner.ts";
import { ensureGuest, GUEST_LINES, type Guest, guestVmConfig, markerLine } from "../support/guest.ts";

const BOOT_TIMEOUT_MS = 60_000;

describe("the test guest under maqet (real QEMU, TCG)", () => {
  let dir: string;
  let maqet: Maqet;
  let guest: Guest;
  beforeAll(async () => {
    guest = await ensureGuest();
    dir = await mkdtemp(join(tmpdir(), "maqet-guest-"));
    maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run"), env: { PATH: process.env.PATH } });
  }, 10 * 60_000);
  afterAll(async () => {
    for (const vm of ["marker", "poweroff"]) await maqet.stop(vm, { force: true }).catch(() => undefined);
    await maqet.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("prints its marker on the serial log maqet captures, and stays up", async () => {
    await maqet.add(guestVmConfig(guest, { name: "marker", markers: ["HELLO", "WORLD"] }));
    const t0 = Date.now();
    const started = await maqet.start("marker");
    expect(started.state).toBe("running");
    const serialLog = join(started.runtimeDir!, "serial.log");
    const log = () => readFile(serialLog, "utf8").catch(() => "");
    expect(await waitFor(async () => markerLine("WORLD").test(await log()), BOOT_TIMEOUT_MS)).toBe(true);
    const bootMs = Date.now() - t0;
    const text = await log();
    expect(text).toMatch(markerLine("HELLO"));
    expect(text.indexOf("MAQET-MARKER HELLO")).toBeLessThan(text.indexOf("MAQET-MARKER WORLD"));
    expect(text).toMatch(GUEST_LINES.boot);
    expect(await waitFor(async () => GUEST_LINES.ready.test(await log()), 10_000)).toBe(true);
    console.log(`guest boot: start → marker ${bootMs} ms (guest uptime ${GUEST_LINES.boot.exec(text)?.[1]} s)`);
    expect((await maqet.status("marker")).state).toBe("running");
    await maqet.stop("marker", { force: true });
  }, 90_000);

  it("powers itself off: vm.stopped with detail shutdown and guest: true", async () => {
    await maqet.add(guestVmConfig(guest, { name: "poweroff", markers: "BYE", action: "poweroff" }));
    await maqet.start("poweroff");
    const stopped = await waitFor(async () => (await maqet.status("poweroff")).state === "stopped", BOOT_TIMEOUT_MS);
    const status = await maqet.status("poweroff");
    expect(stopped, `state is ${status.state}`).toBe(true);
    expect(status.lastStop).toMatchObject({ detail: "shutdown", guest: true, reason: "guest-shutdown" });
    const last = (await maqet.history("poweroff")).at(-1)!;
    expect(last.type).toBe("vm.stopped");
    expect(last.data).toMatchObject({ detail: "shutdown", guest: true });
  }, 90_000);
});
