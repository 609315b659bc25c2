import { describe, expect, it, vi } from "vitest";
import { Orchestrator } from "../../src/actors/orchestrator.ts";
import { parseWaitCondition } from "../../src/actors/wait-condition.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { errorOf } from "../support/failure.ts";
import { createFakeWorld, FakeLeaseTable, type FakeWorld } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

const config: VmConfig = {
  accel: "tcg",
  memory: "64M",
  args: [],
  arguments: [],
  storage: [{ name: "hdd", type: "qcow2", file: "/tmp/x.qcow2", size: "64M", interface: "virtio" }],
};

async function setup(world: FakeWorld = createFakeWorld()) {
  const store = new MemoryEventStore();
  const orchestrator = new Orchestrator({ ports: world.ports, store });
  const view = await orchestrator.define(config, { name: "web" });
  return { world, store, orchestrator, view, stream: view.streamId };
}

/** "web" started by an instance that then closed (QEMU left running, nobody watching it). */
async function startedThenClosed() {
  const set = await setup();
  const first = await set.orchestrator.actor("web");
  await first.start();
  await first.close();
  return set;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("VM actor lifecycle (fakes, simulated clock)", () => {
  it("start records start-requested, disk.created and started, and runs the guest", async () => {
    const { store, orchestrator, stream } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    expect(store.types(stream)).toEqual(["vm.defined", "vm.start-requested", "disk.created", "vm.started"]);
    expect(vm.state).toBe("running.active");
    expect(vm.view.status).toBe("running");
    expect(vm.view.pid).toBeGreaterThan(0);
  });

  it("a failed launch records start-failed with QEMU's message, removes the disk it created, leaves the VM stopped", async () => {
    const world = createFakeWorld();
    world.failLaunch = "qemu-system-x86_64: -foo: invalid option";
    const { store, orchestrator, stream } = await setup(world);
    const vm = await orchestrator.actor("web");
    const error = await vm.start().catch((e) => e);
    expect(error).toBeMaqetError("START_FAILED");
    expect(error.message).toContain("invalid option");
    // The image the start created is gone again, so no disk.created is recorded for it.
    expect(world.discarded).toEqual(["/tmp/x.qcow2"]);
    expect(store.types(stream)).toEqual(["vm.defined", "vm.start-requested", "vm.start-failed"]);
    expect(vm.view.status).toBe("stopped");
    expect(vm.view.lastError?.message).toContain("invalid option");
  });

  it("graceful stop: powerdown, SHUTDOWN from the guest, QEMU ended; recorded as shutdown", async () => {
    const { store, orchestrator, world, stream } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    await vm.stop({ timeoutMs: 30_000 });
    const stopped = store.events.at(-1)!;
    expect(stopped.type).toBe("vm.stopped");
    expect(stopped.data).toMatchObject({ detail: "shutdown", guest: true, reason: "guest-shutdown" });
    expect(world.qemus[0]!.alive).toBe(false);
    expect(world.qemus[0]!.executed).toContain("system_powerdown");
    expect(store.types(stream)).not.toContain("vm.paused");
    expect(vm.view.status).toBe("stopped");
  });

  it("a guest that ignores ACPI is quit after the timeout; recorded as destroyed via quit", async () => {
    const { store, orchestrator, world } = await setup(createFakeWorld({ obeysPowerdown: false }));
    const vm = await orchestrator.actor("web");
    await vm.start();
    const t0 = world.clock.now();
    await vm.stop({ timeoutMs: 10_000 });
    expect(world.clock.now() - t0).toBeGreaterThanOrEqual(10_000);
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "destroyed", method: "quit" });
  });

  it("escalates to SIGTERM then SIGKILL when quit does not end QEMU", async () => {
    const world = createFakeWorld({ obeysPowerdown: false, diesOnSigterm: false });
    const { store, orchestrator } = await setup(world);
    const vm = await orchestrator.actor("web");
    await vm.start();
    // QMP quit is lost: the fake QEMU ignores it.
    const session = world.qemus[0]!.sessions[0]!;
    const original = session.execute.bind(session);
    session.execute = (async (command: string) =>
      command === "quit" ? {} : original(command)) as typeof session.execute;
    await vm.stop({ timeoutMs: 1000 });
    expect(world.qemus[0]!.signals).toEqual(["SIGTERM", "SIGKILL"]);
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "destroyed", method: "sigkill" });
    // Each step is a fact, in the order taken.
    const steps = store.events.filter((e) => e.type === "vm.stop-step").map((e) => (e.data as { step: string }).step);
    expect(steps).toEqual(["powerdown", "quit", "sigterm", "sigkill"]);
  });

  it("--force kills at once", async () => {
    const { store, orchestrator, world } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    const appends = vi.spyOn(store, "append");
    await vm.stop({ force: true });
    // Two appends: the request with its one step (both known before the kill), then the outcome.
    expect(appends).toHaveBeenCalledTimes(2);
    expect(appends.mock.calls[0]![1].map((e) => e.type)).toEqual(["vm.stop-requested", "vm.stop-step"]);
    expect(world.qemus[0]!.executed).not.toContain("system_powerdown");
    expect(store.events.at(-3)!.data).toMatchObject({ force: true });
    expect(store.events.at(-2)).toMatchObject({ type: "vm.stop-step", data: { step: "sigkill" } });
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "destroyed", method: "sigkill", signal: "SIGKILL" });
  });

  it("QEMU dying under a watching actor is recorded as crashed with its signal", async () => {
    const { store, orchestrator, world } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    world.qemus[0]!.die({ code: null, signal: "SIGKILL" });
    for (let i = 0; i < 20 && vm.view.status !== "stopped"; i++) await tick();
    expect(vm.view.status).toBe("stopped");
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "crashed", signal: "SIGKILL" });
  });

  it("a guest power-off while running is recorded as shutdown (guest) and QEMU is ended", async () => {
    const { store, orchestrator, world } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    const q = world.qemus[0]!;
    q.status = "shutdown";
    q.emit("SHUTDOWN", { guest: true, reason: "guest-shutdown" });
    q.emit("STOP");
    for (let i = 0; i < 50 && vm.view.status !== "stopped"; i++) await tick();
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "shutdown", guest: true, method: "quit" });
    expect(q.alive).toBe(false);
  });

  it("QMP STOP and RESUME are recorded as paused (user) and resumed, in order", async () => {
    const { store, orchestrator, stream } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    await vm.qmp("stop");
    await vm.flush();
    expect(vm.view.status).toBe("paused");
    expect(vm.view.pausedDetail).toBe("user");
    await vm.qmp("cont");
    await vm.flush();
    expect(store.types(stream).slice(-4)).toEqual([
      "qmp.command-executed",
      "vm.paused",
      "qmp.command-executed",
      "vm.resumed",
    ]);
    expect(store.events.find((e) => e.type === "vm.paused")!.data).toMatchObject({ detail: "user" });
    expect(vm.state).toBe("running.active");
  });

  it("a QMP error is recorded with its class and rethrown", async () => {
    const { store, orchestrator } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    const error = await vm.qmp("no-such-command").catch((e) => e);
    expect(error).toBeMaqetError("QMP_ERROR");
    expect(store.events.at(-1)!.data).toMatchObject({
      command: "no-such-command",
      outcome: "error",
      errorClass: "CommandNotFound",
    });
  });

  it("qmp on a stopped VM is refused without touching QEMU", async () => {
    const { orchestrator, store } = await setup();
    const vm = await orchestrator.actor("web");
    const error = await vm.qmp("query-status").catch((e) => e);
    expect(error).toBeMaqetError("VM_INVALID_STATE");
    expect(store.events).toHaveLength(1);
  });

  it("a conflicting append leaves the state unchanged and reports the conflict", async () => {
    const { store, orchestrator, world } = await setup();
    const vm = await orchestrator.actor("web");
    store.failNext.push(new MaqetError("CONCURRENCY_CONFLICT", "conflict"));
    const error = await vm.start().catch((e) => e);
    expect(error).toBeMaqetError("CONCURRENCY_CONFLICT");
    expect(vm.view.status).toBe("stopped");
    expect(world.qemus).toHaveLength(0);
    expect(store.events).toHaveLength(1);
  });

  it("remove refuses a running VM without --force, and stops then removes it with --force", async () => {
    const { store, orchestrator, stream } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    await expect(vm.remove()).rejects.toBeMaqetError("VM_INVALID_STATE");
    await vm.remove({ force: true });
    expect(store.types(stream).slice(-4)).toEqual(["vm.stop-requested", "vm.stop-step", "vm.stopped", "vm.removed"]);
    await expect(orchestrator.find("web")).rejects.toMatchObject({ code: "VM_NOT_FOUND" });
  });

  it("start of a running VM is an error; stop of a stopped VM is a no-op", async () => {
    const { orchestrator, store } = await setup();
    const vm = await orchestrator.actor("web");
    expect((await vm.stop()).noop).toBe(true);
    await vm.start();
    await expect(vm.start()).rejects.toBeMaqetError("VM_INVALID_STATE");
    expect(store.types().filter((t) => t === "vm.start-requested")).toHaveLength(1);
  });
});

