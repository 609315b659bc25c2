/**
 * Snapshot operations with fakes: an in-memory qemu-img, a scripted QMP session that runs jobs
 * the way QEMU 7.2 does (JOB_STATUS_CHANGE before the reply, errors only in query-jobs), and a
 * recorder standing in for the VM actor. Checks the decisions, the facts recorded and the
 * catalogue that answers `list`.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import type { DiskImageTool, ImageFiles, ImageSnapshot } from "../../src/actors/disk-image-port.ts";
import type { QmpEvent, QmpSession } from "../../src/actors/ports.ts";
import { foldSnapshotCatalogue } from "../../src/actors/snapshot-catalogue.ts";
import {
  createSnapshot,
  deleteSnapshot,
  loadSnapshot,
  refreshSnapshotListing,
  type SnapshotDeps,
} from "../../src/actors/snapshot-operations.ts";
import type { VmAccess } from "../../src/actors/vm-actor.ts";
import type { VmView } from "../../src/actors/vm-view.ts";
import type { DiskDevice } from "../../src/config/vm-config.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { FakeClock } from "../support/fake-clock.ts";

const disk = (name: string, type: "qcow2" | "raw" = "qcow2"): DiskDevice => ({
  name,
  type,
  file: `/vms/${name}.${type}`,
  interface: "virtio",
});

/** Images in memory: tags per file, a stamp that changes on every write. */
function fakeImages(clock: FakeClock) {
  const images = new Map<string, { snapshots: ImageSnapshot[]; mtime: number }>();
  const calls: string[] = [];
  const touch = async (file: string) => {
    const image = images.get(file)!;
    image.mtime += 1;
    await clock.advance(3); // each qemu-img run takes a few ms
  };
  const tool: DiskImageTool = {
    version: async () => "7.2.22",
    info: async () => {
      throw new Error("unused");
    },
    check: async () => {
      throw new Error("unused");
    },
    create: async () => undefined,
    resize: async () => undefined,
    convert: () => {
      throw new Error("unused");
    },
    snapshotList: async (file) => {
      calls.push(`list ${file}`);
      return [...images.get(file)!.snapshots];
    },
    snapshotCreate: async (file, tag) => {
      calls.push(`create ${file} ${tag}`);
      const image = images.get(file)!;
      image.snapshots.push({
        name: tag,
        id: String(image.snapshots.length + 1),
        vmStateSize: 0,
        createdAt: 1,
        vmClockNs: 0,
      });
      await touch(file);
    },
    snapshotApply: async (file, tag) => {
      calls.push(`apply ${file} ${tag}`);
      await touch(file);
    },
    snapshotDelete: async (file, tag) => {
      calls.push(`delete ${file} ${tag}`);
      const image = images.get(file)!;
      image.snapshots = image.snapshots.filter((s) => s.name !== tag);
      await touch(file);
    },
  };
  const files: ImageFiles = {
    fingerprint: async (file) => {
      const image = images.get(file);
      return image === undefined ? undefined : { size: 1000, mtimeMs: image.mtime, ino: 7 };
    },
  };
  return { images, calls, tool, files };
}

/** A stand-in for VmActor.exclusive's access: records into an in-memory stream. */
function fakeAccess(storage: DiskDevice[], options: { running?: boolean; session?: QmpSession } = {}) {
  const stream: StoredEvent[] = [];
  const view = { name: "web", vmId: "vm-1", config: { storage } } as unknown as VmView;
  const access: VmAccess = {
    view,
    running: options.running === true,
    session: options.session,
    ports: {} as VmAccess["ports"],
    record: async (events: readonly NewEvent[]) => {
      const stored = events.map(
        (e) =>
          ({
            ...e,
            id: crypto.randomUUID(),
            streamId: "vm-vm-1",
            streamVersion: stream.length,
            globalPosition: stream.length,
            recordedAt: new Date(),
            metadata: {},
          }) as unknown as StoredEvent,
      );
      stream.push(...stored);
      return stored;
    },
  };
  return { access, stream, types: () => stream.map((e) => e.type) };
}

