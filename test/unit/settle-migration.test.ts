/**
 * Settling a live migration its coordinator did not finish (src/actors/migration/settle-migration.ts),
 * with fakes behind the ports: `settleMigration` in the VM's actor (ownership not moved -> roll
 * back, moved -> finish on the destination), and `sweepMigrations`, the other hosts' half.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import type { IncomingEntry } from "../../src/actors/migration/incoming-migrations.ts";
import { settleMigration, sweepMigrations } from "../../src/actors/migration/settle-migration.ts";
import type { QmpCloseInfo, QmpEvent, QmpSession } from "../../src/actors/ports.ts";
import type { VmAccess } from "../../src/actors/vm-actor.ts";
import type { VmView } from "../../src/actors/vm-view.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import type { NewEvent } from "../../src/events/envelope.ts";
import type { MigrationTarget } from "../../src/events/migration-events.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { createFakeWorld, FakeQemu, type FakeWorld } from "../support/fake-ports.ts";
import { foldedView } from "../support/store-events.ts";

const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };
const VM = "0b7c"; // the VM's id: the marker on its QEMUs' command lines
const M = "m-1";
const SOURCE_PID = 4000;
const TARGET_PID = 5001;
const SOURCE_QMP = `/run/maqet/${VM}/qmp.sock`;
const T0 = 1_700_000_000_000;

/**
 * A QEMU's QMP session as settling sees it: its run state and its migration status. On the
 * source, `migrate_cancel` cancels (and a source stopped at pre-switchover is left paused);
 * `migrate-continue` completes (then `onContinue` lets the destination receive the rest).
 */
class QemuSession implements QmpSession {
  readonly greeting = { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "fake" }, capabilities: [] };
  readonly events$ = new Subject<QmpEvent>();
  readonly commands: string[] = [];
  isClosed = false;
  #resolveClosed!: (info: QmpCloseInfo) => void;
  readonly closed = new Promise<QmpCloseInfo>((resolve) => {
    this.#resolveClosed = resolve;
  });
  onContinue?: () => void;

  constructor(
    public runState: string,
    public migrateStatus?: string,
  ) {}

  async execute<T>(command: string): Promise<T> {
    if (this.isClosed) throw new MaqetError("QMP_DISCONNECTED", "closed");
    this.commands.push(command);
    switch (command) {
      case "query-status":
        return { status: this.runState, running: this.runState === "running" } as T;
      case "query-migrate":
        return (this.migrateStatus === undefined ? {} : { status: this.migrateStatus }) as T;
      case "migrate_cancel":
        this.migrateStatus = "cancelled";
        if (this.runState === "finish-migrate") this.runState = "paused";
        return {} as T;
      case "migrate-continue":
        this.migrateStatus = "completed";
        this.runState = "postmigrate";
        this.onContinue?.();
        return {} as T;
      case "cont":
        this.runState = "running";
        return {} as T;
      default:
        throw new MaqetError("QMP_ERROR", `unexpected ${command}`);
    }
  }

  async close(): Promise<void> {
    this.isClosed = true;
    this.events$.complete();
    this.#resolveClosed({});
  }
}

const target = (host: string): MigrationTarget => ({
  host,
  pid: TARGET_PID,
  qmpSocket: `/run/maqet/${VM}.m/qmp.sock`,
  runtimeDir: `/run/maqet/${VM}.m`,
  pidFile: `/run/maqet/${VM}.m/qemu.pid`,
  argv: [],
  binary: "/usr/bin/qemu-system-x86_64",
  accel: "tcg",
});

interface Story {
  /** How far the migration got: the last fact recorded. */
  upTo: "requested" | "prepared" | "started" | "switchover" | "moved" | "moved-back" | "migrated-unresumed";
  toHost?: string;
  /** The guest was paused by its user before the migration. */
  userPaused?: boolean;
  /** Whether the destination is to be resumed (owner-changed `resume`). */
  resume?: boolean;
}

