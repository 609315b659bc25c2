/**
 * The VM state chart by itself (src/actors/vm-machine.ts), every effect replaced with
 * `.provide()`: what it asks each effect (the input), what it records, which facts it files as
 * spontaneous (QEMU's or the guest's doing, under a correlation id of their own), and where it
 * goes. vm-actor.test.ts drives the same chart through the real actor and the fake world; these
 * cases pin the inputs and flags that do not show there.
 */

import { describe, expect, it } from "vitest";
import { createActor, waitFor } from "xstate";
import { vmMachine } from "../../src/actors/vm-machine.ts";
import {
  config,
  drive,
  ev,
  fakeSession,
  launchedVm,
  started,
  startRequested,
  storedFrom,
  viewOf,
  vmId,
} from "../support/vm-chart.ts";

describe("the VM chart: starting", () => {
  it("records start-requested with the START's time limit and run directory, and launches with that limit", async () => {
    const session = fakeSession();
    const m = drive(viewOf(), { launch: async () => launchedVm(session) });
    await m.settled("stopped");
    m.actor.send({ type: "START", opId: "1", timeoutMs: 7000, runtimeDir: "/run/other" });
    await m.settled("running");
    expect(m.recorded[0]!.events).toEqual([ev("vm.start-requested", { timeoutMs: 7000, runtimeDir: "/run/other" })]);
    expect(m.inputs.launch).toEqual([{ vmId, name: "web", config, timeoutMs: 7000 }]);
    expect(m.actor.getSnapshot().context.outcome).toEqual({ opId: "1", ok: true });
    // The watch gets the launched session and process.
    expect(m.inputs.watch!.at(-1)).toMatchObject({ pid: 4242, marker: vmId, session });
  });

  it("a START without a run directory records none", async () => {
    const m = drive(viewOf(), { launch: async () => launchedVm() });
    m.actor.send({ type: "START", opId: "1", timeoutMs: 100 });
    await m.settled("running");
    expect(m.recorded[0]!.events[0]!.data).toEqual({ timeoutMs: 100 });
  });

  it("QEMU launched but vm.started not recorded: the QEMU is stopped at once (force), the start fails", async () => {
    const session = fakeSession();
    const m = drive(viewOf(), {
      launch: async () => launchedVm(session),
      record: async (input) => {
        if (input.events.some((e) => e.type === "vm.started")) throw new Error("store down");
      },
      stop: async () => ({ detail: "destroyed", method: "sigkill" }),
    });
    m.actor.send({ type: "START", opId: "1", timeoutMs: 100 });
    await m.settled("stopped");
    expect(m.inputs.stop).toEqual([
      expect.objectContaining({ pid: 4242, marker: vmId, session, force: true, timeoutMs: 0 }),
    ]);
    expect(m.actor.getSnapshot().context.outcome).toMatchObject({ opId: "1", ok: false });
  });
});