describe("rehydration in a new process", () => {
  it("reattaches to a QEMU that is still alive and keeps driving it", async () => {
    const { store, orchestrator, world, view } = await setup();
    await (await orchestrator.actor("web")).start();
    // A new process: a fresh orchestrator over the same store and the same (fake) host.
    const later = new Orchestrator({ ports: world.ports, store });
    const vm = await later.actor(view.vmId);
    expect(vm.state).toBe("running.active");
    expect(await vm.qmp("query-status")).toMatchObject({ status: "running" });
    await vm.stop();
    expect(world.qemus[0]!.alive).toBe(false);
  });

  it("records exited-unsupervised when QEMU vanished while nobody watched", async () => {
    const { store, world } = await startedThenClosed();
    world.qemus[0]!.die({ code: null, signal: "SIGKILL" });
    const later = new Orchestrator({ ports: world.ports, store });
    const [view] = await later.liveViews();
    expect(view!.status).toBe("stopped");
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "exited-unsupervised" });
  });

  it("never trusts a reused pid: a foreign process counts as gone", async () => {
    const { store, world } = await startedThenClosed();
    (world.qemus[0] as { marker: string }).marker = "someone-else";
    const later = new Orchestrator({ ports: world.ports, store });
    const vm = await later.actor("web");
    expect(vm.view.status).toBe("stopped");
    expect(world.qemus[0]!.signals).toEqual([]);
  });

  it("finishes a guest shutdown that happened while nobody watched", async () => {
    const { store, world } = await startedThenClosed();
    world.qemus[0]!.status = "shutdown";
    const later = new Orchestrator({ ports: world.ports, store });
    const vm = await later.actor("web");
    expect(vm.view.status).toBe("stopped");
    expect(store.events.at(-1)!.data).toMatchObject({ detail: "shutdown", guest: true });
    expect(world.qemus[0]!.alive).toBe(false);
  });
});