/** The VM's stream up to where the coordinator died (VM "web", running on lab1 as pid 4000). */
function story({ upTo, toHost = "lab2", userPaused = false, resume = !userPaused }: Story): NewEvent[] {
  const events: NewEvent[] = [
    vmEvent("vm.defined", { vmId: VM, name: "web", config }),
    vmEvent("vm.start-requested", { timeoutMs: 30_000, runtimeDir: `/run/maqet/${VM}` }),
    vmEvent("vm.started", {
      pid: SOURCE_PID,
      qmpSocket: SOURCE_QMP,
      runtimeDir: `/run/maqet/${VM}`,
      pidFile: `/run/maqet/${VM}/qemu.pid`,
      argv: [],
      binary: "/usr/bin/qemu-system-x86_64",
      accel: "tcg",
      durationMs: 10,
    }),
  ];
  if (userPaused) events.push(vmEvent("vm.paused", { detail: "user" }));
  const steps: NewEvent[] = [
    vmEvent("vm.migration-requested", {
      migrationId: M,
      fromHost: "lab1",
      toHost,
      downtimeLimitMs: 300,
      bandwidthMiBs: 1024,
      timeoutMs: 600_000,
    }),
    vmEvent("vm.migration-target-prepared", { migrationId: M, uri: "tcp:127.0.0.1:4444", ...target(toHost) }),
    vmEvent("vm.migration-started", { migrationId: M, uri: "tcp:127.0.0.1:4444" }),
    vmEvent("vm.migration-switchover", { migrationId: M, passes: 2, remainingBytes: 4096 }),
    vmEvent("vm.owner-changed", { migrationId: M, fromHost: "lab1", toHost, epoch: 0, target: target(toHost), resume }),
    // Failed after the commit: ownership committed back to the source (migrate-out failAfterCommit).
    vmEvent("vm.owner-changed", {
      migrationId: M,
      fromHost: toHost,
      toHost: "lab1",
      epoch: 0,
      resume,
      target: {
        ...target(toHost),
        host: "lab1",
        pid: SOURCE_PID,
        qmpSocket: SOURCE_QMP,
        runtimeDir: `/run/maqet/${VM}`,
        pidFile: `/run/maqet/${VM}/qemu.pid`,
      },
    }),
  ];
  const upToIndex = ["requested", "prepared", "started", "switchover", "moved", "moved-back"];
  if (upTo === "migrated-unresumed") {
    events.push(
      ...steps.slice(0, 5),
      vmEvent("vm.migrated", { migrationId: M, fromHost: "lab1", toHost, resumed: false }),
    );
  } else {
    events.push(...steps.slice(0, upToIndex.indexOf(upTo) + 1));
  }
  return events;
}

const fold = (events: readonly NewEvent[]): VmView => foldedView(events, { fromMs: T0, stepMs: 1 });

/** A QEMU of the VM in the fake world (alive, with the VM's marker). */
function qemuAt(world: FakeWorld, pid: number): FakeQemu {
  const q = new FakeQemu(pid, VM, world.guest);
  world.qemus.push(q);
  return q;
}

/** The VmAccess the actor hands to settleMigration; `recorded` collects what it records. */
function accessTo(world: FakeWorld, view: VmView, session: QmpSession | undefined) {
  const recorded: NewEvent[] = [];
  const access: VmAccess = {
    view,
    running: session !== undefined,
    ...(session ? { session } : {}),
    ports: world.ports,
    record: async (events) => {
      recorded.push(...events);
      return [];
    },
  };
  return { access, recorded };
}

/** QMP connections the fake connector hands out, by socket path. */
function connectTo(world: FakeWorld, sessions: Record<string, QemuSession>): string[] {
  const connected: string[] = [];
  world.ports.qmp = {
    connect: async (path) => {
      connected.push(path);
      const s = sessions[path];
      if (!s) throw new MaqetError("TIMEOUT", `no QMP at ${path}`);
      return s;
    },
  };
  return connected;
}

const data = (events: NewEvent[]) => events.map((e) => ({ type: e.type, ...(e.data as object) }));

