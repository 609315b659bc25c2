/**
 * Supervision's state logic with fakes: a scripted QEMU, leases shared by fake processes, and a
 * manual clock pacing the sweeps (the VMs' own waits run on the simulated clock).
 */
import { describe, expect, it } from "vitest";
import { Orchestrator } from "../../src/actors/orchestrator.ts";
import { Supervisor } from "../../src/actors/supervisor.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createFakeWorld, FakeLeaseTable, type FakeWorld } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Waits (in turns, not time) until `check` holds. */
async function until(check: () => boolean, what: string, turns = 500): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (check()) return;
    await tick();
  }
  throw new Error(`never happened: ${what}`);
}

interface Setup {
  world: FakeWorld;
  store: MemoryEventStore;
  leases: FakeLeaseTable;
  /** A short-lived process (pid 100): defines and starts VMs, then exits (leases released). */
  cli: Orchestrator;
  /** The supervising process (pid 200). */
  orchestrator: Orchestrator;
  supervisor: Supervisor;
  sweepClock: FakeClock;
  warnings: string[];
}

async function setup(running: string[], stopped: string[] = []): Promise<Setup> {
  const world = createFakeWorld();
  const store = new MemoryEventStore();
  const leases = new FakeLeaseTable();
  const cli = new Orchestrator({ ports: { ...world.ports, leases: leases.forProcess(100) }, store });
  for (const name of [...running, ...stopped]) await cli.define(config, { name });
  for (const name of running) await (await cli.actor(name)).start();
  await cli.close();
  const warnings: string[] = [];
  const orchestrator = new Orchestrator({
    ports: { ...world.ports, leases: leases.forProcess(200) },
    store,
    onWarning: (m) => warnings.push(m),
  });
  const sweepClock = new FakeClock();
  const supervisor = new Supervisor(orchestrator, {
    clock: sweepClock,
    sweepMs: 2000,
    onWarning: (m) => warnings.push(m),
  });
  return { world, store, leases, cli, orchestrator, supervisor, sweepClock, warnings };
}

const last = (store: MemoryEventStore, type: string): StoredEvent | undefined =>
  store.events.filter((e) => e.type === type).at(-1);

describe("supervisor: loading at start", () => {
  it("loads every VM that is not removed, reattaches running QEMUs, holds their leases", async () => {
    const s = await setup(["web", "db"], ["idle"]);
    await (await new Orchestrator({ ports: s.world.ports, store: s.store }).actor("idle")).remove();
    const before = s.store.events.length;
    const report = await s.supervisor.start();
    expect(report.loaded.sort()).toEqual(["db", "web"]);
    expect(report.supervised).toBe(2);
    // A clean hand-over (the CLI released its leases): nothing to record.
    expect(s.store.events.length).toBe(before);
    expect([...s.leases.rows.values()].map((r) => r.holder.pid)).toEqual([200, 200]);
    expect(s.world.qemus.every((q) => q.sessions.some((x) => !x.isClosed))).toBe(true);
    await s.supervisor.stop();
    await s.orchestrator.close();
  });

  it("a QEMU gone while nobody watched is recorded once, at start, under the sweep's correlation id", async () => {
    const s = await setup(["web"]);
    s.world.qemus[0]!.die({ code: null, signal: "SIGKILL" });
    await s.supervisor.start();
    const stopped = s.store.events.filter((e) => e.type === "vm.stopped");
    expect(stopped).toHaveLength(1);
    expect(stopped[0]!.data).toMatchObject({ detail: "exited-unsupervised" });
    expect(stopped[0]!.metadata.correlationId).toEqual(expect.any(String));
    await s.supervisor.stop();
    await s.orchestrator.close();
  });
});

