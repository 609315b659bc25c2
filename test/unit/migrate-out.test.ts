/**
 * The source side of a live migration (src/actors/migration/migrate-out.ts) against a scripted
 * QEMU: `query-migrate` answers from a script, MIGRATION events on `events$`, a fake
 * destination (MigrationTargetPort) and fake record/commit. Time is simulated: the transfer's
 * polls and the deadline run on the ports' clock.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import { type MigrateOutDeps, type MigrationRequest, migrateOut } from "../../src/actors/migration/migrate-out.ts";
import type { MigrationInfo } from "../../src/actors/migration/migration-qmp.ts";
import type { QmpCloseInfo, QmpEvent, QmpSession } from "../../src/actors/ports.ts";
import type { VmView } from "../../src/actors/vm-view.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import type { NewEvent } from "../../src/events/envelope.ts";
import type { MigrationTarget } from "../../src/events/migration-events.ts";
import { vmEvent } from "../../src/events/vm-events.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createFakeWorld, FakeQemu, type FakeWorld } from "../support/fake-ports.ts";
import { foldedView } from "../support/store-events.ts";

const MiB = 1024 * 1024;
const config: VmConfig = { accel: "tcg", memory: "64M", args: [], arguments: [], storage: [] };

/** `query-migrate` answers; a list's last answer repeats. */
interface Script {
  /** After `migrate`, until `migrate-continue` (or `migrate_cancel`). */
  transfer: MigrationInfo[];
  /** After `migrate-continue`. */
  completion?: MigrationInfo[];
}

/**
 * The source QEMU's QMP session as a migration sees it. Its run state follows QEMU's: stopped
 * (`finish-migrate`) at `pre-switchover`, `postmigrate` once completed, and (as QEMU 7.2 leaves
 * it) paused after a cancel at `pre-switchover`.
 */
class MigratingSession implements QmpSession {
  readonly greeting = { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "fake" }, capabilities: [] };
  readonly events$ = new Subject<QmpEvent>();
  readonly commands: Array<{ command: string; args?: Record<string, unknown> }> = [];
  isClosed = false;
  #resolveClosed!: (info: QmpCloseInfo) => void;
  readonly closed = new Promise<QmpCloseInfo>((resolve) => {
    this.#resolveClosed = resolve;
  });
  stage: "idle" | "transfer" | "completion" | "cancelled" = "idle";
  #answered = 0;
  /** Called with each `query-migrate` answer (its index in the current list): aborts, events. */
  onQuery?: (info: MigrationInfo, index: number) => void;
  /** `quit` leaves the process running (it lingers until SIGKILL). */
  quitIgnored = false;

  constructor(
    readonly log: string[],
    readonly script: Script,
    public runState: string,
    readonly source: FakeQemu,
  ) {}

  emit(event: string, data?: Record<string, unknown>): void {
    this.events$.next({ event, data, timestamp: { seconds: 0, microseconds: 0 } });
  }

  executed(command: string): number {
    return this.commands.filter((c) => c.command === command).length;
  }

  async execute<T>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.isClosed) throw new MaqetError("QMP_DISCONNECTED", "closed");
    this.commands.push({ command, args });
    if (command !== "query-migrate" && command !== "query-status") this.log.push(`qmp ${command}`);
    switch (command) {
      case "migrate-set-capabilities":
      case "migrate-set-parameters":
        return {} as T;
      case "migrate":
        this.stage = "transfer";
        this.#answered = 0;
        return {} as T;
      case "migrate-continue":
        this.stage = "completion";
        this.#answered = 0;
        return {} as T;
      case "migrate_cancel":
        if (this.stage === "transfer") this.stage = "cancelled";
        if (this.runState === "finish-migrate") this.runState = "paused";
        return {} as T;
      case "query-migrate":
        return this.#query() as T;
      case "query-status":
        return { status: this.runState, running: this.runState === "running" } as T;
      case "cont":
        this.runState = "running";
        return {} as T;
      case "quit":
        if (!this.quitIgnored) this.source.die({ code: 0, signal: null });
        await this.close();
        return {} as T;
      default:
        throw new MaqetError("QMP_ERROR", `unexpected ${command}`);
    }
  }

  #query(): MigrationInfo {
    if (this.stage === "idle") return {};
    if (this.stage === "cancelled") return { status: "cancelled" };
    const list = this.stage === "transfer" ? this.script.transfer : (this.script.completion ?? [completed()]);
    const index = this.#answered++;
    const info = structuredClone(list[Math.min(index, list.length - 1)]!);
    if (info.status === "pre-switchover") this.runState = "finish-migrate";
    if (this.stage === "completion" && info.status === "completed") this.runState = "postmigrate";
    if (this.stage === "completion" && info.status === "failed") this.runState = "paused";
    this.onQuery?.(info, index);
    return info;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.events$.complete();
    this.#resolveClosed({});
  }
}