describe("settleMigration: ownership not moved -> rolled back, the source runs on", () => {
  it("stopped at pre-switchover: migrate_cancel, cont, the destination QEMU on this host killed, vm.migration-failed{recovered}", async () => {
    const world = createFakeWorld();
    const source = qemuAt(world, SOURCE_PID);
    const destination = qemuAt(world, TARGET_PID);
    const session = new QemuSession("finish-migrate", "pre-switchover");
    const view = fold(story({ upTo: "switchover", toHost: "lab1" }));
    const { access, recorded } = accessTo(world, view, session);

    const note = await settleMigration(access, { hostName: "lab1" });

    expect(session.commands.filter((c) => c !== "query-migrate" && c !== "query-status")).toEqual([
      "migrate_cancel",
      "cont",
    ]);
    expect(session.runState).toBe("running");
    expect(destination.signals).toEqual(["SIGKILL"]);
    expect(destination.alive).toBe(false);
    expect(source.alive).toBe(true);
    expect(source.signals).toEqual([]);
    expect(data(recorded)).toEqual([
      {
        type: "vm.migration-failed",
        migrationId: M,
        phase: "switchover",
        reason: expect.stringContaining(`rolled back: the source QEMU (pid ${SOURCE_PID}) runs on`),
        recovered: true,
      },
    ]);
    expect(note).toContain(`migration ${M} rolled back`);
    // The history now says the migration ended; the source is the VM.
    const after = fold([...story({ upTo: "switchover", toHost: "lab1" }), ...recorded]);
    expect(after.migration).toBeUndefined();
    expect(after.pid).toBe(SOURCE_PID);
  });

  it("in transfer: migrate_cancel, no cont for a guest that kept running; a destination on another host is left to that host", async () => {
    const world = createFakeWorld();
    const elsewhere = qemuAt(world, TARGET_PID); // same pid number, but on lab2: not ours to kill
    const session = new QemuSession("running", "active");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "started" })), session);

    await settleMigration(access, { hostName: "lab1" });

    expect(session.commands).toContain("migrate_cancel");
    expect(session.commands).not.toContain("cont");
    expect(elsewhere.alive).toBe(true);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.data).toMatchObject({
      phase: "transfer",
      recovered: true,
      reason: expect.stringContaining("(host 'lab2' ends its destination QEMU)"),
    });
  });

  it("no migration left in QEMU (it never started or already failed): no migrate_cancel", async () => {
    const world = createFakeWorld();
    const session = new QemuSession("running", "failed");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "prepared" })), session);
    await settleMigration(access, { hostName: "lab1" });
    expect(session.commands).not.toContain("migrate_cancel");
    expect(session.commands).not.toContain("cont");
    expect(recorded[0]!.data).toMatchObject({ phase: "prepare", recovered: true });
  });

  it("a guest its user paused before the migration stays paused", async () => {
    const world = createFakeWorld();
    const session = new QemuSession("finish-migrate", "pre-switchover");
    const view = fold(story({ upTo: "switchover", userPaused: true }));
    expect(view.pausedDetail).toBe("user");
    const { access, recorded } = accessTo(world, view, session);
    await settleMigration(access, { hostName: "lab1" });
    expect(session.commands).toContain("migrate_cancel");
    expect(session.commands).not.toContain("cont");
    expect(recorded[0]!.type).toBe("vm.migration-failed");
  });

  it("the source QEMU gone: still recorded (and the destination here killed)", async () => {
    const world = createFakeWorld();
    const destination = qemuAt(world, TARGET_PID);
    const { access, recorded } = accessTo(world, fold(story({ upTo: "started", toHost: "lab1" })), undefined);
    const note = await settleMigration(access, { hostName: "lab1" });
    expect(destination.signals).toEqual(["SIGKILL"]);
    expect(recorded[0]!.data).toMatchObject({
      phase: "transfer",
      recovered: true,
      reason: expect.stringContaining("the source QEMU was gone"),
    });
    expect(note).toContain("the source QEMU was gone");
  });

  it("only requested (no destination prepared): phase prepare, nothing to kill", async () => {
    const world = createFakeWorld();
    const session = new QemuSession("running");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "requested" })), session);
    await settleMigration(access, { hostName: "lab1" });
    expect(world.qemus).toEqual([]);
    expect(recorded[0]!.data).toMatchObject({ migrationId: M, phase: "prepare", recovered: true });
  });
});