describe("start preflight", () => {
  it("a missing qemu-img fails the start before anything is recorded", async () => {
    const world = createFakeWorld();
    const locate = world.ports.locator.locate;
    world.ports.locator = {
      locate: async (program) => {
        if (program === "qemu-img")
          throw new MaqetError(
            "BINARY_NOT_FOUND",
            "qemu-img not found on PATH. Install it: apt-get install qemu-utils",
          );
        return locate(program);
      },
    };
    const { store, orchestrator } = await setup(world);
    const vm = await orchestrator.actor("web");
    const error = await vm.start().catch((e) => e);
    expect(error).toBeMaqetError("BINARY_NOT_FOUND");
    expect(store.events).toHaveLength(1);
    expect(world.qemus).toHaveLength(0);
  });
});

describe("concurrent writers", () => {
  it("after a conflict the orchestrator rehydrates the VM instead of conflicting forever", async () => {
    const { store, orchestrator, world, view } = await setup();
    const vm = await orchestrator.actor("web");
    // Another process appends to the stream behind this actor's back.
    await store.append(view.streamId, [{ type: "vm.removed", schemaVersion: 1, data: { force: false } }], {
      expectedVersion: 0,
    });
    await expect(vm.start()).rejects.toBeMaqetError("CONCURRENCY_CONFLICT");
    expect(vm.stale).toBe(true);
    // The next touch sees the truth: the VM was removed.
    await expect(orchestrator.actor("web")).rejects.toMatchObject({ code: "VM_NOT_FOUND" });
    expect(world.qemus).toHaveLength(0);
  });

  it("facts recorded while reconciling carry the touching operation's metadata", async () => {
    const { store, world } = await startedThenClosed();
    world.qemus[0]!.die({ code: null, signal: "SIGKILL" });
    const later = new Orchestrator({ ports: world.ports, store });
    await later.actor("web", { metadata: { correlationId: "op-1", source: "cli" } });
    expect(store.events.at(-1)!.metadata).toMatchObject({ correlationId: "op-1", source: "cli" });
  });
});

