/**
 * The VM view folded from a stream (src/actors/vm-view.ts): what each fact changes, what a new run
 * clears, what `ls` and `status` show as the detail, and when a QEMU process may exist. The actor,
 * `ls`, `status` and `history --at` all read this fold, so each rule is pinned here by itself.
 */
import { describe, expect, it } from "vitest";
import { applyVmEvent, foldVmEvents, mayHaveProcess, statusDetail, type VmView } from "../../src/actors/vm-view.ts";
import { validateVmConfig } from "../../src/config/parse-vm-config.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import { type VmEventData, type VmEventType, vmEvent } from "../../src/events/vm-events.ts";
import { storedStream } from "../support/store-events.ts";

const vmId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const streamId = `vm-${vmId}`;
const config = validateVmConfig({ name: "web", memory: "64M" }, { source: "test", baseDir: "/tmp" });
const t0 = Date.UTC(2026, 0, 1);

/** The stream's facts as the store returns them: versions 0.., one second apart from t0. */
const stream = (...events: NewEvent[]): StoredEvent[] => storedStream(streamId, events);

const ev = <K extends VmEventType>(type: K, data: VmEventData[K]) => vmEvent(type, data);
const defined = ev("vm.defined", { vmId, name: "web", config, configPath: "/srv/web.yaml" });
const startRequested = ev("vm.start-requested", { timeoutMs: 30_000, runtimeDir: "/run/maqet/web" });
const started = ev("vm.started", {
  pid: 4242,
  qmpSocket: "/run/maqet/web/qmp.sock",
  runtimeDir: "/run/maqet/web",
  pidFile: "/run/maqet/web/qemu.pid",
  argv: ["qemu-system-x86_64"],
  binary: "/usr/bin/qemu-system-x86_64",
  accel: "tcg",
  qemuVersion: "9.2.0",
  durationMs: 120,
  forwards: [{ hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }],
});
const stopped = ev("vm.stopped", { detail: "shutdown", method: "powerdown", guest: true, reason: "guest-shutdown" });

const fold = (...events: NewEvent[]): VmView => {
  const view = foldVmEvents(stream(...events));
  if (view === undefined) throw new Error("the stream folded to nothing");
  return view;
};

