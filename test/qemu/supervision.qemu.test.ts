import { filter, firstValueFrom, map, tap, timeout } from "rxjs";
import { beforeAll, describe, expect, it } from "vitest";
import { createMaqet, type Maqet, type MaqetOptions, type StoredEvent } from "../../src/mod.ts";
import { firmwareVm } from "../support/firmware-vm.ts";
import { ensureGuest, type Guest, guestVmConfig } from "../support/guest.ts";
import { type LibrarySuite, maqetForSuite } from "../support/library-maqet.ts";

let options: MaqetOptions;
let maqet: Maqet;
let guest: Guest;
const warnings: string[] = [];

let suite: LibrarySuite;
maqetForSuite(
  "maqet-sup-",
  (s) => {
    suite = s;
    ({ maqet, options } = s);
  },
  {
    supervise: true,
    liveProjections: true,
    onWarning: (m) => warnings.push(m),
  },
);
beforeAll(async () => {
  guest = await ensureGuest();
}, 600_000);

/**
 * The next event of `vm` matching `type` (and `test`) after its current last one. Resolves once
 * the subscription has caught up (so nothing it reads competes with what the test does next);
 * the function it returns waits for the event.
 */
async function nextEvent(
  vm: string,
  type: string,
  test: (e: StoredEvent) => boolean = () => true,
  ms = 120_000,
): Promise<() => Promise<StoredEvent>> {
  const from = (await maqet.history(vm)).at(-1)!.position;
  let caughtUp!: () => void;
  const ready = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  const pending = firstValueFrom(
    maqet.subscribe({ vm, from }).pipe(
      tap((m) => m.kind === "caughtUp" && caughtUp()),
      filter((m) => m.kind === "event" && m.event.type === type && test(m.event)),
      map((m) => (m.kind === "event" ? m.event : (undefined as never))),
      timeout(ms),
    ),
  );
  pending.catch(() => undefined);
  await Promise.race([ready, pending]);
  return () => pending;
}

const typesAfter = async (vm: string, position: number) =>
  (await maqet.history(vm)).filter((e) => e.position > position).map((e) => e.type);

describe("a supervising instance records what happens to running VMs (real QEMU)", { timeout: 300_000 }, () => {
  it("kill -9 of a QEMU it started: vm.stopped crashed within 1 s, no command issued", async () => {
    await maqet.add(firmwareVm("fw", { memory: "32M" }));
    const { pid } = await maqet.start("fw");
    const before = (await maqet.history("fw")).at(-1)!.position;
    const stopped = await nextEvent("fw", "vm.stopped");
    const killedAt = Date.now();
    process.kill(pid!, "SIGKILL");
    const event = await stopped();
    const receivedAt = Date.now();
    expect(event.data).toMatchObject({ detail: "crashed", signal: "SIGKILL", pid });
    expect(event.recordedAt.getTime() - killedAt, `received after ${receivedAt - killedAt} ms`).toBeLessThan(1000);
    expect(await typesAfter("fw", before)).toEqual(["vm.stopped"]);
    expect((await maqet.status("fw")).state).toBe("stopped");
  });

  it("closed and reopened, it reattaches without duplicates, then records kill -9 of that QEMU as crashed within 1 s", async () => {
    const { pid } = await maqet.start("fw");
    const before = (await maqet.history("fw")).at(-1)!.position;
    await maqet.close();
    expect(() => process.kill(pid!, 0)).not.toThrow(); // close never touches QEMU
    maqet = suite.maqet = createMaqet(options); // closed after the file
    expect(await maqet.status("fw")).toMatchObject({ state: "running", pid });
    // A clean hand-over: the new instance took the VM without recording anything.
    expect(await typesAfter("fw", before)).toEqual([]);
    const stopped = await nextEvent("fw", "vm.stopped");
    const killedAt = Date.now();
    process.kill(pid!, "SIGKILL");
    const event = await stopped();
    const receivedAt = Date.now();
    expect(event.data).toMatchObject({ detail: "crashed", pid });
    expect(event.recordedAt.getTime() - killedAt, `received after ${receivedAt - killedAt} ms`).toBeLessThan(1000);
    expect(await typesAfter("fw", before)).toEqual(["vm.stopped"]);
    expect(warnings).toEqual([]);
  });

  it("a guest that powers itself off: vm.stopped shutdown (guest), stopped in the list at once", async () => {
    await maqet.add(guestVmConfig(guest, { name: "off", markers: "UP", action: "poweroff", delaySeconds: 1 }));
    const before = (await maqet.history("off")).at(-1)!.position;
    const stopped = await nextEvent("off", "vm.stopped");
    await maqet.start("off", { waitFor: "process" });
    const event = await stopped();
    expect(event.data).toMatchObject({ detail: "shutdown", guest: true, reason: "guest-shutdown" });
    expect((await maqet.list()).find((v) => v.name === "off")).toMatchObject({ state: "stopped", pid: null });
    // No stop was asked for: start, then the guest's own power-off, QEMU (kept by -no-shutdown) ended by quit.
    expect(await typesAfter("off", before)).toEqual(["vm.start-requested", "vm.started", "vm.stop-step", "vm.stopped"]);
    expect((await maqet.history("off")).find((e) => e.type === "vm.stop-step")!.data).toEqual({ step: "quit" });
    expect(event.metadata.correlationId).not.toBe(
      (await maqet.history("off")).find((e) => e.type === "vm.started")!.correlationId,
    );
  });

  it("a guest that reboots itself: vm.reset (guest) recorded as it happens", async () => {
    await maqet.add(guestVmConfig(guest, { name: "boot", action: "reboot", delaySeconds: 2 }));
    const reset = await nextEvent("boot", "vm.reset");
    await maqet.start("boot", { waitFor: "process" });
    const event = await reset();
    expect(event.data).toEqual({ guest: true, reason: "guest-reset" });
    expect((await maqet.status("boot")).state).toBe("running");
    await maqet.stop("boot", { force: true });
  });
});