describe("the VM chart: while running", () => {
  const running = () => viewOf(startRequested, started);

  it("boots into reconciling for a VM that may have a process, asking reattach for the recorded pid and socket", async () => {
    const m = drive(running(), { reattach: async () => ({ kind: "gone" }) });
    await m.settled("stopped");
    expect(m.inputs.reattach).toEqual([
      { pid: 4242, marker: vmId, qmpSocket: "/run/maqet/web/qmp.sock", pidFile: undefined },
    ]);
  });

  it("a start interrupted before vm.started: reattach looks in the run's pidfile", async () => {
    const m = drive(viewOf(startRequested), { reattach: async () => ({ kind: "gone" }) });
    await m.settled("stopped");
    expect(m.inputs.reattach).toEqual([
      { pid: undefined, marker: vmId, qmpSocket: undefined, pidFile: "/run/maqet/web/qemu.pid" },
    ]);
    // Stopping (not starting) with a run directory: no pidfile look-up.
    const stopping = drive(viewOf(startRequested, started, ev("vm.stop-requested", { force: false, timeoutMs: 1 })), {
      reattach: async () => ({ kind: "gone" }),
    });
    await stopping.settled("stopped");
    expect(stopping.inputs.reattach![0]).toMatchObject({ pidFile: undefined });
  });

  it("reattached to a paused QEMU: the chart is paused and the watch has the session", async () => {
    const session = fakeSession();
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session, status: "paused", running: false, pid: 4242 }),
    });
    await m.settled({ running: "paused" } as never);
    expect(m.actor.getSnapshot().context.session).toBe(session);
    expect(m.inputs.watch!.at(-1)).toMatchObject({ session });
    // The pause that happened while nobody watched is observed now.
    expect(m.observed.flatMap((o) => o.events.map((e) => e.type))).toEqual(["vm.paused"]);
  });

  it("reattached to a running QEMU: active; unreachable QMP: active without a session", async () => {
    const session = fakeSession();
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session, status: "running", running: true, pid: 4242 }),
    });
    await m.settled({ running: "active" } as never);
    const unreachable = drive(running(), {
      reattach: async () => ({ kind: "unreachable", pid: 4242, error: new Error("refused") }),
    });
    await unreachable.settled({ running: "active" } as never);
    expect(unreachable.actor.getSnapshot().context.session).toBeUndefined();
    expect(unreachable.inputs.watch!.at(-1)).toBeUndefined();
  });

  it("when reattach itself fails, the chart goes by the stream: paused if it says paused, else active", async () => {
    // No reattach effect in these drives: it throws.
    const m = drive(viewOf(startRequested, started, ev("vm.paused", { detail: "user" })));
    await m.settled({ running: "paused" } as never);
    const active = drive(running());
    await active.settled({ running: "active" } as never);
  });

  it("reattach finds a shutdown QEMU: it is finished and recorded as a guest shutdown, spontaneous", async () => {
    const session = fakeSession();
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session, status: "shutdown", running: false, pid: 4242 }),
      finish: async () => "quit",
    });
    await m.settled("stopped");
    expect(m.inputs.finish).toEqual([{ name: "web", pid: 4242, marker: vmId, session }]);
    expect(m.recorded.at(-1)).toMatchObject({ spontaneous: true });
    expect(m.recorded.at(-1)!.events[0]).toMatchObject({
      type: "vm.stopped",
      data: { detail: "shutdown", guest: true, method: "quit" },
    });
    expect(session.closes).toBe(1);
  });

  it("a host quit (QMP SHUTDOWN, not the guest's) is recorded under the operation, not as spontaneous", async () => {
    const session = fakeSession();
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session, status: "running", running: true, pid: 4242 }),
    });
    await m.settled({ running: "active" } as never);
    m.actor.send({ type: "QMP.SHUTDOWN", guest: false, reason: "host-qmp-quit" });
    await m.settled("stopped");
    expect(m.recorded.at(-1)).toMatchObject({ spontaneous: false });
    expect(m.recorded.at(-1)!.events[0]).toMatchObject({ data: { detail: "shutdown", guest: false, method: "none" } });
    expect(session.closes).toBe(1);
  });

  it("a crash (the process exits without SHUTDOWN) is recorded as spontaneous", async () => {
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session: fakeSession(), status: "running", running: true, pid: 4242 }),
    });
    await m.settled({ running: "active" } as never);
    m.actor.send({ type: "PROCESS.EXITED", exitCode: null, signal: "SIGSEGV" });
    await m.settled("stopped");
    expect(m.recorded.at(-1)).toMatchObject({ spontaneous: true, events: [{ type: "vm.stopped" }] });
  });

  it("QEMU's own pauses are spontaneous, a host pause (stop, snapshot) or an unknown one is not", async () => {
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session: fakeSession(), status: "running", running: true, pid: 4242 }),
    });
    await m.settled({ running: "active" } as never);
    const pauseAndResume = async (status: string | undefined) => {
      m.actor.send({ type: "QMP.STOP", status });
      m.actor.send({ type: "QMP.RESUME" });
      return m.observed.at(-2)!;
    };
    expect(await pauseAndResume("io-error")).toMatchObject({
      spontaneous: true,
      events: [{ data: { detail: "ioerror", reason: "io-error" } }],
    });
    expect(await pauseAndResume("paused")).toMatchObject({ spontaneous: false });
    expect(await pauseAndResume("snapshot")).toMatchObject({ spontaneous: false });
    expect(await pauseAndResume(undefined)).toMatchObject({ spontaneous: false });
    expect(m.observed.at(-1)).toEqual({ events: [ev("vm.resumed", {})] });
  });

  it("a guest panic is observed with QEMU's action, as spontaneous; a guest reset too, a host reset not", async () => {
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session: fakeSession(), status: "running", running: true, pid: 4242 }),
    });
    await m.settled({ running: "active" } as never);
    m.actor.send({ type: "QMP.GUEST_PANICKED", action: "pause" });
    expect(m.observed.at(-1)).toEqual({ events: [ev("vm.guest-panicked", { action: "pause" })], spontaneous: true });
    m.actor.send({ type: "QMP.RESET", guest: true, reason: "guest-reset" });
    expect(m.observed.at(-1)).toMatchObject({ spontaneous: true });
    m.actor.send({ type: "QMP.RESET", guest: false, reason: "host-qmp-system-reset" });
    expect(m.observed.at(-1)).toMatchObject({ spontaneous: false });
  });

  it("START of a running VM fails naming the pid; REMOVE without force names the way out", async () => {
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session: fakeSession(), status: "running", running: true, pid: 4242 }),
    });
    await m.settled({ running: "active" } as never);
    m.actor.send({ type: "START", opId: "s", timeoutMs: 1 });
    const started = m.actor.getSnapshot().context.outcome!;
    expect(started).toMatchObject({ opId: "s", ok: false });
    expect(started.error).toBeMaqetError("VM_INVALID_STATE");
    expect((started.error as Error).message).toBe("VM 'web' is already running (pid 4242).");
    m.actor.send({ type: "REMOVE", opId: "r", force: false, timeoutMs: 1 });
    const removed = m.actor.getSnapshot().context.outcome!;
    expect(removed.error).toBeMaqetError("VM_INVALID_STATE");
    expect((removed.error as Error).message).toContain("maqet rm --force web");
    expect((removed.error as Error).message).toContain("maqet stop web");
  });

  it("REMOVE --force of a running VM: stop-requested with its sigkill step (one record), stopped, then removed with force", async () => {
    const session = fakeSession();
    const m = drive(running(), {
      reattach: async () => ({ kind: "attached", session, status: "running", running: true, pid: 4242 }),
      stop: async () => ({ detail: "destroyed", method: "sigkill" }),
    });
    await m.settled({ running: "active" } as never);
    m.actor.send({ type: "REMOVE", opId: "r", force: true, timeoutMs: 9 });
    await m.settled("removed");
    expect(m.types()).toEqual(["vm.stop-requested", "vm.stop-step", "vm.stopped", "vm.removed"]);
    // A forced stop's one step is known with the request: one record, and the stop effect is told
    // not to record it again.
    const request = m.recorded.find((r) => r.events[0]!.type === "vm.stop-requested")!;
    expect(request.events.map((e) => e.type)).toEqual(["vm.stop-requested", "vm.stop-step"]);
    expect(request.events[1]!.data).toEqual({ step: "sigkill" });
    expect(m.recorded.at(-1)!.events[0]!.data).toEqual({ force: true });
    expect(m.inputs.stop).toEqual([
      expect.objectContaining({ pid: 4242, force: true, timeoutMs: 9, session, recordedStep: "sigkill" }),
    ]);
    expect(m.actor.getSnapshot().context.outcome).toEqual({ opId: "r", ok: true });
    expect(session.closes).toBe(1);
  });
});