describe("reattach sees what happened while nobody watched", () => {
  it("a VM paused meanwhile is recorded as paused; resumed meanwhile, as resumed", async () => {
    const { store, world, stream } = await startedThenClosed();
    world.qemus[0]!.status = "paused";
    const second = await new Orchestrator({ ports: world.ports, store }).actor("web");
    await second.flush();
    expect(second.view.status).toBe("paused");
    expect(store.events.at(-1)).toMatchObject({ type: "vm.paused", data: { detail: "user", reason: "paused" } });
    await second.close();
    world.qemus[0]!.status = "running";
    const third = await new Orchestrator({ ports: world.ports, store }).actor("web");
    await third.flush();
    expect(third.view.status).toBe("running");
    expect(store.types(stream).slice(-2)).toEqual(["vm.paused", "vm.resumed"]);
  });
});

describe("exclusive access for features built on the actor", () => {
  it("hands the live session and a recorder that updates the view, one operation at a time", async () => {
    const { store, orchestrator } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    const order: string[] = [];
    const a = vm.exclusive(async (access) => {
      order.push("a:start");
      expect(access.running).toBe(true);
      expect(await access.session!.execute("query-status")).toMatchObject({ status: "running" });
      await access.record([
        { type: "disk.created", schemaVersion: 1, data: { drive: "x", file: "/x", format: "raw", durationMs: 1 } },
      ]);
      order.push("a:end");
    });
    const b = vm.exclusive(async (access) => {
      order.push("b");
      expect(access.view.version).toBe(store.events.length - 1);
    });
    await Promise.all([a, b]);
    expect(order).toEqual(["a:start", "a:end", "b"]);
    expect(vm.view.version).toBe(store.events.length - 1);
  });
});