describe("foldVmEvents", () => {
  it("an empty stream, or one without vm.defined first, is no VM", () => {
    expect(foldVmEvents([])).toBeUndefined();
    expect(foldVmEvents(stream(startRequested, started))).toBeUndefined();
  });

  it("vm.defined: a stopped VM with its name, id, stream, config and times", () => {
    expect(fold(defined)).toEqual({
      vmId,
      name: "web",
      streamId,
      config,
      configPath: "/srv/web.yaml",
      status: "stopped",
      version: 0,
      definedAt: new Date(t0),
      updatedAt: new Date(t0),
    });
  });

  it("a start: starting with the run's directory, then running with what vm.started says", () => {
    const starting = fold(defined, startRequested);
    expect(starting).toMatchObject({ status: "starting", runtimeDir: "/run/maqet/web", version: 1 });
    expect(starting.updatedAt).toEqual(new Date(t0 + 1000));
    const running = fold(defined, startRequested, started);
    expect(running).toMatchObject({
      status: "running",
      pid: 4242,
      qmpSocket: "/run/maqet/web/qmp.sock",
      runtimeDir: "/run/maqet/web",
      pidFile: "/run/maqet/web/qemu.pid",
      qemuVersion: "9.2.0",
      accelUsed: "tcg",
      forwards: [{ hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }],
      version: 2,
    });
    expect(running.startedAt).toEqual(new Date(t0 + 2000));
    expect(running.definedAt).toEqual(new Date(t0));
  });

  it("a start request without a runtime dir keeps the last run's", () => {
    const again = fold(defined, startRequested, started, stopped, ev("vm.start-requested", { timeoutMs: 1 }));
    expect(again.runtimeDir).toBe("/run/maqet/web");
  });

  it("a new run clears the last run's ending, error, taint and forwards", () => {
    const tainted = ev("vm.tainted", { reason: "custom-monitor", command: "human-monitor-command" });
    const ended = fold(defined, startRequested, started, tainted, stopped);
    expect(ended).toMatchObject({ taint: { command: "human-monitor-command" }, lastStop: { detail: "shutdown" } });
    expect(ended.forwards).toHaveLength(1);
    const next = fold(defined, startRequested, started, tainted, stopped, startRequested);
    expect(next.status).toBe("starting");
    expect(next.lastStop).toBeUndefined();
    expect(next.taint).toBeUndefined();
    expect(next.forwards).toBeUndefined();
    const failed = ev("vm.start-failed", { reason: "qemu-exited", message: "boom", durationMs: 5 });
    expect(fold(defined, startRequested, failed, startRequested).lastError).toBeUndefined();
  });

  it("vm.start-failed: stopped, the error kept with its time, no pid", () => {
    const failed = ev("vm.start-failed", { reason: "qemu-exited", message: "could not open disk", durationMs: 5 });
    const view = fold(defined, startRequested, started, failed);
    expect(view.status).toBe("stopped");
    expect(view.pid).toBeUndefined();
    expect(view.lastError).toEqual({ reason: "qemu-exited", message: "could not open disk", at: new Date(t0 + 3000) });
  });

  it("a stop: stopping, then stopped with how and why, no pid and no paused detail", () => {
    expect(fold(defined, startRequested, started, ev("vm.stop-requested", { force: false, timeoutMs: 1 })).status).toBe(
      "stopping",
    );
    const paused = ev("vm.paused", { detail: "user" });
    const view = fold(defined, startRequested, started, paused, stopped);
    expect(view.status).toBe("stopped");
    expect(view.pid).toBeUndefined();
    expect(view.pausedDetail).toBeUndefined();
    expect(view.lastStop).toEqual({
      detail: "shutdown",
      method: "powerdown",
      guest: true,
      reason: "guest-shutdown",
      at: new Date(t0 + 4000),
    });
  });

  it("vm.started after a pause clears the paused detail", () => {
    const view = fold(
      defined,
      startRequested,
      started,
      ev("vm.paused", { detail: "user" }),
      stopped,
      startRequested,
      started,
    );
    expect(view.pausedDetail).toBeUndefined();
  });

  it("vm.reattached: running, or paused with the detail of QEMU's run state; the pid it found", () => {
    const reattached = (running: boolean, status: string) => ev("vm.reattached", { pid: 77, status, running });
    expect(fold(defined, startRequested, started, reattached(true, "running"))).toMatchObject({
      status: "running",
      pid: 77,
    });
    const paused = fold(defined, startRequested, started, reattached(false, "io-error"));
    expect(paused).toMatchObject({ status: "paused", pid: 77, pausedDetail: "ioerror" });
    const resumed = fold(defined, startRequested, started, reattached(false, "io-error"), reattached(true, "running"));
    expect(resumed.pausedDetail).toBeUndefined();
  });

  it("vm.paused pauses only a running VM (its detail is kept either way); vm.resumed resumes only a paused one", () => {
    const paused = ev("vm.paused", { detail: "watchdog" });
    expect(fold(defined, startRequested, started, paused)).toMatchObject({
      status: "paused",
      pausedDetail: "watchdog",
    });
    // A pause observed while stopping does not undo the stop.
    const stopping = ev("vm.stop-requested", { force: false, timeoutMs: 1 });
    expect(fold(defined, startRequested, started, stopping, paused)).toMatchObject({
      status: "stopping",
      pausedDetail: "watchdog",
    });
    const resumed = fold(defined, startRequested, started, paused, ev("vm.resumed", {}));
    expect(resumed.status).toBe("running");
    expect(resumed.pausedDetail).toBeUndefined();
    expect(fold(defined, startRequested, started, stopping, ev("vm.resumed", {})).status).toBe("stopping");
  });

  it("vm.removed: removed", () => {
    expect(fold(defined, ev("vm.removed", { force: false })).status).toBe("removed");
  });

  it("vm.reconfigured: the new config; the first of its config paths, when it names any", () => {
    const after = validateVmConfig({ name: "web", memory: "128M" }, { source: "test", baseDir: "/tmp" });
    const change = { before: config, after, changed: ["memory"], via: "apply" as const, reason: "test" };
    const moved = fold(defined, ev("vm.reconfigured", { ...change, configPaths: ["/srv/new.yaml", "/srv/x.yaml"] }));
    expect(moved.config).toEqual(after);
    expect(moved.configPath).toBe("/srv/new.yaml");
    expect(fold(defined, ev("vm.reconfigured", { ...change, configPaths: [] })).configPath).toBe("/srv/web.yaml");
    expect(fold(defined, ev("vm.reconfigured", change)).configPath).toBe("/srv/web.yaml");
  });

  it("vm.tainted: the taint with its command and time", () => {
    const tainted = ev("vm.tainted", { reason: "custom-monitor", command: "human-monitor-command" });
    expect(fold(defined, startRequested, started, tainted).taint).toEqual({
      reason: "custom-monitor",
      command: "human-monitor-command",
      at: new Date(t0 + 3000),
    });
  });

  it("vm.placed: the owning host and its epoch", () => {
    const placed = ev("vm.placed", { host: "b", reason: "new", epoch: 3 });
    expect(fold(defined, placed)).toMatchObject({ host: "b", epoch: 3 });
  });

  it("facts that change no state only move the version and the time", () => {
    const base = fold(defined, startRequested, started);
    for (const fact of [
      ev("vm.reset", { guest: true }),
      ev("vm.guest-panicked", {}),
      ev("vm.stop-step", { step: "quit" }),
      ev("vm.wait-failed", { condition: "file:/x", timeoutMs: 1 }),
    ]) {
      const after = fold(defined, startRequested, started, fact);
      expect(after).toEqual({ ...base, version: 3, updatedAt: new Date(t0 + 3000) });
    }
  });

  it("an event type it does not know (a newer writer's) only moves the version", () => {
    const newer = { type: "vm.something-new", schemaVersion: 1, data: { x: 1 } };
    const base = fold(defined);
    expect(fold(defined, newer)).toEqual({ ...base, version: 1 });
    expect(applyVmEvent(undefined, stream(newer)[0]!)).toBeUndefined();
  });

  it("a snapshot request is open (what, which drives, live, overwrite, when) until its outcome", () => {
    const create = ev("snapshot.create-requested", { tag: "t1", drives: ["hdd"], live: true, overwrite: true });
    expect(fold(defined, create).openSnapshot).toEqual({
      operation: "create",
      tag: "t1",
      drives: ["hdd"],
      live: true,
      overwrite: true,
      version: 1,
      at: new Date(t0 + 1000),
    });
    const load = ev("snapshot.load-requested", { tag: "t1", drives: ["hdd"], live: false });
    expect(fold(defined, load).openSnapshot).toMatchObject({ operation: "load", live: false, overwrite: false });
    const del = ev("snapshot.delete-requested", { tag: "t1", drives: ["hdd", "data"], live: false });
    expect(fold(defined, del).openSnapshot).toMatchObject({ operation: "delete", drives: ["hdd", "data"] });
    // Each outcome, success or failure, closes it.
    for (const type of [
      "snapshot.created",
      "snapshot.create-failed",
      "snapshot.loaded",
      "snapshot.load-failed",
      "snapshot.deleted",
      "snapshot.delete-failed",
    ]) {
      const outcome = { type, schemaVersion: 2, data: { tag: "t1", drives: ["hdd"] } };
      expect(fold(defined, create, outcome).openSnapshot, type).toBeUndefined();
    }
  });
});