const active = (passes: number, remaining = 500 * MiB): MigrationInfo => ({
  status: "active",
  ram: { transferred: 1000 * MiB - remaining, remaining, total: 1000 * MiB, mbps: 800, "dirty-sync-count": passes },
  "expected-downtime": 30,
});
const preSwitchover = (passes = 3): MigrationInfo => ({
  status: "pre-switchover",
  ram: { transferred: 999 * MiB, remaining: 4096, total: 1000 * MiB, mbps: 800, "dirty-sync-count": passes },
});
function completed(totalTime = 812): MigrationInfo {
  return {
    status: "completed",
    downtime: totalTime === 0 ? 0 : 41,
    "total-time": totalTime,
    "setup-time": 5,
    ram: { transferred: 1001 * MiB, remaining: 0, total: 1000 * MiB, mbps: 800, "dirty-sync-count": 3 },
  };
}

const target: MigrationTarget = {
  host: "lab2",
  pid: 5001,
  qmpSocket: "/run/maqet-lab2/1/qmp.sock",
  runtimeDir: "/run/maqet-lab2/1",
  pidFile: "/run/maqet-lab2/1/qemu.pid",
  argv: ["-incoming", "defer"],
  binary: "/usr/bin/qemu-system-x86_64",
  accel: "tcg",
  qemuVersion: "7.2.0",
};

const request: MigrationRequest = {
  migrationId: "m-1",
  fromHost: "lab1",
  toHost: "lab2",
  downtimeLimitMs: 300,
  bandwidthMiBs: 1024,
  timeoutMs: 600_000,
};

/** The VM's stream before the migration: defined, started (pid 4000 on lab1). */
const history: NewEvent[] = [
  vmEvent("vm.defined", { vmId: "1", name: "web", config }),
  vmEvent("vm.start-requested", { timeoutMs: 30_000, runtimeDir: "/run/maqet/1" }),
  vmEvent("vm.started", {
    pid: 4000,
    qmpSocket: "/run/maqet/1/qmp.sock",
    runtimeDir: "/run/maqet/1",
    pidFile: "/run/maqet/1/qemu.pid",
    argv: [],
    binary: "/usr/bin/qemu-system-x86_64",
    accel: "tcg",
    durationMs: 10,
  }),
];

const fold = (events: readonly NewEvent[]): VmView => foldedView(events, { fromMs: 1_700_000_000_000, stepMs: 1 });

interface Options {
  script: Script;
  wasRunning?: boolean;
  request?: Partial<MigrationRequest>;
  prepareFails?: Error;
  finishFails?: Error;
  commitFails?: Error;
  world?: FakeWorld;
  signal?: AbortSignal;
}

