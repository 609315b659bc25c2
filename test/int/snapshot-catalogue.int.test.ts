/**
 * The snapshot catalogue projection (migration 0006) on both dialects: what it stores for a VM is
 * exactly the fold of that VM's stream, caught up in one batch or in many, and after a rebuild.
 */
import { describe, expect, it } from "vitest";
import { foldSnapshotCatalogue, type SnapshotCatalogue } from "../../src/actors/snapshot-catalogue.ts";
import {
  readSnapshotCatalogue,
  SNAPSHOT_CATALOGUE_PROJECTION,
  snapshotCatalogueProjection,
} from "../../src/actors/snapshot-catalogue-projection.ts";
import type { NewEvent } from "../../src/events/envelope.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { catchUpFully } from "../support/projection-settle.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const drive = (name: string, tags: string[], stamp?: { size: number; mtimeMs: number; ino: number }) => ({
  drive: name,
  file: `/vms/${name}.qcow2`,
  snapshots: tags.map((t, i) => ({ name: t, id: String(i + 1), vmStateSize: 0, createdAt: 1000 + i, vmClockNs: 0 })),
  ...(stamp ? { stamp } : {}),
});

/** A VM's life with snapshots: offline create, a start, a live create, a raw QMP savevm, a failure. */
function history(): NewEvent[] {
  const base = { drives: ["hdd", "data"], live: false };
  return [
    vmEvent("snapshot.observed", {
      source: "qemu-img",
      drives: [drive("hdd", [], { size: 1, mtimeMs: 1, ino: 1 }), drive("data", [], { size: 2, mtimeMs: 2, ino: 2 })],
    }),
    vmEvent("snapshot.create-requested", { tag: "a", ...base, overwrite: false }),
    vmEvent("snapshot.created", {
      tag: "a",
      ...base,
      method: "qemu-img",
      replaced: false,
      durationMs: 12,
      after: [
        drive("hdd", ["a"], { size: 3, mtimeMs: 3, ino: 1 }),
        drive("data", ["a"], { size: 4, mtimeMs: 4, ino: 2 }),
      ],
    }),
    {
      type: "vm.started",
      schemaVersion: 1,
      data: {
        pid: 1,
        qmpSocket: "/s",
        runtimeDir: "/r",
        pidFile: "/p",
        argv: [],
        binary: "/q",
        accel: "tcg",
        durationMs: 1,
      },
    },
    vmEvent("snapshot.create-requested", { tag: "b", drives: ["hdd"], live: true, overwrite: false }),
    vmEvent("snapshot.created", {
      tag: "b",
      drives: ["hdd"],
      live: true,
      method: "qmp-job",
      replaced: false,
      durationMs: 30,
      after: [drive("hdd", ["a", "b"])],
    }),
    {
      type: "qmp.command-executed",
      schemaVersion: 2,
      data: {
        command: "human-monitor-command",
        argumentNames: ["command-line"],
        outcome: "ok",
        durationMs: 2,
        tier: "dangerous",
        rule: "allowed",
      },
    },
    vmEvent("snapshot.delete-requested", { tag: "zz", drives: ["data"], live: true }),
    vmEvent("snapshot.delete-failed", {
      tag: "zz",
      drives: ["data"],
      live: true,
      code: "SNAPSHOT_NOT_FOUND",
      message: "m",
      durationMs: 3,
    }),
  ];
}

const plain = (c: SnapshotCatalogue) => ({ ...c, drives: Object.fromEntries(c.drives) });

describe.each(testDatabases())("snapshot catalogue projection on $name", (dialect) => {
  let t: TestDatabase;
  let store: PostgresEventStore;
  openForSuite(dialect, (opened) => ({ t, store } = opened));

  it("stores exactly the fold of each VM's stream, in one batch or many, and after a rebuild", async () => {
    const streams = ["vm-11111111-1111-4111-8111-111111111111", "vm-22222222-2222-4222-8222-222222222222"];
    for (const event of history()) {
      for (const streamId of streams) await store.append(streamId, [event]);
    }
    await store.append("other-x", [{ type: "unrelated", schemaVersion: 1, data: {} }]);

    const expected = await Promise.all(
      streams.map(async (s) => plain(foldSnapshotCatalogue(await store.readStream(s)))),
    );
    expect(expected[0]!.drives.hdd).toMatchObject({ stale: true, snapshots: [{ name: "a" }, { name: "b" }] });
    expect(expected[0]!.drives.data).toMatchObject({ stale: true, stamp: { size: 4 } });
    expect(expected[0]!.lastStartVersion).toBe(3);

    const small = new ProjectionRunner({ db: t.db, store, projections: [snapshotCatalogueProjection], batchSize: 2 });
    await catchUpFully(small, SNAPSHOT_CATALOGUE_PROJECTION, t.db);
    for (const [i, s] of streams.entries()) expect(plain(await readSnapshotCatalogue(t.db, s))).toEqual(expected[i]);

    const whole = new ProjectionRunner({ db: t.db, store, projections: [snapshotCatalogueProjection] });
    await whole.rebuild(SNAPSHOT_CATALOGUE_PROJECTION);
    for (const [i, s] of streams.entries()) expect(plain(await readSnapshotCatalogue(t.db, s))).toEqual(expected[i]);

    // A VM with no snapshot facts has an empty catalogue.
    expect(plain(await readSnapshotCatalogue(t.db, "vm-none"))).toEqual({
      drives: {},
      lastStartVersion: -1,
      version: -1,
    });
  });
});