function setup(storage: DiskDevice[]) {
  const clock = new FakeClock(1000);
  const img = fakeImages(clock);
  for (const d of storage) img.images.set(d.file, { snapshots: [], mtime: 0 });
  const deps: SnapshotDeps = { tool: img.tool, files: img.files, clock };
  return { clock, img, deps, ...fakeAccess(storage) };
}

describe("offline (VM stopped): qemu-img", () => {
  it("create records requested, then created with its duration and the drives' snapshots after", async () => {
    const { deps, img, access, stream, types } = setup([disk("hdd"), disk("data"), disk("swap", "raw")]);
    const outcome = await createSnapshot(access, deps, { tag: "s1" });
    expect(outcome).toMatchObject({
      vm: "web",
      operation: "create",
      tag: "s1",
      drives: ["hdd", "data"],
      live: false,
      method: "qemu-img",
      replaced: false,
    });
    expect(outcome.durationMs).toBe(6);
    expect(img.calls.filter((c) => c.startsWith("create"))).toEqual([
      "create /vms/hdd.qcow2 s1",
      "create /vms/data.qcow2 s1",
    ]);
    expect(types()).toEqual(["snapshot.create-requested", "snapshot.created"]);
    expect(stream[0]!.data).toEqual({ tag: "s1", drives: ["hdd", "data"], live: false, overwrite: false });
    expect(stream[1]!.data).toMatchObject({
      tag: "s1",
      method: "qemu-img",
      durationMs: 6,
      replaced: false,
      after: [
        { drive: "hdd", file: "/vms/hdd.qcow2", snapshots: [{ name: "s1" }], stamp: { mtimeMs: 1 } },
        { drive: "data", snapshots: [{ name: "s1" }] },
      ],
    });
  });

  it("an existing tag fails with SNAPSHOT_EXISTS (recorded) unless --overwrite, which replaces it", async () => {
    const { deps, img, access, stream, types } = setup([disk("hdd")]);
    await createSnapshot(access, deps, { tag: "s1" });
    const error = await createSnapshot(access, deps, { tag: "s1" }).catch((e) => e);
    expect(error).toMatchObject({ code: "SNAPSHOT_EXISTS", exitCode: 3 });
    expect(error.message).toBe(
      "Snapshot 's1' already exists on drive 'hdd' of VM 'web'. Use --overwrite to replace it, or choose another name.",
    );
    expect(types().slice(-2)).toEqual(["snapshot.create-requested", "snapshot.create-failed"]);
    expect(stream.at(-1)!.data).toMatchObject({ code: "SNAPSHOT_EXISTS", tag: "s1", drives: ["hdd"] });
    const replaced = await createSnapshot(access, deps, { tag: "s1", overwrite: true });
    expect(replaced.replaced).toBe(true);
    expect(img.calls.slice(-4, -1)).toEqual([
      "list /vms/hdd.qcow2",
      "delete /vms/hdd.qcow2 s1",
      "create /vms/hdd.qcow2 s1",
    ]);
  });

  it("load and delete of a missing tag name the tags that exist (SNAPSHOT_NOT_FOUND, recorded)", async () => {
    const { deps, access, types } = setup([disk("hdd")]);
    await createSnapshot(access, deps, { tag: "a" });
    await createSnapshot(access, deps, { tag: "b" });
    for (const op of [loadSnapshot, deleteSnapshot]) {
      const error = await op(access, deps, { tag: "zz" }).catch((e) => e);
      expect(error).toMatchObject({ code: "SNAPSHOT_NOT_FOUND", details: { existing: ["a", "b"] } });
      expect(error.message).toBe(
        "Snapshot 'zz' not found on drive 'hdd' of VM 'web'. Existing snapshots: a, b. List them with `maqet snapshot list web`.",
      );
    }
    expect(types().slice(-4)).toEqual([
      "snapshot.load-requested",
      "snapshot.load-failed",
      "snapshot.delete-requested",
      "snapshot.delete-failed",
    ]);
    await loadSnapshot(access, deps, { tag: "a" });
    await deleteSnapshot(access, deps, { tag: "a" });
    expect(types().slice(-4)).toEqual([
      "snapshot.load-requested",
      "snapshot.loaded",
      "snapshot.delete-requested",
      "snapshot.deleted",
    ]);
  });

  it("refuses before recording anything: raw drive (naming its format), unknown drive, bad tag, missing image", async () => {
    const { deps, access, stream, img } = setup([disk("hdd"), disk("swap", "raw")]);
    await expect(createSnapshot(access, deps, { drive: "swap", tag: "s" })).rejects.toMatchObject({
      code: "SNAPSHOT_UNSUPPORTED",
      message: expect.stringContaining(
        "Cannot snapshot drive 'swap' of VM 'web': it is raw, and snapshots need qcow2.",
      ),
    });
    await expect(createSnapshot(access, deps, { drive: "nope", tag: "s" })).rejects.toMatchObject({
      code: "DRIVE_NOT_FOUND",
      message: "VM 'web' has no drive 'nope'. Drives: hdd (qcow2), swap (raw). Only qcow2 drives support snapshots.",
    });
    for (const tag of ["-x", "a/b", "..", "123", ""]) {
      await expect(createSnapshot(access, deps, { tag })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    img.images.delete("/vms/hdd.qcow2");
    await expect(createSnapshot(access, deps, { tag: "s" })).rejects.toMatchObject({ code: "PATH_NOT_FOUND" });
    expect(stream).toEqual([]);
  });
});

/** A QMP session that runs snapshot jobs like QEMU 7.2 (see docs/snapshots.md). */
function fakeQemu(options: { failWith?: string } = {}) {
  const events$ = new Subject<QmpEvent>();
  const executed: { command: string; args?: Record<string, unknown> }[] = [];
  const snapshots: ImageSnapshot[] = [];
  const jobs = new Map<string, { id: string; type: string; status: string; error?: string }>();
  const emit = (id: string, status: string) =>
    events$.next({ event: "JOB_STATUS_CHANGE", data: { id, status }, timestamp: { seconds: 0, microseconds: 0 } });
  const session: QmpSession = {
    greeting: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "fake" }, capabilities: [] },
    events$,
    closed: new Promise(() => undefined),
    isClosed: false,
    close: async () => undefined,
    async execute<T>(command: string, args?: Record<string, unknown>): Promise<T> {
      executed.push({ command, args });
      if (command === "query-block") {
        return [
          { device: "hdd", inserted: { "node-name": "#block152", image: { snapshots: snapshots.map(toQemu) } } },
          { device: "swap", inserted: { "node-name": "#block300", image: {} } },
        ] as T;
      }
      if (command === "query-jobs")
        return [...jobs.values()].map((j) => ({ ...j, "current-progress": 1, "total-progress": 1 })) as T;
      if (command === "job-dismiss") {
        jobs.delete(String(args?.id));
        return {} as T;
      }
      if (command.startsWith("snapshot-")) {
        const id = String(args?.["job-id"]);
        const job: { id: string; type: string; status: string; error?: string } = {
          id,
          type: command,
          status: "created",
        };
        jobs.set(id, job);
        emit(id, "created");
        emit(id, "running");
        setImmediate(() => {
          if (options.failWith) job.error = options.failWith;
          else if (command === "snapshot-save")
            snapshots.push({ name: String(args?.tag), id: "1", vmStateSize: 753_000, createdAt: 5, vmClockNs: 0 });
          else if (command === "snapshot-delete")
            snapshots.splice(
              snapshots.findIndex((s) => s.name === args?.tag),
              1,
            );
          job.status = "concluded";
          emit(id, "concluded");
        });
        return {} as T;
      }
      throw new Error(`unexpected ${command}`);
    },
  };
  return { session, executed, snapshots, jobs };
}

