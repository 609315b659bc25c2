/**
 * The fold of a live migration's facts (src/events/migration-events.ts) into the VM's view
 * (src/actors/vm-view.ts): `migration` opens at `vm.migration-requested`, moves through its
 * phases, and closes at `vm.migrated` / `-failed` / `-cancelled` of the same migration;
 * `vm.owner-changed` makes the destination QEMU the VM's; `resumeAfterMigration` marks a guest
 * left paused on its destination.
 */
import { describe, expect, it } from "vitest";
import type { VmView } from "../../src/actors/vm-view.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import type { NewEvent } from "../../src/events/envelope.ts";
import type { MigrationTarget } from "../../src/events/migration-events.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { toJsonb } from "../support/jsonb.ts";
import { foldedView } from "../support/store-events.ts";

const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };
const T0 = Date.parse("2026-01-01T00:00:00Z");

/** The events as the store gives them back (jsonb data), versions 0.. in order, one second apart. */
const fold = (events: readonly NewEvent[]): VmView => foldedView(events, { fromMs: T0, data: toJsonb });

const running = (): NewEvent[] => [
  vmEvent("vm.defined", { vmId: "1", name: "web", config }),
  vmEvent("vm.start-requested", { timeoutMs: 30_000, runtimeDir: "/run/maqet/1" }),
  vmEvent("vm.started", {
    pid: 4000,
    qmpSocket: "/run/maqet/1/qmp.sock",
    runtimeDir: "/run/maqet/1",
    pidFile: "/run/maqet/1/qemu.pid",
    argv: ["-name", "web"],
    binary: "/usr/bin/qemu-system-x86_64",
    accel: "tcg",
    qemuVersion: "7.2.0",
    durationMs: 100,
  }),
];

const target: MigrationTarget = {
  host: "lab2",
  pid: 5001,
  qmpSocket: "/run/maqet2/1/qmp.sock",
  runtimeDir: "/run/maqet2/1",
  pidFile: "/run/maqet2/1/qemu.pid",
  argv: ["-name", "web", "-incoming", "defer"],
  binary: "/usr/local/bin/qemu-system-x86_64",
  accel: "kvm",
  qemuVersion: "9.0.0",
};

const M = "m-1";
const requested = (migrationId = M) =>
  vmEvent("vm.migration-requested", {
    migrationId,
    fromHost: "lab1",
    toHost: "lab2",
    downtimeLimitMs: 300,
    bandwidthMiBs: 1024,
    timeoutMs: 600_000,
  });
const prepared = (migrationId = M) =>
  vmEvent("vm.migration-target-prepared", { migrationId, uri: "tcp:10.0.0.2:4444", ...target });
const started = (migrationId = M) => vmEvent("vm.migration-started", { migrationId, uri: "tcp:10.0.0.2:4444" });
const progress = (migrationId = M) =>
  vmEvent("vm.migration-progress", {
    migrationId,
    status: "active",
    passes: 1,
    transferredBytes: 10,
    remainingBytes: 90,
    totalBytes: 100,
    mbps: 1000,
  });
const switchover = (migrationId = M) =>
  vmEvent("vm.migration-switchover", { migrationId, passes: 3, remainingBytes: 4096 });
const ownerChanged = (resume: boolean, epoch = 0, migrationId = M) =>
  vmEvent("vm.owner-changed", { migrationId, fromHost: "lab1", toHost: "lab2", epoch, target, resume });
const migrated = (resumed?: boolean, migrationId = M) =>
  vmEvent("vm.migrated", {
    migrationId,
    fromHost: "lab1",
    toHost: "lab2",
    downtimeMs: 41,
    totalMs: 812,
    transferredBytes: 9_000_000,
    passes: 3,
    ...(resumed !== undefined ? { resumed } : {}),
  });