describe("supervisor: what QEMU and the guest do, recorded with no command running", () => {
  it("kill -9 of QEMU: vm.stopped detail crashed, its own correlation id; stopped in the list at once", async () => {
    const s = await setup(["web"]);
    await s.supervisor.start();
    s.world.qemus[0]!.die({ code: null, signal: "SIGKILL" });
    await until(() => last(s.store, "vm.stopped") !== undefined, "vm.stopped");
    const stopped = last(s.store, "vm.stopped")!;
    expect(stopped.data).toMatchObject({ detail: "crashed", pid: s.world.qemus[0]!.pid });
    expect(stopped.data).not.toMatchObject({ detail: "exited-unsupervised" });
    const started = last(s.store, "vm.started")!;
    expect(stopped.metadata.correlationId).toEqual(expect.any(String));
    expect(stopped.metadata.correlationId).not.toBe(started.metadata.correlationId);
    expect((await s.orchestrator.liveViews()).map((v) => v.status)).toEqual(["stopped"]);
    await s.supervisor.stop();
    await s.orchestrator.close();
  });

  it("a guest power-off (SHUTDOWN guest, then STOP under -no-shutdown): QEMU ended, recorded as shutdown", async () => {
    const s = await setup(["web"]);
    await s.supervisor.start();
    const qemu = s.world.qemus[0]!;
    qemu.emit("SHUTDOWN", { guest: true, reason: "guest-shutdown" });
    qemu.emit("STOP");
    await until(() => last(s.store, "vm.stopped") !== undefined, "vm.stopped");
    expect(last(s.store, "vm.stopped")!.data).toMatchObject({
      detail: "shutdown",
      guest: true,
      reason: "guest-shutdown",
      method: "quit",
    });
    expect(qemu.alive).toBe(false);
    expect(qemu.executed).toContain("quit");
    // The STOP that -no-shutdown sends after SHUTDOWN is not a pause.
    expect(s.store.types().filter((t) => t === "vm.paused")).toHaveLength(0);
    expect((await s.orchestrator.liveView("web")).status).toBe("stopped");
    await s.supervisor.stop();
    await s.orchestrator.close();
  });

  it("guest reset, pause on I/O error and resume, guest panic: each recorded as it happens", async () => {
    const s = await setup(["web"]);
    await s.supervisor.start();
    const qemu = s.world.qemus[0]!;
    qemu.emit("RESET", { guest: true, reason: "guest-reset" });
    await until(() => last(s.store, "vm.reset") !== undefined, "vm.reset");
    expect(last(s.store, "vm.reset")!.data).toEqual({ guest: true, reason: "guest-reset" });
    qemu.emit("BLOCK_IO_ERROR", { action: "stop", operation: "write" });
    qemu.emit("STOP");
    await until(() => last(s.store, "vm.paused") !== undefined, "vm.paused");
    expect(last(s.store, "vm.paused")!.data).toMatchObject({ detail: "ioerror", reason: "io-error" });
    expect((await s.orchestrator.liveView("web")).status).toBe("paused");
    qemu.emit("RESUME");
    await until(() => last(s.store, "vm.resumed") !== undefined, "vm.resumed");
    qemu.emit("GUEST_PANICKED", { action: "run" });
    await until(() => last(s.store, "vm.guest-panicked") !== undefined, "vm.guest-panicked");
    const spontaneous = ["vm.reset", "vm.paused", "vm.resumed", "vm.guest-panicked"].map((t) => last(s.store, t)!);
    // Each is its own happening: four correlation ids.
    expect(new Set(spontaneous.map((e) => e.metadata.correlationId)).size).toBe(4);
    expect((await s.orchestrator.liveView("web")).status).toBe("running");
    await s.supervisor.stop();
    await s.orchestrator.close();
  });

  it("a fact that cannot be recorded is told to onWarning", async () => {
    const s = await setup(["web"]);
    await s.supervisor.start();
    const append = s.store.append.bind(s.store);
    s.store.append = async () => {
      throw new Error("disk full");
    };
    s.world.qemus[0]!.emit("RESET", { guest: true, reason: "guest-reset" });
    await until(() => s.warnings.length > 0, "a warning");
    expect(s.warnings[0]).toBe("VM 'web': could not record vm.reset: disk full");
    s.store.append = append;
    await s.supervisor.stop();
    await s.orchestrator.close();
  });
});

describe("supervisor: sweeps, leases, close", () => {
  it("a VM driven by another process is taken once that process lets go (told once, not at every sweep)", async () => {
    const s = await setup([], ["web"]);
    const other = new Orchestrator({ ports: { ...s.world.ports, leases: s.leases.forProcess(300) }, store: s.store });
    await (await other.actor("web")).start();
    const first = await s.supervisor.start();
    expect(first.busy).toEqual(["web"]);
    await s.sweepClock.advance(2000);
    await s.sweepClock.advance(2000);
    expect(s.warnings.filter((w) => w.includes("driven by another process"))).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/^supervision: VM 'web' is driven by another process/);
    await other.close();
    await s.sweepClock.advance(2000);
    expect(s.orchestrator.holds((await s.orchestrator.find("web")).vmId)).toBe(true);
    // Now watched here: a crash is recorded as crashed.
    s.world.qemus[0]!.die({ code: null, signal: "SIGKILL" });
    await until(() => last(s.store, "vm.stopped") !== undefined, "vm.stopped");
    expect(last(s.store, "vm.stopped")!.data).toMatchObject({ detail: "crashed" });
    await s.supervisor.stop();
    await s.orchestrator.close();
  });

  it("the next sweep takes a VM added since and lets go of a removed one (its lease released)", async () => {
    const s = await setup([], ["old"]);
    await s.supervisor.start();
    const oldId = (await s.orchestrator.find("old")).vmId;
    await s.orchestrator.define(config, { name: "new" });
    await (await s.orchestrator.actor("old")).remove();
    const report = await s.supervisor.sweep();
    expect(report.loaded).toEqual(["new"]);
    expect(report.released).toEqual(["old"]);
    expect(s.leases.rows.has(oldId)).toBe(false);
    expect(s.orchestrator.holds(oldId)).toBe(false);
    await s.supervisor.stop();
    await s.orchestrator.close();
  });

  it("stop and close: no more sweeps, QEMU left running, every lease released", async () => {
    const s = await setup(["a", "b"]);
    await s.supervisor.start();
    await s.supervisor.stop();
    expect(s.sweepClock.pendingSleeps).toBe(0);
    await s.orchestrator.close();
    expect(s.world.qemus.every((q) => q.alive && q.signals.length === 0)).toBe(true);
    expect(s.world.qemus.flatMap((q) => q.executed)).not.toContain("quit");
    expect(s.leases.rows.size).toBe(0);
    // A new supervisor reattaches both without recording anything twice.
    const before = s.store.events.length;
    const again = new Orchestrator({ ports: { ...s.world.ports, leases: s.leases.forProcess(201) }, store: s.store });
    const report = await new Supervisor(again, { clock: new FakeClock() }).start();
    expect(report.loaded.sort()).toEqual(["a", "b"]);
    expect(s.store.events.length).toBe(before);
    await again.close();
  });
});