function toQemu(s: ImageSnapshot) {
  return {
    name: s.name,
    id: s.id,
    "vm-state-size": s.vmStateSize,
    "date-sec": 0,
    "date-nsec": s.createdAt * 1e6,
    "vm-clock-sec": 0,
    "vm-clock-nsec": 0,
  };
}

describe("live (VM running): QMP jobs", () => {
  it("snapshot-save on QEMU's node names, followed to concluded, dismissed; events say live and qmp-job", async () => {
    const clock = new FakeClock(0);
    const qemu = fakeQemu();
    const { access, stream, types } = fakeAccess([disk("hdd"), disk("swap", "raw")], {
      running: true,
      session: qemu.session,
    });
    const deps: SnapshotDeps = { tool: {} as DiskImageTool, files: {} as ImageFiles, clock };
    const progress: number[] = [];
    const outcome = await createSnapshot(access, deps, { tag: "live1", onProgress: (p) => progress.push(p) });
    expect(outcome).toMatchObject({ live: true, method: "qmp-job", drives: ["hdd"] });
    const save = qemu.executed.find((e) => e.command === "snapshot-save")!;
    expect(save.args).toMatchObject({ tag: "live1", vmstate: "#block152", devices: ["#block152"] });
    expect(qemu.executed.map((e) => e.command)).toContain("job-dismiss");
    expect(qemu.jobs.size).toBe(0);
    expect(progress.at(0)).toBe(0);
    expect(progress.at(-1)).toBe(100);
    expect(types()).toEqual(["snapshot.create-requested", "snapshot.created"]);
    expect(stream[1]!.data).toMatchObject({
      live: true,
      method: "qmp-job",
      after: [{ drive: "hdd", snapshots: [{ name: "live1", vmStateSize: 753_000 }] }],
    });
    expect(stream[1]!.data).not.toHaveProperty("after.0.stamp");

    await loadSnapshot(access, deps, { tag: "live1" });
    expect(qemu.executed.find((e) => e.command === "snapshot-load")!.args).toMatchObject({
      vmstate: "#block152",
      devices: ["#block152"],
    });
    await deleteSnapshot(access, deps, { tag: "live1" });
    expect(qemu.snapshots).toEqual([]);
    expect(types().slice(2)).toEqual([
      "snapshot.load-requested",
      "snapshot.loaded",
      "snapshot.delete-requested",
      "snapshot.deleted",
    ]);
  });

  it("a job error is read from query-jobs and quoted (SNAPSHOT_FAILED), recorded, and the job dismissed", async () => {
    const qemu = fakeQemu({ failWith: "Device 'hdd' is writable but does not support snapshots" });
    const { access, stream } = fakeAccess([disk("hdd")], { running: true, session: qemu.session });
    const deps: SnapshotDeps = { tool: {} as DiskImageTool, files: {} as ImageFiles, clock: new FakeClock() };
    const error = await createSnapshot(access, deps, { tag: "x" }).catch((e) => e);
    expect(error).toMatchObject({ code: "SNAPSHOT_FAILED" });
    expect(error.message).toBe(
      "QEMU's snapshot-save job failed: Device 'hdd' is writable but does not support snapshots.",
    );
    expect(stream.at(-1)).toMatchObject({
      type: "snapshot.create-failed",
      data: { code: "SNAPSHOT_FAILED", live: true },
    });
    expect(qemu.jobs.size).toBe(0);
  });

  it("a running VM cannot load a disk-only snapshot (no VM state): it says to stop the VM", async () => {
    const qemu = fakeQemu();
    qemu.snapshots.push({ name: "cold", id: "1", vmStateSize: 0, createdAt: 1, vmClockNs: 0 });
    const { access } = fakeAccess([disk("hdd")], { running: true, session: qemu.session });
    const deps: SnapshotDeps = { tool: {} as DiskImageTool, files: {} as ImageFiles, clock: new FakeClock() };
    await expect(loadSnapshot(access, deps, { tag: "cold" })).rejects.toMatchObject({
      code: "SNAPSHOT_UNSUPPORTED",
      message: expect.stringContaining("holds no VM state"),
    });
    expect(qemu.executed.some((e) => e.command === "snapshot-load")).toBe(false);
  });
});