describe("settleMigration: ownership moved -> the destination is the VM", () => {
  it("a paused destination (the state is in): cont, the source QEMU on this host ended, vm.migrated{recovered, resumed}", async () => {
    const world = createFakeWorld();
    const source = qemuAt(world, SOURCE_PID);
    qemuAt(world, TARGET_PID);
    const destination = new QemuSession("paused");
    const events = story({ upTo: "moved", toHost: "lab1" });
    const { access, recorded } = accessTo(world, fold(events), destination);

    const note = await settleMigration(access, { hostName: "lab1" });

    expect(destination.commands.filter((c) => c === "cont")).toHaveLength(1);
    expect(destination.runState).toBe("running");
    expect(source.signals).toEqual(["SIGKILL"]);
    expect(data(recorded)).toEqual([
      { type: "vm.migrated", migrationId: M, fromHost: "lab1", toHost: "lab1", resumed: true, recovered: true },
    ]);
    expect(note).toContain("the source QEMU was ended");
    const after = fold([...events, ...recorded]);
    expect(after.migration).toBeUndefined();
    expect(after.pid).toBe(TARGET_PID);
    expect(after.resumeAfterMigration).toBeUndefined();
  });

  it("moved to another host: this host's destination resumed; no source here to end", async () => {
    const world = createFakeWorld();
    const stranger = qemuAt(world, SOURCE_PID); // lab1's source: not on this host (lab2)
    const destination = new QemuSession("paused");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved" })), destination);
    await settleMigration(access, { hostName: "lab2" });
    expect(destination.commands).toContain("cont");
    expect(stranger.alive).toBe(true);
    expect(recorded[0]!.data).toMatchObject({ resumed: true, recovered: true });
  });

  it("a guest that did not run before (resume: false) stays paused: vm.migrated{resumed: false}", async () => {
    const world = createFakeWorld();
    const destination = new QemuSession("paused");
    const events = story({ upTo: "moved", userPaused: true });
    const { access, recorded } = accessTo(world, fold(events), destination);
    await settleMigration(access, { hostName: "lab2" });
    expect(destination.commands).not.toContain("cont");
    expect(recorded[0]!.data).toMatchObject({ resumed: false, recovered: true });
    expect(fold([...events, ...recorded]).resumeAfterMigration).toBeUndefined();
  });

  it("a destination already running: no cont, recorded as resumed", async () => {
    const world = createFakeWorld();
    const destination = new QemuSession("running");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved" })), destination);
    await settleMigration(access, { hostName: "lab2" });
    expect(destination.commands).not.toContain("cont");
    expect(recorded[0]!.data).toMatchObject({ resumed: true, recovered: true });
  });

  it("still inmigrate with the source on this host: migrate-continue on the source (its own QMP), then cont on the destination", async () => {
    const world = createFakeWorld();
    const source = qemuAt(world, SOURCE_PID);
    qemuAt(world, TARGET_PID);
    const destination = new QemuSession("inmigrate");
    const sourceQmp = new QemuSession("finish-migrate", "pre-switchover");
    // The rest of the state arrives once the source goes on.
    sourceQmp.onContinue = () => {
      destination.runState = "paused";
    };
    const connected = connectTo(world, { [SOURCE_QMP]: sourceQmp });
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved", toHost: "lab1" })), destination);

    await settleMigration(access, { hostName: "lab1" });

    expect(connected).toEqual([SOURCE_QMP]);
    expect(sourceQmp.commands).toContain("migrate-continue");
    expect(sourceQmp.isClosed).toBe(true);
    expect(destination.commands).toContain("cont");
    expect(destination.runState).toBe("running");
    expect(source.signals).toEqual(["SIGKILL"]);
    expect(recorded[0]!.data).toMatchObject({ resumed: true, recovered: true });
  });

  it("the source is not at pre-switchover any more (it went on by itself): no migrate-continue, the destination still resumed", async () => {
    const world = createFakeWorld();
    qemuAt(world, SOURCE_PID);
    const destination = new QemuSession("inmigrate");
    const sourceQmp = new QemuSession("postmigrate", "completed");
    connectTo(world, { [SOURCE_QMP]: sourceQmp });
    let polls = 0;
    const state = destination.execute.bind(destination);
    destination.execute = async <T>(command: string): Promise<T> => {
      if (command === "query-status" && ++polls === 3) destination.runState = "paused";
      return state<T>(command);
    };
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved", toHost: "lab1" })), destination);
    await settleMigration(access, { hostName: "lab1" });
    expect(sourceQmp.commands).not.toContain("migrate-continue");
    expect(destination.commands).toContain("cont");
    expect(recorded[0]!.type).toBe("vm.migrated");
  });

  it("still inmigrate and the rest never comes (the source is another host's): waits waitMs, records nothing", async () => {
    const world = createFakeWorld();
    const destination = new QemuSession("inmigrate");
    const connected = connectTo(world, {});
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved" })), destination);
    const t0 = world.clock.now();
    const note = await settleMigration(access, { hostName: "lab2", waitMs: 2000 });
    expect(note).toBeUndefined();
    expect(recorded).toEqual([]);
    expect(connected).toEqual([]);
    expect(destination.commands).not.toContain("cont");
    expect(world.clock.now() - t0).toBeGreaterThanOrEqual(2000);
  });

  it("no QMP session but the destination QEMU alive: nothing recorded, settled at a later load", async () => {
    const world = createFakeWorld();
    const destination = qemuAt(world, TARGET_PID);
    const source = qemuAt(world, SOURCE_PID);
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved", toHost: "lab1" })), undefined);
    expect(await settleMigration(access, { hostName: "lab1" })).toBeUndefined();
    expect(recorded).toEqual([]);
    expect(destination.signals).toEqual([]);
    expect(source.signals).toEqual([]);
  });

  it("no QMP session and the destination QEMU gone: vm.migration-failed{completion, recovered}, the source here ended too", async () => {
    const world = createFakeWorld();
    const source = qemuAt(world, SOURCE_PID);
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved", toHost: "lab1" })), undefined);
    const note = await settleMigration(access, { hostName: "lab1" });
    expect(source.signals).toEqual(["SIGKILL"]);
    expect(data(recorded)).toEqual([
      {
        type: "vm.migration-failed",
        migrationId: M,
        phase: "completion",
        reason: expect.stringContaining("the destination QEMU was gone"),
        recovered: true,
      },
    ]);
    expect(note).toContain("the destination QEMU was gone");
  });

  it("committed back to the source after a failed switchover (the coordinator died before recording the failure): recorded as failed, the source kept", async () => {
    const world = createFakeWorld();
    const source = qemuAt(world, SOURCE_PID);
    const sourceQmp = new QemuSession("running", "failed");
    const events = story({ upTo: "moved-back" });
    const view = fold(events);
    expect(view.pid).toBe(SOURCE_PID);
    const { access, recorded } = accessTo(world, view, sourceQmp);
    await settleMigration(access, { hostName: "lab1" });
    expect(source.alive).toBe(true);
    expect(recorded.map((e) => e.type)).toEqual(["vm.migration-failed"]);
    expect(recorded[0]!.data).toMatchObject({ migrationId: M, phase: "completion", recovered: true });
    expect(sourceQmp.commands).not.toContain("cont");
    const after = fold([...events, ...recorded]);
    expect(after.migration).toBeUndefined();
    expect(after.pid).toBe(SOURCE_PID);
  });

  it("committed back, the source left stopped by the failed switchover: it is resumed", async () => {
    const world = createFakeWorld();
    qemuAt(world, SOURCE_PID);
    const sourceQmp = new QemuSession("postmigrate", "failed");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "moved-back" })), sourceQmp);
    const note = await settleMigration(access, { hostName: "lab1" });
    expect(sourceQmp.commands).toContain("cont");
    expect(recorded[0]!.data).toMatchObject({ phase: "completion", recovered: true });
    expect(note).toContain("runs on its source");
  });
});