describe("the migration facts fold into the VM's view", () => {
  it("requested opens `migration` with the source QEMU, its hosts and timeout; the VM is not moved", () => {
    const view = fold([...running(), requested()]);
    expect(view.migration).toEqual({
      id: M,
      fromHost: "lab1",
      toHost: "lab2",
      phase: "requested",
      sourcePid: 4000,
      sourceQmpSocket: "/run/maqet/1/qmp.sock",
      timeoutMs: 600_000,
      at: new Date(T0 + 3000),
    });
    expect(view.status).toBe("running");
    expect(view.pid).toBe(4000);
  });

  it("target-prepared records the destination QEMU (without uri and id); started -> transfer; progress changes nothing; switchover -> switchover", () => {
    const afterPrepared = fold([...running(), requested(), prepared()]);
    expect(afterPrepared.migration?.phase).toBe("prepared");
    expect(afterPrepared.migration?.target).toEqual(target);
    expect(afterPrepared.migration?.target).not.toHaveProperty("uri");
    expect(afterPrepared.migration?.target).not.toHaveProperty("migrationId");

    const inTransfer = fold([...running(), requested(), prepared(), started()]);
    expect(inTransfer.migration?.phase).toBe("transfer");
    const sampled = fold([...running(), requested(), prepared(), started(), progress(), progress()]);
    expect(sampled.migration).toEqual(inTransfer.migration);
    expect(sampled.version).toBe(inTransfer.version + 2);

    const atSwitchover = fold([...running(), requested(), prepared(), started(), switchover()]);
    expect(atSwitchover.migration?.phase).toBe("switchover");
    // Before the commit point the source QEMU is still the VM.
    expect(atSwitchover.pid).toBe(4000);
    expect(atSwitchover.qmpSocket).toBe("/run/maqet/1/qmp.sock");
  });

  it("owner-changed (the commit point) makes the destination QEMU the VM: pid, QMP socket, runtime dir, pidfile, accel, version", () => {
    const view = fold([...running(), requested(), prepared(), started(), switchover(), ownerChanged(true)]);
    expect(view.pid).toBe(5001);
    expect(view.qmpSocket).toBe(target.qmpSocket);
    expect(view.runtimeDir).toBe(target.runtimeDir);
    expect(view.pidFile).toBe(target.pidFile);
    expect(view.accelUsed).toBe("kvm");
    expect(view.qemuVersion).toBe("9.0.0");
    expect(view.migration).toMatchObject({ id: M, phase: "moved", target, resume: true });
    // The source QEMU stays known to whoever settles the migration.
    expect(view.migration?.sourcePid).toBe(4000);
    expect(view.migration?.sourceQmpSocket).toBe("/run/maqet/1/qmp.sock");
    expect(view.status).toBe("running");
  });

  it("on a single host (no placement, epoch 0) owner-changed leaves host and epoch unset", () => {
    const view = fold([...running(), requested(), prepared(), ownerChanged(true, 0)]);
    expect(view.host).toBeUndefined();
    expect(view.epoch).toBeUndefined();
  });

  it("on a cluster owner-changed moves host and epoch to the target's", () => {
    const placed = vmEvent("vm.placed", { host: "lab1", reason: "new", epoch: 4 });
    const before = fold([...running(), placed, requested(), prepared()]);
    expect(before).toMatchObject({ host: "lab1", epoch: 4 });
    const after = fold([...running(), placed, requested(), prepared(), ownerChanged(true, 5)]);
    expect(after).toMatchObject({ host: "lab2", epoch: 5 });
  });

  it("a qemuVersion-less target keeps the QEMU version the view had", () => {
    const { qemuVersion: _v, ...noVersion } = target;
    const view = fold([
      ...running(),
      requested(),
      vmEvent("vm.owner-changed", {
        migrationId: M,
        fromHost: "lab1",
        toHost: "lab2",
        epoch: 0,
        target: noVersion,
        resume: true,
      }),
    ]);
    expect(view.qemuVersion).toBe("7.2.0");
    expect(view.pid).toBe(5001);
  });

  it.each([
    ["vm.migrated", migrated(true)],
    ["vm.migration-failed", vmEvent("vm.migration-failed", { migrationId: M, phase: "transfer", reason: "x" })],
    [
      "vm.migration-cancelled",
      vmEvent("vm.migration-cancelled", { migrationId: M, phase: "transfer", by: "user", reason: "x" }),
    ],
  ])("%s closes `migration`", (_type, end) => {
    const view = fold([...running(), requested(), prepared(), started(), end]);
    expect(view.migration).toBeUndefined();
    expect(view).not.toHaveProperty("resumeAfterMigration", expect.anything());
  });

  it("vm.migrated after the commit keeps the destination as the VM and closes `migration`", () => {
    const view = fold([
      ...running(),
      requested(),
      prepared(),
      started(),
      switchover(),
      ownerChanged(true),
      migrated(true),
    ]);
    expect(view.migration).toBeUndefined();
    expect(view.pid).toBe(5001);
    expect(view.resumeAfterMigration).toBeUndefined();
    expect(view.status).toBe("running");
  });

  it("a failure after the commit: the commit back makes the source the VM again, the failure closes `migration`", () => {
    const back = vmEvent("vm.owner-changed", {
      migrationId: M,
      fromHost: "lab2",
      toHost: "lab1",
      epoch: 0,
      target: {
        ...target,
        host: "lab1",
        pid: 4000,
        qmpSocket: "/run/maqet/1/qmp.sock",
        runtimeDir: "/run/maqet/1",
        pidFile: "/run/maqet/1/qemu.pid",
      },
      resume: true,
    });
    const view = fold([
      ...running(),
      requested(),
      prepared(),
      started(),
      switchover(),
      ownerChanged(true),
      back,
      vmEvent("vm.migration-failed", { migrationId: M, phase: "completion", reason: "boom; the source runs on" }),
    ]);
    expect(view.migration).toBeUndefined();
    expect(view.pid).toBe(4000);
    expect(view.qmpSocket).toBe("/run/maqet/1/qmp.sock");
    expect(view.runtimeDir).toBe("/run/maqet/1");
    expect(view.resumeAfterMigration).toBeUndefined();
  });

  describe("resumeAfterMigration", () => {
    const leftPaused = () => [
      ...running(),
      requested(),
      prepared(),
      started(),
      switchover(),
      ownerChanged(true),
      migrated(false),
    ];

    it("is set by vm.migrated{resumed: false} after owner-changed{resume: true}", () => {
      const view = fold(leftPaused());
      expect(view.resumeAfterMigration).toBe(M);
      expect(view.migration).toBeUndefined();
    });

    it("is not set when the guest did not run on the source (resume: false), nor when it was resumed, nor without `resumed`", () => {
      const pausedBefore = fold([...running(), requested(), prepared(), ownerChanged(false), migrated(false)]);
      expect(pausedBefore.resumeAfterMigration).toBeUndefined();
      const resumed = fold([...running(), requested(), prepared(), ownerChanged(true), migrated(true)]);
      expect(resumed.resumeAfterMigration).toBeUndefined();
      const older = fold([...running(), requested(), prepared(), ownerChanged(true), migrated(undefined)]);
      expect(older.resumeAfterMigration).toBeUndefined();
    });

    it("is not set by vm.migrated{resumed: false} without an owner-changed (no `resume` known)", () => {
      const view = fold([...running(), requested(), prepared(), migrated(false)]);
      expect(view.resumeAfterMigration).toBeUndefined();
      expect(view.migration).toBeUndefined();
    });

    it.each([
      ["vm.resumed", vmEvent("vm.resumed", {})],
      [
        "vm.started",
        vmEvent("vm.started", {
          pid: 6000,
          qmpSocket: "/q",
          runtimeDir: "/r",
          pidFile: "/p",
          argv: [],
          binary: "/b",
          accel: "tcg",
          durationMs: 1,
        }),
      ],
      ["vm.stopped", vmEvent("vm.stopped", { detail: "destroyed", method: "quit" })],
    ])("is cleared by %s", (_type, clear) => {
      expect(fold([...leftPaused(), clear]).resumeAfterMigration).toBeUndefined();
    });

    it("survives facts that do not resume the guest (vm.paused, vm.reset)", () => {
      expect(fold([...leftPaused(), vmEvent("vm.paused", { detail: "user" })]).resumeAfterMigration).toBe(M);
      expect(fold([...leftPaused(), vmEvent("vm.reset", { guest: true })]).resumeAfterMigration).toBe(M);
    });
  });

  describe("facts of another migration are ignored", () => {
    const other = "m-other";

    it("prepared, started, switchover and the endings of another migration leave the open one as it was", () => {
      const base = [...running(), requested(), prepared(), started()];
      const open = fold(base).migration;
      expect(open?.phase).toBe("transfer");
      for (const stray of [
        prepared(other),
        started(other),
        switchover(other),
        migrated(false, other),
        vmEvent("vm.migration-failed", { migrationId: other, phase: "transfer", reason: "x" }),
        vmEvent("vm.migration-cancelled", { migrationId: other, phase: "transfer", by: "timeout", reason: "x" }),
      ]) {
        const view = fold([...base, stray]);
        expect(view.migration, stray.type).toEqual(open);
        expect(view.resumeAfterMigration, stray.type).toBeUndefined();
      }
    });

    it("facts of a migration with none open change no migration state", () => {
      const view = fold([...running(), prepared(other), started(other), switchover(other), migrated(false, other)]);
      expect(view.migration).toBeUndefined();
      expect(view.resumeAfterMigration).toBeUndefined();
      expect(view.pid).toBe(4000);
    });

    it("an owner-changed of another migration leaves the open migration's phase alone", () => {
      const view = fold([...running(), requested(), prepared(), started(), ownerChanged(true, 0, other)]);
      expect(view.migration?.phase).toBe("transfer");
      expect(view.migration?.resume).toBeUndefined();
    });

    it("a later migration's request replaces a finished one's; its own facts then drive it", () => {
      const second = "m-2";
      const view = fold([
        ...running(),
        requested(),
        prepared(),
        ownerChanged(true),
        migrated(true),
        requested(second),
        prepared(second),
        started(M), // a late fact of the first migration
      ]);
      expect(view.migration).toMatchObject({ id: second, phase: "prepared", sourcePid: 5001 });
    });
  });
});