function setup(options: Options) {
  const world = options.world ?? createFakeWorld();
  const wasRunning = options.wasRunning ?? true;
  const log: string[] = [];
  const crashes: string[] = [];
  world.ports.crash = (point) => void crashes.push(point);
  const source = new FakeQemu(4000, "1", world.guest);
  world.qemus.push(source);
  const session = new MigratingSession(log, options.script, wasRunning ? "running" : "paused", source);
  const view = fold(history);
  /** Every fact, in the order it reached the stream (what the VM's stream would hold). */
  const facts: NewEvent[] = [];
  const commits: Array<{ data: Parameters<MigrateOutDeps["commit"]>[0]; before?: NewEvent[] }> = [];
  const prepares: Array<Record<string, unknown>> = [];
  const afterCommitEpochs: number[] = [];
  /** The clock reading at each progress fact. */
  const progressAt: number[] = [];
  const types = (events: readonly NewEvent[]) => events.map((e) => e.type).join(",");
  let epoch = 6;
  const deps: MigrateOutDeps = {
    ports: world.ports,
    view,
    session,
    wasRunning,
    target: {
      prepare: async (req) => {
        log.push("target.prepare");
        prepares.push({ ...req });
        if (options.prepareFails) throw options.prepareFails;
        return { uri: "tcp:10.0.0.2:4444", target };
      },
      finish: async (req) => {
        log.push(`target.finish resume=${req.resume}`);
        if (options.finishFails) throw options.finishFails;
        return { resumed: req.resume, arrived: true };
      },
      abort: async () => {
        log.push("target.abort");
        return { aborted: true };
      },
    },
    record: async (events) => {
      log.push(`record ${types(events)}`);
      for (const e of events) if (e.type === "vm.migration-progress") progressAt.push(world.clock.now());
      facts.push(...events);
    },
    commit: async (data, before) => {
      log.push(`commit ${types([...(before ?? []), { type: "vm.owner-changed", schemaVersion: 1, data }])}`);
      commits.push({ data, before });
      if (options.commitFails) throw options.commitFails;
      epoch += 1;
      facts.push(...(before ?? []), vmEvent("vm.owner-changed", { ...data, epoch }));
      return { epoch };
    },
    recordAfterCommit: async (events, at) => {
      log.push(`recordAfterCommit ${types(events)} @${at}`);
      afterCommitEpochs.push(at);
      facts.push(...events);
    },
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const run = () => migrateOut(deps, { ...request, ...options.request });
  return { world, log, crashes, session, source, view, facts, commits, prepares, afterCommitEpochs, progressAt, run };
}

/** The log without the progress facts (their number depends on the poll count). */
const steps = (log: string[]) => log.filter((line) => line !== "record vm.migration-progress");

const factTypes = (facts: NewEvent[]) => facts.map((e) => e.type);
const fact = (facts: NewEvent[], type: string) => facts.find((e) => e.type === type)?.data as Record<string, unknown>;

describe("migrateOut: the source side of a live migration", () => {
  it("runs the whole sequence: facts in order, one commit at pre-switchover carrying the switchover, migrate-continue after it", async () => {
    const s = setup({
      script: {
        transfer: [
          { status: "setup" },
          ...Array.from({ length: 25 }, (_, i) => active(1 + Math.floor(i / 10))),
          preSwitchover(3),
        ],
        completion: [{ status: "device" }, completed()],
      },
    });
    const result = await s.run();

    expect(steps(s.log)).toEqual([
      "record vm.migration-requested",
      "target.prepare",
      "record vm.migration-target-prepared",
      "qmp migrate-set-capabilities",
      "qmp migrate-set-parameters",
      "qmp migrate",
      "record vm.migration-started",
      "commit vm.migration-switchover,vm.owner-changed",
      "qmp migrate-continue",
      "target.finish resume=true",
      "qmp quit",
      "recordAfterCommit vm.migrated @7",
    ]);
    expect(factTypes(s.facts)).toEqual([
      "vm.migration-requested",
      "vm.migration-target-prepared",
      "vm.migration-started",
      "vm.migration-progress",
      "vm.migration-progress",
      "vm.migration-switchover",
      "vm.owner-changed",
      "vm.migrated",
    ]);

    // The commit: once, with the switchover as `before`, naming the destination QEMU.
    expect(s.commits).toHaveLength(1);
    expect(s.commits[0]!.data).toEqual({ migrationId: "m-1", fromHost: "lab1", toHost: "lab2", target, resume: true });
    expect(s.commits[0]!.before).toEqual([
      vmEvent("vm.migration-switchover", { migrationId: "m-1", passes: 3, remainingBytes: 4096 }),
    ]);

    // QEMU was told what was asked.
    const args = (command: string) => s.session.commands.find((c) => c.command === command)?.args;
    expect(args("migrate-set-capabilities")).toEqual({
      capabilities: [
        { capability: "events", state: true },
        { capability: "pause-before-switchover", state: true },
      ],
    });
    expect(args("migrate-set-parameters")).toEqual({ "downtime-limit": 300, "max-bandwidth": 1024 * MiB });
    expect(args("migrate")).toEqual({ uri: "tcp:10.0.0.2:4444" });
    expect(args("migrate-continue")).toEqual({ state: "pre-switchover" });
    expect(s.session.executed("migrate_cancel")).toBe(0);

    expect(fact(s.facts, "vm.migration-target-prepared")).toEqual({
      migrationId: "m-1",
      uri: "tcp:10.0.0.2:4444",
      ...target,
    });
    expect(fact(s.facts, "vm.migration-progress")).toMatchObject({
      migrationId: "m-1",
      status: "active",
      passes: 1,
      remainingBytes: 500 * MiB,
      totalBytes: 1000 * MiB,
      mbps: 800,
      expectedDowntimeMs: 30,
    });
    expect(fact(s.facts, "vm.migrated")).toEqual({
      migrationId: "m-1",
      fromHost: "lab1",
      toHost: "lab2",
      downtimeMs: 41,
      totalMs: 812,
      setupMs: 5,
      transferredBytes: 1001 * MiB,
      passes: 3,
      resumed: true,
    });
    expect(result).toEqual({
      migrationId: "m-1",
      vm: "web",
      fromHost: "lab1",
      toHost: "lab2",
      pid: 5001,
      downtimeMs: 41,
      totalMs: 812,
      setupMs: 5,
      transferredBytes: 1001 * MiB,
      passes: 3,
      epoch: 7,
      resumed: true,
    });

    // The source QEMU is ended and its session closed; the destination was never aborted.
    expect(s.source.alive).toBe(false);
    expect(s.source.signals).toEqual([]);
    expect(s.session.isClosed).toBe(true);
    expect(s.log).not.toContain("target.abort");
    // Crash points in order, the commit's between the commit and migrate-continue.
    expect(s.crashes).toEqual(["migrate.transfer", "migrate.switchover", "migrate.committed"]);

    // What the stream holds folds into a closed migration whose QEMU is the destination's.
    const after = fold([...history, ...s.facts]);
    expect(after.migration).toBeUndefined();
    expect(after.pid).toBe(5001);
    expect(after.resumeAfterMigration).toBeUndefined();
  });

  it("asks the destination for another runtime directory only when it is on the same host", async () => {
    const other = setup({ script: { transfer: [preSwitchover()] } });
    await other.run();
    expect(other.prepares[0]).toEqual({ migrationId: "m-1", vmId: "1", name: "web", config: other.view.config });
    const same = setup({ script: { transfer: [preSwitchover()] }, request: { toHost: "lab1" } });
    await same.run();
    expect(same.prepares[0]).toMatchObject({ sourceRuntimeDir: "/run/maqet/1" });
  });

  it("a paused guest is moved paused: resume false in the commit and the finish, vm.migrated{resumed: false}", async () => {
    const s = setup({ script: { transfer: [active(1), preSwitchover()] }, wasRunning: false });
    const result = await s.run();
    expect(s.commits[0]!.data.resume).toBe(false);
    expect(s.log).toContain("target.finish resume=false");
    expect(result.resumed).toBe(false);
    expect(fact(s.facts, "vm.migrated")).toMatchObject({ resumed: false });
    // Paused by its user, not left paused by the migration: nothing to resume later.
    expect(fold([...history, ...s.facts]).resumeAfterMigration).toBeUndefined();
  });

  it("samples progress once a second for ten seconds, then every five", async () => {
    // 200 polls of 100 ms: 20 s of transfer.
    const s = setup({ script: { transfer: [...Array.from({ length: 200 }, () => active(1)), preSwitchover()] } });
    const t0 = s.world.clock.now();
    await s.run();
    const offsets = s.progressAt.map((t) => t - t0);
    expect(offsets).toEqual([1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 14_000, 19_000]);
  });

  it("counts passes from MIGRATION_PASS events as well as from dirty-sync-count", async () => {
    const s = setup({ script: { transfer: [active(1), active(1), preSwitchover(1)] } });
    s.session.onQuery = (_info, index) => {
      if (index === 1) s.session.emit("MIGRATION_PASS", { pass: 5 });
    };
    const result = await s.run();
    expect(s.commits[0]!.before).toEqual([
      vmEvent("vm.migration-switchover", { migrationId: "m-1", passes: 5, remainingBytes: 4096 }),
    ]);
    expect(result.passes).toBe(5);
  });

  it("a MIGRATION event wakes the poll at once: pre-switchover is not left waiting for the next 100 ms", async () => {
    const world = createFakeWorld();
    const clock = new FakeClock(1_000_000);
    world.ports.clock = clock;
    const s = setup({ script: { transfer: [active(1)] }, world });
    const running = s.run();
    await clock.untilSleeping();
    const napStart = clock.now();
    // The source reaches pre-switchover; QEMU says so with a MIGRATION event.
    s.session.script.transfer.push(preSwitchover());
    s.session.emit("MIGRATION", { status: "pre-switchover" });
    for (let i = 0; i < 50 && s.commits.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(s.commits).toHaveLength(1);
    expect(clock.now()).toBe(napStart);
    // Let the completion's short sleeps run.
    for (let i = 0; i < 50 && !s.log.some((l) => l.startsWith("recordAfterCommit")); i++) await clock.advance(5);
    await expect(running).resolves.toMatchObject({ epoch: 7 });
  });

  it.each([
    [
      "failed",
      { status: "failed", "error-desc": "Unable to write to socket: Connection reset by peer" },
      "Connection reset by peer",
    ],
    ["cancelled", { status: "cancelled" }, "QEMU reports 'cancelled'"],
    ["none (no migration)", {}, "QEMU reports 'none'"],
  ] as Array<[string, MigrationInfo, string]>)(
    "QEMU status %s before the commit: migrate_cancel, destination aborted, vm.migration-failed{phase: transfer}, MIGRATION_FAILED; no commit",
    async (_name, bad, reason) => {
      const s = setup({ script: { transfer: [active(1), active(1), bad] } });
      const error = await s.run().catch((e) => e);
      expect(error).toBeMaqetError("MIGRATION_FAILED");
      expect(error.message).toContain(reason);
      expect(error.message).toContain("keeps running on host 'lab1'");
      expect(s.commits).toHaveLength(0);
      expect(s.session.executed("migrate_cancel")).toBe(1);
      expect(s.session.executed("migrate-continue")).toBe(0);
      expect(s.session.executed("quit")).toBe(0);
      expect(steps(s.log).slice(-3)).toEqual(["qmp migrate_cancel", "target.abort", "record vm.migration-failed"]);
      expect(fact(s.facts, "vm.migration-failed")).toEqual({
        migrationId: "m-1",
        phase: "transfer",
        reason: expect.stringContaining(reason),
      });
      // The source runs on as it did: no cont was needed.
      expect(s.session.runState).toBe("running");
      expect(s.session.executed("cont")).toBe(0);
      expect(s.source.alive).toBe(true);
      const after = fold([...history, ...s.facts]);
      expect(after.migration).toBeUndefined();
      expect(after.pid).toBe(4000);
    },
  );

  it("the destination failing to prepare: vm.migration-failed{phase: prepare}, QEMU never told to migrate", async () => {
    const s = setup({
      script: { transfer: [active(1)] },
      prepareFails: new Error("qemu-system-x86_64: not found on lab2"),
    });
    const error = await s.run().catch((e) => e);
    expect(error).toBeMaqetError("MIGRATION_FAILED");
    expect(error.message).toContain("not found on lab2");
    expect(s.log).toEqual(["record vm.migration-requested", "target.prepare", "record vm.migration-failed"]);
    expect(fact(s.facts, "vm.migration-failed")).toMatchObject({ phase: "prepare" });
    expect(s.session.commands).toEqual([]);
  });

  it("the abort signal (migrate --cancel) cancels before the commit: vm.migration-cancelled{by: user}, MIGRATION_CANCELLED", async () => {
    const controller = new AbortController();
    const s = setup({ script: { transfer: [active(1)] }, signal: controller.signal });
    s.session.onQuery = (_info, index) => {
      if (index === 3) controller.abort("user");
    };
    const error = await s.run().catch((e) => e);
    expect(error).toBeMaqetError("MIGRATION_CANCELLED", { migrationId: "m-1", phase: "transfer", by: "user" });
    expect(s.commits).toHaveLength(0);
    expect(s.session.executed("migrate_cancel")).toBe(1);
    expect(s.log).toContain("target.abort");
    expect(fact(s.facts, "vm.migration-cancelled")).toEqual({
      migrationId: "m-1",
      phase: "transfer",
      by: "user",
      reason: "cancelled by the user (migrate --cancel)",
    });
    expect(factTypes(s.facts)).not.toContain("vm.migration-failed");
    expect(s.source.alive).toBe(true);
  });

  it("--timeout cancels a migration that does not converge: vm.migration-cancelled{by: timeout}, TIMEOUT", async () => {
    const s = setup({ script: { transfer: [active(1)] }, request: { timeoutMs: 3000 } });
    const t0 = s.world.clock.now();
    const error = await s.run().catch((e) => e);
    expect(error).toBeMaqetError("TIMEOUT", { migrationId: "m-1", phase: "transfer", by: "timeout" });
    expect(error.message).toContain("did not complete within 3 s");
    // Cancelled at the first poll past the deadline (polls every 100 ms of simulated time).
    const cancelledAt = s.session.commands.findIndex((c) => c.command === "migrate_cancel");
    expect(cancelledAt).toBeGreaterThan(0);
    expect(s.world.clock.now() - t0).toBeGreaterThan(3000);
    expect(s.world.clock.now() - t0).toBeLessThan(3000 + 100 + 200 * 10 + 1);
    expect(s.commits).toHaveLength(0);
    expect(fact(s.facts, "vm.migration-cancelled")).toEqual({
      migrationId: "m-1",
      phase: "transfer",
      by: "timeout",
      reason: "it did not complete within 3 s (--timeout)",
    });
    expect(s.log).toContain("target.abort");
  });

  it("an abort whose reason is `timeout` is a timeout too", async () => {
    const controller = new AbortController();
    controller.abort("timeout");
    const s = setup({ script: { transfer: [active(1)] }, signal: controller.signal });
    const error = await s.run().catch((e) => e);
    expect(error).toBeMaqetError("TIMEOUT");
    expect(fact(s.facts, "vm.migration-cancelled")).toMatchObject({ by: "timeout" });
  });

  it("the commit failing rolls back at the switchover: migrate_cancel, the paused source resumed, destination aborted, phase switchover", async () => {
    const s = setup({
      script: { transfer: [active(1), preSwitchover()] },
      commitFails: new MaqetError("STALE_EPOCH", "the VM's owner epoch moved"),
    });
    const error = await s.run().catch((e) => e);
    expect(error).toBeMaqetError("MIGRATION_FAILED");
    expect(error.message).toContain("owner epoch moved");
    expect(s.commits).toHaveLength(1);
    expect(s.session.executed("migrate-continue")).toBe(0);
    expect(steps(s.log).slice(-5)).toEqual([
      "commit vm.migration-switchover,vm.owner-changed",
      "qmp migrate_cancel",
      "qmp cont",
      "target.abort",
      "record vm.migration-failed",
    ]);
    expect(s.session.runState).toBe("running");
    expect(fact(s.facts, "vm.migration-failed")).toEqual({
      migrationId: "m-1",
      phase: "switchover",
      reason: "the VM's owner epoch moved",
    });
    // Nothing of the commit reached the stream: the migration ends as failed, the source is the VM.
    const after = fold([...history, ...s.facts]);
    expect(after.migration).toBeUndefined();
    expect(after.pid).toBe(4000);
    expect(s.source.alive).toBe(true);
  });

  it("the commit failing for a guest that was paused leaves it paused (no cont)", async () => {
    const s = setup({
      script: { transfer: [preSwitchover()] },
      wasRunning: false,
      commitFails: new Error("database gone"),
    });
    await expect(s.run()).rejects.toBeMaqetError("MIGRATION_FAILED");
    expect(s.session.executed("migrate_cancel")).toBe(1);
    expect(s.session.executed("cont")).toBe(0);
    expect(fact(s.facts, "vm.migration-failed")).toMatchObject({ phase: "switchover" });
  });

  it("reads query-migrate again while a completed migration still reports total-time 0", async () => {
    const s = setup({
      script: { transfer: [preSwitchover()], completion: [completed(0), completed(0), completed(0), completed(812)] },
    });
    const result = await s.run();
    expect(result.totalMs).toBe(812);
    expect(result.downtimeMs).toBe(41);
    expect(fact(s.facts, "vm.migrated")).toMatchObject({ totalMs: 812, downtimeMs: 41 });
    // Three zero answers, then the real one: four reads after migrate-continue.
    const afterContinue = s.session.commands.slice(
      s.session.commands.findIndex((c) => c.command === "migrate-continue"),
    );
    expect(afterContinue.filter((c) => c.command === "query-migrate")).toHaveLength(4);
  });

  it("a destination that does not confirm the resume: the source is still ended and vm.migrated{resumed: false} recorded", async () => {
    const s = setup({
      script: { transfer: [preSwitchover()] },
      finishFails: new MaqetError("AGENT_UNAVAILABLE", "lab2's agent went away"),
    });
    const result = await s.run();
    expect(result.resumed).toBe(false);
    expect(s.session.executed("quit")).toBe(1);
    expect(s.source.alive).toBe(false);
    expect(s.log.slice(-2)).toEqual(["qmp quit", "recordAfterCommit vm.migrated @7"]);
    expect(fact(s.facts, "vm.migrated")).toMatchObject({ resumed: false });
    // The destination's next load resumes it.
    expect(fold([...history, ...s.facts]).resumeAfterMigration).toBe("m-1");
  });

  it("a source QEMU that ignores quit is killed", async () => {
    const s = setup({ script: { transfer: [preSwitchover()] } });
    s.session.quitIgnored = true;
    await s.run();
    expect(s.source.signals).toEqual(["SIGKILL"]);
    expect(s.source.alive).toBe(false);
  });

  it("QEMU failing after the commit: the source resumed, the destination aborted, ownership committed back, vm.migration-failed{phase: completion}", async () => {
    const s = setup({
      script: {
        transfer: [preSwitchover()],
        completion: [{ status: "device" }, { status: "failed", "error-desc": "Unable to write to socket" }],
      },
    });
    const error = await s.run().catch((e) => e);
    expect(error).toBeMaqetError("MIGRATION_FAILED", { migrationId: "m-1", phase: "completion" });
    expect(error.message).toContain("Unable to write to socket");
    expect(steps(s.log)).toEqual([
      "record vm.migration-requested",
      "target.prepare",
      "record vm.migration-target-prepared",
      "qmp migrate-set-capabilities",
      "qmp migrate-set-parameters",
      "qmp migrate",
      "record vm.migration-started",
      "commit vm.migration-switchover,vm.owner-changed",
      "qmp migrate-continue",
      "qmp cont",
      "target.abort",
      "commit vm.owner-changed",
      "recordAfterCommit vm.migration-failed @8",
    ]);
    expect(s.commits).toHaveLength(2);
    expect(s.commits[1]!.before).toBeUndefined();
    expect(s.commits[1]!.data).toEqual({
      migrationId: "m-1",
      fromHost: "lab2",
      toHost: "lab1",
      resume: true,
      target: {
        ...target,
        host: "lab1",
        pid: 4000,
        qmpSocket: "/run/maqet/1/qmp.sock",
        runtimeDir: "/run/maqet/1",
        pidFile: "/run/maqet/1/qemu.pid",
      },
    });
    expect(fact(s.facts, "vm.migration-failed")).toEqual({
      migrationId: "m-1",
      phase: "completion",
      reason: "Unable to write to socket; the source runs on",
    });
    expect(s.session.runState).toBe("running");
    expect(s.session.executed("quit")).toBe(0);
    expect(s.source.alive).toBe(true);
    const after = fold([...history, ...s.facts]);
    expect(after.migration).toBeUndefined();
    expect(after.pid).toBe(4000);
    expect(after.qmpSocket).toBe("/run/maqet/1/qmp.sock");
  });
});
