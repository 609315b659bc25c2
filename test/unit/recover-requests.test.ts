/**
 * Recovery of a snapshot request a dead process left open, with fakes: images in memory
 * (qemu-img), a scripted `query-jobs`/`query-block`, a recorder. The real-process cases (a CLI
 * killed at each point) are in test/qemu/snapshot-recovery.qemu.test.ts; here the decisions a kill
 * there cannot easily reach: drives half done, a failed job, a job still running.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import type { DiskImageTool, ImageSnapshot } from "../../src/actors/disk-image-port.ts";
import type { QmpSession, VmPorts } from "../../src/actors/ports.ts";
import { recoverOpenRequests } from "../../src/actors/recover-requests.ts";
import type { VmAccess } from "../../src/actors/vm-actor.ts";
import type { OpenSnapshotRequest, VmView } from "../../src/actors/vm-view.ts";
import type { NewEvent } from "../../src/events/envelope.ts";
import { FakeClock } from "../support/fake-clock.ts";

const REQUESTED_AT = 1_000_000;
const snap = (name: string, createdAt = REQUESTED_AT + 500): ImageSnapshot => ({
  name,
  id: "1",
  vmStateSize: 0,
  createdAt,
  vmClockNs: 0,
});

function setup(open: Partial<OpenSnapshotRequest>, images: Record<string, ImageSnapshot[]>, session?: QmpSession) {
  const clock = new FakeClock(REQUESTED_AT + 10_000);
  const calls: string[] = [];
  const tool = {
    snapshotList: async (file: string) => [...images[file]!],
    snapshotDelete: async (file: string, tag: string) => {
      calls.push(`delete ${file} ${tag}`);
      images[file] = images[file]!.filter((s) => s.name !== tag);
    },
    snapshotApply: async (file: string, tag: string) => {
      calls.push(`apply ${file} ${tag}`);
    },
  } as unknown as DiskImageTool;
  const storage = Object.keys(images).map((file) => ({
    name: file.replace(/\W/g, ""),
    type: "qcow2",
    file,
    interface: "virtio",
  }));
  const view = {
    name: "web",
    config: { storage },
    openSnapshot: {
      operation: "create",
      tag: "s1",
      drives: storage.map((d) => d.name),
      live: false,
      overwrite: false,
      version: 5,
      at: new Date(REQUESTED_AT),
      ...open,
    },
  } as unknown as VmView;
  const recorded: NewEvent[] = [];
  const access: VmAccess = {
    view,
    running: session !== undefined,
    session,
    ports: { processes: { findProcesses: () => [], waitGone: async () => true } } as unknown as VmPorts,
    record: async (events) => {
      recorded.push(...events);
      return [];
    },
  };
  const deps = { tool, files: { fingerprint: async () => ({ size: 1, mtimeMs: 1, ino: 1 }) }, clock };
  return { access, deps, recorded, calls };
}

describe("an open snapshot request gets its true outcome", () => {
  it("offline create on every drive, newer than the request: created, recovered, with the drives as found", async () => {
    const { access, deps, recorded } = setup({}, { a: [snap("s1")], b: [snap("s1")] });
    await recoverOpenRequests(access, deps);
    expect(recorded).toMatchObject([
      {
        type: "snapshot.created",
        schemaVersion: 2,
        data: {
          tag: "s1",
          recovered: true,
          durationMs: 0,
          method: "qemu-img",
          after: [{ drive: "a" }, { drive: "b" }],
        },
      },
    ]);
  });

  it("offline create on one drive of two: create-failed (interrupted), naming the drive that holds it", async () => {
    const { access, deps, recorded } = setup({}, { a: [snap("s1")], b: [] });
    await recoverOpenRequests(access, deps);
    expect(recorded[0]).toMatchObject({
      type: "snapshot.create-failed",
      data: {
        reason: "interrupted",
        recovered: true,
        code: "SNAPSHOT_FAILED",
        after: [{ drive: "a" }, { drive: "b" }],
      },
    });
    expect((recorded[0]!.data as { message: string }).message).toContain("It exists on drive 'a' only");
  });

  it("an older snapshot of the same name is not taken for the one requested", async () => {
    const { access, deps, recorded } = setup({}, { a: [snap("s1", REQUESTED_AT - 3_600_000)] });
    await recoverOpenRequests(access, deps);
    expect(recorded[0]!.type).toBe("snapshot.create-failed");
  });

  it("offline delete done on one drive of two is finished, then recorded as deleted", async () => {
    const { access, deps, recorded, calls } = setup({ operation: "delete" }, { a: [], b: [snap("s1")] });
    await recoverOpenRequests(access, deps);
    expect(calls).toEqual(["delete b s1"]);
    expect(recorded[0]).toMatchObject({ type: "snapshot.deleted", data: { recovered: true } });
  });

  it("offline load is finished (a revert leaves no trace), or failed when a drive lacks the tag", async () => {
    const done = setup({ operation: "load" }, { a: [snap("s1")], b: [snap("s1")] });
    await recoverOpenRequests(done.access, done.deps);
    expect(done.calls).toEqual(["apply a s1", "apply b s1"]);
    expect(done.recorded[0]).toMatchObject({ type: "snapshot.loaded", data: { recovered: true } });
    const missing = setup({ operation: "load" }, { a: [snap("s1")], b: [] });
    await recoverOpenRequests(missing.access, missing.deps);
    expect(missing.calls).toEqual([]);
    expect(missing.recorded[0]).toMatchObject({ type: "snapshot.load-failed", data: { reason: "interrupted" } });
  });

  it("live: waits for a job still running, records the job's own failure, then dismisses it", async () => {
    const sent: string[] = [];
    let polls = 0;
    const session = {
      events$: new Subject(),
      isClosed: false,
      execute: async (command: string, args?: { id?: string }) => {
        sent.push(args?.id ? `${command} ${args.id}` : command);
        if (command === "query-jobs") {
          polls += 1;
          return [
            polls < 3
              ? { id: "maqet-snapshot-save-1", type: "snapshot-save", status: "running" }
              : { id: "maqet-snapshot-save-1", type: "snapshot-save", status: "concluded", error: "No space left" },
          ];
        }
        if (command === "query-block") {
          return [{ device: "a", inserted: { "node-name": "#b1", image: { snapshots: [] } } }];
        }
        return {};
      },
    } as unknown as QmpSession;
    const { access, deps, recorded } = setup({ live: true }, { a: [] }, session);
    let finished = false;
    const recovering = recoverOpenRequests(access, deps).finally(() => {
      finished = true;
    });
    // Drive the fake clock whenever the recovery sleeps between polls (no real time passes).
    for (let i = 0; i < 100 && !finished; i++) {
      await new Promise((r) => setImmediate(r));
      if (deps.clock.pendingSleeps > 0) await deps.clock.advance(100);
    }
    await recovering;
    expect(polls).toBe(3);
    expect(recorded[0]).toMatchObject({
      type: "snapshot.create-failed",
      data: { recovered: true, code: "SNAPSHOT_FAILED", message: "QEMU's snapshot-save job failed: No space left." },
    });
    expect((recorded[0]!.data as { reason?: string }).reason).toBeUndefined();
    expect(sent.at(-1)).toBe("job-dismiss maqet-snapshot-save-1");
  });

  it("live with no job: the job never started, so the create did not happen", async () => {
    const session = {
      events$: new Subject(),
      isClosed: false,
      execute: async (command: string) =>
        command === "query-block" ? [{ device: "a", inserted: { "node-name": "#b1", image: { snapshots: [] } } }] : [],
    } as unknown as QmpSession;
    const { access, deps, recorded } = setup({ live: true }, { a: [] }, session);
    await recoverOpenRequests(access, deps);
    expect(recorded[0]).toMatchObject({ type: "snapshot.create-failed", data: { reason: "interrupted", live: true } });
  });
});