describe("pause, resume, reset and QEMU's own run-state changes", () => {
  it("pause and resume record vm.paused (user) and vm.resumed; repeating them is a no-op", async () => {
    const { store, orchestrator, stream } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    expect((await vm.pause()).noop).toBeUndefined();
    expect(vm.view.status).toBe("paused");
    expect((await vm.pause()).noop).toBe(true);
    await vm.resume();
    expect(vm.view.status).toBe("running");
    expect((await vm.resume()).noop).toBe(true);
    expect(store.types(stream).slice(-2)).toEqual(["vm.paused", "vm.resumed"]);
  });

  it("reset records vm.reset with QEMU's reason; pause of a stopped VM is refused", async () => {
    const { store, orchestrator } = await setup();
    const vm = await orchestrator.actor("web");
    await expect(vm.pause()).rejects.toBeMaqetError("VM_INVALID_STATE");
    await vm.start();
    await vm.reset();
    expect(store.events.at(-1)).toMatchObject({
      type: "vm.reset",
      data: { guest: false, reason: "host-qmp-system-reset" },
    });
  });

  it("guest-side run-state changes: reboot, suspend/wakeup, watchdog pause, panic", async () => {
    const { store, orchestrator, world, stream } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    const q = world.qemus[0]!;
    q.emit("RESET", { guest: true, reason: "guest-reset" });
    q.emit("SUSPEND");
    q.emit("WAKEUP");
    q.emit("WATCHDOG", { action: "pause" });
    q.emit("STOP");
    q.emit("RESUME");
    q.emit("GUEST_PANICKED", { action: "pause" });
    q.emit("STOP");
    await vm.flush();
    const tail = store.events.filter((e) => e.streamId === stream).slice(-7);
    expect(
      tail.map((e) => [
        e.type,
        (e.data as { detail?: string; reason?: string }).detail ?? (e.data as { reason?: string }).reason,
      ]),
    ).toEqual([
      ["vm.reset", "guest-reset"],
      ["vm.paused", "suspended"],
      ["vm.resumed", "wakeup"],
      ["vm.paused", "watchdog"],
      ["vm.resumed", undefined],
      ["vm.guest-panicked", undefined],
      ["vm.paused", "guest-panic"],
    ]);
    expect(vm.view.status).toBe("paused");
    expect(vm.view.pausedDetail).toBe("guest-panic");
  });
});

describe("one driver per VM (leases) and crash-only recovery", () => {
  it("a second process gets VM_BUSY naming the holder; reads do not wait", async () => {
    const { store, world } = await setup();
    const table = new FakeLeaseTable();
    const a = new Orchestrator({ ports: { ...world.ports, leases: table.forProcess(100) }, store });
    const b = new Orchestrator({ ports: { ...world.ports, leases: table.forProcess(200) }, store });
    await (await a.actor("web")).start();
    const error = await b.actor("web").catch((e) => e);
    expect(error).toBeMaqetError("VM_BUSY");
    expect(error.message).toMatch(/driven by pid 100/);
    expect((await b.liveView("web")).status).toBe("running");
  });

  it("a dead holder's lease is taken over and the running VM reattached as a fact", async () => {
    const { store, world } = await setup();
    const table = new FakeLeaseTable();
    let aAlive = true;
    const a = new Orchestrator({ ports: { ...world.ports, leases: table.forProcess(100, () => aAlive) }, store });
    await (await a.actor("web")).start();
    aAlive = false; // kill -9 of the process driving it: no close(), no release
    const b = new Orchestrator({ ports: { ...world.ports, leases: table.forProcess(200) }, store });
    const vm = await b.actor("web");
    await vm.flush();
    expect(vm.view.status).toBe("running");
    expect(store.events.at(-1)).toMatchObject({
      type: "vm.reattached",
      data: { status: "running", running: true, previousHolder: { pid: 100 } },
    });
    expect(await vm.qmp("query-status")).toMatchObject({ status: "running" });
  });

  it("a start interrupted before vm.started is rolled back: its QEMU found by pidfile and stopped", async () => {
    const { store, world, view } = await setup();
    // What a starting process that died right after spawning QEMU leaves behind.
    const runtimeDir = world.ports.processes.runtimeDirOf(view.vmId);
    await store.append(view.streamId, [vmEvent("vm.start-requested", { timeoutMs: 30_000, runtimeDir })], {
      expectedVersion: 0,
    });
    await world.ports.processes.launch({
      binary: "/usr/bin/qemu",
      args: ["-uuid", view.vmId],
      runtimeDir,
      logFile: "x",
    });
    const orphan = world.qemus[0]!;
    const vm = await new Orchestrator({ ports: world.ports, store }).actor("web");
    expect(orphan.alive).toBe(false);
    expect(vm.view.status).toBe("stopped");
    expect(store.events.at(-1)).toMatchObject({ type: "vm.start-failed", data: { reason: "interrupted" } });
    expect((store.events.at(-1)!.data as { message: string }).message).toContain(`pid ${orphan.pid}`);
  });

  it("a stop interrupted mid-way: QEMU still alive is reattached (running), not left 'stopping'", async () => {
    const { store, world, view } = await setup();
    const first = await new Orchestrator({ ports: world.ports, store }).actor("web");
    await first.start();
    await first.close();
    await store.append(view.streamId, [vmEvent("vm.stop-requested", { force: false, timeoutMs: 30_000 })], {
      expectedVersion: first.view.version,
    });
    const vm = await new Orchestrator({ ports: world.ports, store }).actor("web");
    await vm.flush();
    expect(vm.view.status).toBe("running");
    expect(store.events.at(-1)).toMatchObject({ type: "vm.reattached", data: { running: true } });
  });
});

