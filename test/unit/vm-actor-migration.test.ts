/**
 * VmActor.migrateOut (src/actors/vm-actor.ts) and the machine's `migrating` state: the migration
 * is the VM's one operation; QEMU's events meanwhile are the migration's (no vm.paused at the
 * switchover); afterwards the actor watches the source again, or retires if the VM moved.
 */
import { describe, expect, it } from "vitest";
import { Orchestrator } from "../../src/actors/orchestrator.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { createFakeWorld } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function started() {
  const world = createFakeWorld();
  const store = new MemoryEventStore();
  const orchestrator = new Orchestrator({ ports: world.ports, store });
  const defined = await orchestrator.define(config, { name: "web" });
  const vm = await orchestrator.actor("web");
  await vm.start();
  return { world, store, orchestrator, vm, stream: defined.streamId, qemu: world.qemus[0]! };
}

describe("VmActor.migrateOut", () => {
  it("a VM that is not running cannot be migrated (VM_INVALID_STATE)", async () => {
    const world = createFakeWorld();
    const orchestrator = new Orchestrator({ ports: world.ports, store: new MemoryEventStore() });
    await orchestrator.define(config, { name: "web" });
    const vm = await orchestrator.actor("web");
    let ran = false;
    await expect(
      vm.migrateOut(async () => {
        ran = true;
      }),
    ).rejects.toBeMaqetError("VM_INVALID_STATE");
    expect(ran).toBe(false);
  });

  it("hands over the session and whether the guest ran; QEMU's STOP/RESUME meanwhile are the migration's, not recorded", async () => {
    const { vm, store, stream, qemu } = await started();
    const seen = await vm.migrateOut(async (access) => {
      expect(vm.state).toBe("migrating");
      // The switchover stops the guest; a rollback resumes it.
      qemu.status = "paused";
      qemu.emit("STOP");
      await tick();
      qemu.status = "running";
      qemu.emit("RESUME");
      await tick();
      await access.record([vmEvent("vm.migration-failed", { migrationId: "m-1", phase: "transfer", reason: "x" })]);
      return { wasRunning: access.wasRunning, pid: access.view.pid, open: !access.session.isClosed };
    });
    expect(seen).toEqual({ wasRunning: true, pid: qemu.pid, open: true });
    await tick();
    expect(store.types(stream)).not.toContain("vm.paused");
    expect(store.types(stream)).not.toContain("vm.resumed");
    expect(store.types(stream).at(-1)).toBe("vm.migration-failed");
    // The source is the VM still: watched again, running.
    expect(vm.stale).toBe(false);
    expect(vm.state).toBe("running.active");
    expect(vm.view.status).toBe("running");
  });

  it("a paused guest is handed over as not running, and is paused again after a rollback", async () => {
    const { vm, qemu } = await started();
    await vm.pause();
    const wasRunning = await vm.migrateOut(async (access) => access.wasRunning);
    expect(wasRunning).toBe(false);
    expect(qemu.status).toBe("paused");
    expect(vm.state).toBe("running.paused");
  });

  it("after a move the actor retires (stale); the orchestrator loads the VM afresh", async () => {
    const { vm } = await started();
    await vm.migrateOut(async (access) => {
      access.moved = true;
    });
    expect(vm.stale).toBe(true);
    expect(vm.state).toBe("migratedAway");
  });

  it("a migration that throws still ends the migrating state", async () => {
    const { vm } = await started();
    await expect(
      vm.migrateOut(async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(vm.state).toBe("running.active");
    expect(vm.stale).toBe(false);
  });

  it("the source QEMU dying during the migration is recorded once the actor watches again", async () => {
    const { vm, store, stream, qemu } = await started();
    await expect(
      vm.migrateOut(async () => {
        qemu.die({ code: null, signal: "SIGKILL" });
        throw new Error("QMP disconnected");
      }),
    ).rejects.toThrow("QMP disconnected");
    for (let i = 0; i < 100 && vm.view.status !== "stopped"; i++) await tick();
    expect(store.types(stream).at(-1)).toBe("vm.stopped");
    expect(vm.view.status).toBe("stopped");
    expect(vm.view.lastStop?.detail).toBe("crashed");
  });
});