describe("settleMigration with no open migration: resumeAfterMigration", () => {
  it("a destination left paused by a completed migration is resumed (cont)", async () => {
    const world = createFakeWorld();
    const session = new QemuSession("paused");
    const view = fold(story({ upTo: "migrated-unresumed" }));
    expect(view.resumeAfterMigration).toBe(M);
    const { access, recorded } = accessTo(world, view, session);
    const note = await settleMigration(access, { hostName: "lab2" });
    expect(session.commands).toContain("cont");
    expect(note).toContain(`resumed after migration ${M}`);
    // The cont is observed by the actor and recorded as vm.resumed, not here.
    expect(recorded).toEqual([]);
  });

  it("one already running is left alone; without a session nothing happens", async () => {
    const world = createFakeWorld();
    const view = fold(story({ upTo: "migrated-unresumed" }));
    const runningNow = new QemuSession("running");
    expect(await settleMigration(accessTo(world, view, runningNow).access, { hostName: "lab2" })).toBeUndefined();
    expect(runningNow.commands).not.toContain("cont");
    expect(await settleMigration(accessTo(world, view, undefined).access, { hostName: "lab2" })).toBeUndefined();
  });

  it("a VM with neither does nothing", async () => {
    const world = createFakeWorld();
    const session = new QemuSession("paused");
    const { access, recorded } = accessTo(world, fold(story({ upTo: "requested" }).slice(0, 3)), session);
    expect(await settleMigration(access, { hostName: "lab1" })).toBeUndefined();
    expect(session.commands).toEqual([]);
    expect(recorded).toEqual([]);
  });
});