describe("statusDetail", () => {
  const view = (over: Partial<VmView>): VmView => ({ ...fold(defined), ...over });
  it("paused: why it is paused, or nothing known", () => {
    expect(statusDetail(view({ status: "paused", pausedDetail: "ioerror" }))).toBe("ioerror");
    expect(statusDetail(view({ status: "paused" }))).toBeNull();
  });
  it("stopped: how it last stopped; 'failed' after a failed start; nothing for a VM never run", () => {
    const lastStop = { detail: "crashed" as const, at: new Date(t0) };
    const lastError = { reason: "x", message: "y", at: new Date(t0) };
    expect(statusDetail(view({ status: "stopped", lastStop, lastError }))).toBe("crashed");
    expect(statusDetail(view({ status: "stopped", lastError }))).toBe("failed");
    expect(statusDetail(view({ status: "stopped" }))).toBeNull();
  });
  it("running, starting, stopping, removed: none, whatever the last run left", () => {
    const lastStop = { detail: "crashed" as const, at: new Date(t0) };
    for (const status of ["running", "starting", "stopping", "removed"] as const) {
      expect(statusDetail(view({ status, lastStop, pausedDetail: "user" }))).toBeNull();
    }
  });
});

describe("mayHaveProcess", () => {
  it("while the stream says QEMU may be there: starting, running, paused, stopping", () => {
    const base = fold(defined);
    const may = (status: VmView["status"]) => mayHaveProcess({ ...base, status });
    expect(["starting", "running", "paused", "stopping"].filter((s) => may(s as VmView["status"]))).toHaveLength(4);
    expect(may("stopped")).toBe(false);
    expect(may("removed")).toBe(false);
  });
});