describe("wait conditions on start", () => {
  it("file: passes when the file appears, and times out (TIMEOUT, vm.wait-failed) leaving the VM running", async () => {
    const { store, orchestrator, world } = await setup();
    const vm = await orchestrator.actor("web");
    world.files.set("/shared/ready", "");
    await vm.start({ waitFor: { kind: "file", path: "/shared/ready" }, timeoutMs: 5000 });
    await vm.stop({ force: true });
    const error = await vm.start({ waitFor: { kind: "file", path: "/shared/never" }, timeoutMs: 3000 }).catch((e) => e);
    expect(error).toBeMaqetError("TIMEOUT");
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(/still running/);
    expect(store.events.at(-1)).toMatchObject({
      type: "vm.wait-failed",
      data: { condition: "file:/shared/never", timeoutMs: 3000 },
    });
    expect(vm.view.status).toBe("running");
  });

  it("serial: matches the pattern in this run's serial log", async () => {
    const { orchestrator, world, view } = await setup();
    const vm = await orchestrator.actor("web");
    world.files.set(`/run/maqet/${view.vmId}/serial.log`, "SeaBIOS\nMAQET-MARKER hello\n");
    await vm.start({ waitFor: { kind: "serial", pattern: /MARKER (\w+)/ }, timeoutMs: 2000 });
    expect(vm.view.status).toBe("running");
  });

  it("qmp (default) waits until QEMU says the guest runs; process does not ask", async () => {
    const { orchestrator, world } = await setup();
    const vm = await orchestrator.actor("web");
    await vm.start();
    // query-kvm: what runs is recorded (vm.started accel), asked before the guest runs.
    expect(world.qemus[0]!.executed).toEqual(["query-kvm", "cont", "query-status"]);
    await vm.stop({ force: true });
    await vm.start({ waitFor: { kind: "process" } });
    expect(world.qemus[1]!.executed).toEqual(["query-kvm", "cont"]);
  });
});

describe("wait condition parsing", () => {
  it.each([
    ["qmp", { kind: "qmp" }],
    ["process", { kind: "process" }],
    ["file:/tmp/x", { kind: "file", path: "/tmp/x" }],
  ])("%s", (text, parsed) => {
    expect(parseWaitCondition(text)).toEqual(parsed);
  });
  it("serial:REGEX compiles the pattern; bad input says what is accepted", () => {
    expect((parseWaitCondition("serial:login:\\s*$") as { pattern: RegExp }).pattern.source).toBe("login:\\s*$");
    for (const bad of ["serial:(", "file:relative", "boot", "file:"]) {
      const error = errorOf(() => parseWaitCondition(bad));
      expect(error, bad).toBeMaqetError("INVALID_ARGUMENT");
    }
  });
});