describe("sweepMigrations: this host's half of migrations others drive", () => {
  const GRACE = 10_000;

  function sweepSetup(options: { entries?: IncomingEntry[]; arrived?: boolean } = {}) {
    const world = createFakeWorld();
    const calls: string[] = [];
    const views = new Map<string, VmView>();
    const incoming = {
      entries: () => options.entries ?? [],
      finish: async (req: { migrationId: string; resume: boolean; timeoutMs?: number }) => {
        calls.push(`finish ${req.migrationId} resume=${req.resume} timeout=${req.timeoutMs}`);
        return { resumed: req.resume && options.arrived !== false, arrived: options.arrived !== false };
      },
      abort: async (req: { migrationId: string }) => {
        calls.push(`abort ${req.migrationId}`);
        return { aborted: true };
      },
    };
    const deps = {
      hostName: "lab2",
      ports: world.ports,
      incoming,
      held: [] as VmView[],
      foreign: [] as VmView[],
      readView: async (vmId: string) => {
        calls.push(`read ${vmId}`);
        return views.get(vmId);
      },
      settleOwned: async (vmId: string) => {
        calls.push(`settle ${vmId}`);
        return `migration ${M} finished`;
      },
    };
    return { world, calls, views, deps };
  }

  const entry = (world: FakeWorld, ageMs: number, pid = TARGET_PID): IncomingEntry => ({
    migrationId: M,
    vmId: VM,
    pid,
    since: world.clock.now() - ageMs,
  });

  it("an incoming QEMU younger than the grace period is left alone", async () => {
    const s = sweepSetup();
    s.deps.incoming.entries = () => [entry(s.world, GRACE - 1)];
    expect(await sweepMigrations(s.deps)).toEqual([]);
    expect(s.calls).toEqual([]);
  });

  it("moved here and nobody finished it: finish (only if arrived), then hand it to its actor", async () => {
    const s = sweepSetup();
    s.deps.incoming.entries = () => [entry(s.world, GRACE + 1)];
    s.views.set(VM, fold(story({ upTo: "moved" })));
    const notes = await sweepMigrations(s.deps);
    expect(s.calls).toEqual([`read ${VM}`, `finish ${M} resume=true timeout=0`, `settle ${VM}`]);
    expect(notes).toEqual([`VM 'web': migration ${M} finished`]);
  });

  it("moved here but the state has not arrived: nothing settled yet", async () => {
    const s = sweepSetup({ arrived: false });
    s.deps.incoming.entries = () => [entry(s.world, GRACE + 1)];
    s.views.set(VM, fold(story({ upTo: "moved" })));
    expect(await sweepMigrations(s.deps)).toEqual([]);
    expect(s.calls).not.toContain(`settle ${VM}`);
    expect(s.calls.some((c) => c.startsWith("abort"))).toBe(false);
  });

  it("a migration still in flight keeps its incoming QEMU", async () => {
    const s = sweepSetup();
    s.deps.incoming.entries = () => [entry(s.world, GRACE + 1)];
    s.views.set(VM, fold(story({ upTo: "started" })));
    expect(await sweepMigrations(s.deps)).toEqual([]);
    expect(s.calls).toEqual([`read ${VM}`]);
  });

  it("a migration that ended without this host (rolled back): its incoming QEMU is killed", async () => {
    const s = sweepSetup();
    s.deps.incoming.entries = () => [entry(s.world, GRACE + 1)];
    const events = story({ upTo: "started" });
    events.push(vmEvent("vm.migration-cancelled", { migrationId: M, phase: "transfer", by: "user", reason: "x" }));
    s.views.set(VM, fold(events));
    const notes = await sweepMigrations(s.deps);
    expect(s.calls).toEqual([`read ${VM}`, `abort ${M}`]);
    expect(notes).toEqual([`migration ${M} ended without this host: its incoming QEMU (pid ${TARGET_PID}) was killed`]);
  });

  it("an incoming QEMU that is the VM now (migrated) is not killed", async () => {
    const s = sweepSetup();
    s.deps.incoming.entries = () => [entry(s.world, GRACE + 1)];
    const events = story({ upTo: "moved" });
    events.push(vmEvent("vm.migrated", { migrationId: M, fromHost: "lab1", toHost: "lab2", resumed: true }));
    s.views.set(VM, fold(events));
    expect(await sweepMigrations(s.deps)).toEqual([]);
    expect(s.calls).toEqual([`read ${VM}`]);
  });

  it("a VM held here that moved here and is not being received: settled through its actor after the grace period", async () => {
    const s = sweepSetup();
    const view = fold(story({ upTo: "moved" }));
    s.deps.held = [view];
    s.world.clock.t = T0 + GRACE - 100; // the owner-changed was recorded at about T0
    expect(await sweepMigrations(s.deps)).toEqual([]);
    s.world.clock.t = T0 + GRACE + 100;
    expect(await sweepMigrations(s.deps)).toEqual([`VM 'web': migration ${M} finished`]);
    expect(s.calls).toEqual([`settle ${VM}`]);
  });

  it("a held VM whose migration this process still receives is its coordinator's: not settled", async () => {
    const s = sweepSetup();
    s.world.clock.t = T0 + GRACE + 100;
    s.deps.held = [fold(story({ upTo: "moved" }))];
    s.deps.incoming.entries = () => [entry(s.world, 5)];
    expect(await sweepMigrations(s.deps)).toEqual([]);
    expect(s.calls).toEqual([]);
  });

  it("moved away from here while its coordinator here died: the source QEMU here sends the rest and is ended", async () => {
    const s = sweepSetup();
    s.deps.hostName = "lab1";
    const source = qemuAt(s.world, SOURCE_PID);
    const sourceQmp = new QemuSession("finish-migrate", "pre-switchover");
    connectTo(s.world, { [SOURCE_QMP]: sourceQmp });
    const view = fold(story({ upTo: "moved" }));
    s.deps.foreign = [{ ...view, migration: undefined }]; // the list has no migration column
    s.views.set(VM, view);
    const notes = await sweepMigrations(s.deps);
    expect(sourceQmp.commands).toContain("migrate-continue");
    expect(source.signals).toEqual(["SIGKILL"]);
    expect(notes).toEqual([
      `VM 'web' moved to 'lab2': its source QEMU here (pid ${SOURCE_PID}) sent the rest and was ended`,
    ]);
  });

  it("a foreign VM with no QEMU of it here is not read at all", async () => {
    const s = sweepSetup();
    s.deps.hostName = "lab1";
    s.deps.foreign = [fold(story({ upTo: "moved" }))];
    expect(await sweepMigrations(s.deps)).toEqual([]);
    expect(s.calls).toEqual([]);
  });
});