describe("the catalogue answers list without touching images when nothing changed", () => {
  it("reads once, then answers from the fold until the image's stamp changes", async () => {
    const { deps, img, access, stream } = setup([disk("hdd")]);
    const first = await refreshSnapshotListing(access, deps, foldSnapshotCatalogue(stream), undefined);
    expect(first.source).toBe("qemu-img");
    expect(stream.map((e) => e.type)).toEqual(["snapshot.observed"]);
    const lists = () => img.calls.filter((c) => c.startsWith("list")).length;
    const before = lists();
    const again = await refreshSnapshotListing(access, deps, foldSnapshotCatalogue(stream), undefined);
    expect(again.source).toBe("catalogue");
    expect(lists()).toBe(before);

    // Our own operation keeps the catalogue current: still no read.
    await createSnapshot(access, deps, { tag: "s1" });
    const afterCreate = lists();
    const listed = await refreshSnapshotListing(access, deps, foldSnapshotCatalogue(stream), undefined);
    expect(listed).toMatchObject({ source: "catalogue", drives: [{ drive: "hdd", snapshots: [{ name: "s1" }] }] });
    expect(lists()).toBe(afterCreate);

    // Someone ran qemu-img behind maqet's back: the stamp moved, so it reads again.
    img.images.get("/vms/hdd.qcow2")!.mtime += 100;
    expect((await refreshSnapshotListing(access, deps, foldSnapshotCatalogue(stream), undefined)).source).toBe(
      "qemu-img",
    );
  });

  it("a raw QMP command that can change snapshots, or a failed operation, makes the entry stale", () => {
    const base = { id: "x", streamId: "vm-1", globalPosition: 0, recordedAt: new Date(), metadata: {} };
    const at = (n: number, e: NewEvent) => ({ ...base, ...e, streamVersion: n }) as unknown as StoredEvent;
    const observed = at(
      0,
      vmEvent("snapshot.observed", { source: "qemu-img", drives: [{ drive: "hdd", file: "/f", snapshots: [] }] }),
    );
    const qmp = at(1, {
      type: "qmp.command-executed",
      schemaVersion: 2,
      data: {
        command: "human-monitor-command",
        argumentNames: ["command-line"],
        outcome: "ok",
        durationMs: 1,
        tier: "dangerous",
        rule: "x",
      },
    });
    expect(foldSnapshotCatalogue([observed]).drives.get("hdd")?.stale).toBe(false);
    expect(foldSnapshotCatalogue([observed, qmp]).drives.get("hdd")?.stale).toBe(true);
    const failed = at(
      1,
      vmEvent("snapshot.load-failed", {
        tag: "t",
        drives: ["hdd"],
        live: true,
        code: "SNAPSHOT_FAILED",
        message: "m",
        durationMs: 1,
      }),
    );
    expect(foldSnapshotCatalogue([observed, failed]).drives.get("hdd")?.stale).toBe(true);
  });
});

describe("the pause a live snapshot causes", () => {
  it("is recorded as vm.paused detail snapshot, not user", async () => {
    const { createTranslator } = await import("../../src/actors/watch-qemu.ts");
    const { pausedDetailOf } = await import("../../src/actors/paused-detail.ts");
    const ev = (event: string, data?: Record<string, unknown>): QmpEvent => ({
      event,
      data,
      timestamp: { seconds: 0, microseconds: 0 },
    });
    const t = createTranslator();
    expect(t(ev("JOB_STATUS_CHANGE", { id: "maqet-snapshot-save-1a2b3c4d", status: "running" }))).toBeUndefined();
    const stop = t(ev("STOP"));
    expect(stop).toEqual({ type: "QMP.STOP", status: "snapshot" });
    expect(pausedDetailOf((stop as { status: string }).status)).toBe("snapshot");
    expect(t(ev("RESUME"))).toEqual({ type: "QMP.RESUME" });
    // Someone else's job, or a plain `stop`, is still the user's pause.
    t(ev("JOB_STATUS_CHANGE", { id: "backup-1", status: "running" }));
    expect(t(ev("STOP"))).toEqual({ type: "QMP.STOP", status: "paused" });
  });
});