describe("the VM chart: stopped and removed", () => {
  it("REMOVE of a stopped VM records vm.removed without force", async () => {
    const m = drive(viewOf());
    await m.settled("stopped");
    m.actor.send({ type: "REMOVE", opId: "r", force: false, timeoutMs: 1 });
    await m.settled("removed");
    expect(m.recorded.at(-1)!.events).toEqual([ev("vm.removed", { force: false })]);
  });

  it("a removed VM's chart is final at once: it takes no START", async () => {
    const m = drive(viewOf(ev("vm.removed", { force: false })), { launch: async () => launchedVm() });
    expect(m.actor.getSnapshot().status).toBe("done");
    expect(m.actor.getSnapshot().value).toBe("removed");
    expect(m.inputs.launch).toEqual([]);
  });

  it("RECORDED facts it already has (by version) are not applied again", async () => {
    const m = drive(viewOf(startRequested, started, ev("vm.stopped", { detail: "shutdown" })));
    await m.settled("stopped");
    const before = m.actor.getSnapshot().context.view;
    // Versions it has (an older one, and the latest) again, now saying something else: not folded in twice.
    for (const version of [1, 3]) {
      m.actor.send({ type: "RECORDED", events: storedFrom([ev("vm.start-requested", { timeoutMs: 1 })], version) });
      expect(m.actor.getSnapshot().context.view).toEqual(before);
    }
    const newer = storedFrom([ev("vm.tainted", { reason: "custom-monitor", command: "x" })], 4);
    m.actor.send({ type: "RECORDED", events: newer });
    expect(m.actor.getSnapshot().context.view).toMatchObject({ version: 4, taint: { command: "x" } });
  });
});

describe("the VM chart: edge inputs", () => {
  it("a running VM whose pid the stream never got: stop and finish are given pid -1 (no process), never a real pid", async () => {
    // A start interrupted before vm.started, reattach failing: running with no pid in the view.
    const m = drive(viewOf(startRequested), { stop: async () => ({ detail: "exited-unsupervised", method: "none" }) });
    await m.settled({ running: "active" } as never);
    m.actor.send({ type: "STOP", opId: "s", force: false, timeoutMs: 1 });
    await m.settled("stopped");
    expect(m.inputs.stop).toEqual([expect.objectContaining({ pid: -1, marker: vmId })]);
    const ending = drive(viewOf(startRequested));
    await ending.settled({ running: "active" } as never);
    ending.actor.send({ type: "QMP.SHUTDOWN", guest: true });
    await ending.settled("stopped");
    expect(ending.inputs.finish).toEqual([expect.objectContaining({ pid: -1, marker: vmId })]);
  });

  it("an effect not provided fails the operation with INTERNAL naming it", async () => {
    const bare = createActor(vmMachine, { input: { view: viewOf() } }).start();
    bare.send({ type: "START", opId: "1", timeoutMs: 1 });
    const outcome = await waitFor(bare, (s) => s.matches("stopped") && s.context.outcome !== undefined, {
      timeout: 5000,
    });
    const error = outcome.context.outcome!.error;
    expect(error).toBeMaqetError("INTERNAL");
    expect((error as Error).message).toBe("VM machine effect 'record' was not provided.");
  });
});
