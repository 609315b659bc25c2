/**
 * The kill-at-every-crash-point suite, for one dialect (the embedded store or a PostgreSQL
 * server): one sandbox, the points one after another. Used by test/qemu/crash-points*.qemu.test.ts
 * (a file per dialect, the embedded store's split in two parts, so they run side by side).
 */
import { execFile } from "node:child_process";
import { readdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { CrashPoint } from "../../src/util/crash-points.ts";
import { type CrashSandbox, createCrashSandbox, openRequests } from "./crash-runner.ts";

const exec = promisify(execFile);
/**
 * "Its normal time": a CLI command takes 1-3 s on a quiet machine (the lock waits 5 s at most
 * for a live holder); the bound is this, or four times a plain `ls` measured in the same run.
 */
const NORMAL_MS = 30_000;

interface Scenario {
  /** Only with the embedded store (the lock and the data dir do not exist with a server). */
  pgliteOnly?: boolean;
  /** Commands run first (the VM is added before them). */
  setup?: string[][];
  /** Something to leave behind before the killed command (a stale lock). */
  plant?: (box: CrashSandbox) => Promise<void>;
  /** The command that dies at the point. */
  killed: string[];
  /** The next command, which must recover. */
  next: string[];
  /** A request the killed process recorded, which must still be in the history (no event lost). */
  request?: string;
}

const VM = "{vm}";
const snapshotVm = [
  ["start", VM],
  ["stop", VM, "--force"],
];

/** The scenario of each point: the type makes a new point without one a compile error. */
export const SCENARIOS: Record<CrashPoint, Scenario> = {
  "lock.temp-written": { pgliteOnly: true, killed: ["ls"], next: ["status", VM, "--json"] },
  "lock.linked": { pgliteOnly: true, killed: ["ls"], next: ["status", VM, "--json"] },
  "lock.takeover-guarded": { pgliteOnly: true, plant: plantStaleLock, killed: ["ls"], next: ["status", VM, "--json"] },
  "lock.stale-removed": { pgliteOnly: true, plant: plantStaleLock, killed: ["ls"], next: ["status", VM, "--json"] },
  "store.data-dir-created": {
    pgliteOnly: true,
    killed: ["--data-dir", "{fresh}", "ls"],
    next: ["--data-dir", "{fresh}", "ls", "--json"],
  },
  "start.requested": { killed: ["start", VM], next: ["status", VM, "--json"], request: "vm.start-requested" },
  "start.disk-created": { killed: ["start", VM], next: ["status", VM, "--json"], request: "vm.start-requested" },
  "start.spawned": { killed: ["start", VM], next: ["status", VM, "--json"], request: "vm.start-requested" },
  "start.resumed": { killed: ["start", VM], next: ["status", VM, "--json"], request: "vm.start-requested" },
  "stop.requested": {
    setup: [["start", VM]],
    killed: ["stop", VM, "--timeout", "1"],
    next: ["status", VM, "--json"],
    request: "vm.stop-requested",
  },
  "stop.quit-sent": {
    setup: [["start", VM]],
    killed: ["stop", VM, "--timeout", "1"],
    next: ["status", VM, "--json"],
    request: "vm.stop-requested",
  },
  "stop.exited": {
    setup: [["start", VM]],
    killed: ["stop", VM, "--timeout", "1"],
    next: ["status", VM, "--json"],
    request: "vm.stop-requested",
  },
  "snapshot.requested": {
    setup: snapshotVm,
    killed: ["snapshot", "create", VM, "t1"],
    next: ["status", VM, "--json"],
    request: "snapshot.create-requested",
  },
  "snapshot.job-started": {
    setup: [["start", VM]],
    killed: ["snapshot", "create", VM, "t1"],
    next: ["status", VM, "--json"],
    request: "snapshot.create-requested",
  },
  "snapshot.applied": {
    setup: snapshotVm,
    killed: ["snapshot", "create", VM, "t1"],
    next: ["status", VM, "--json"],
    request: "snapshot.create-requested",
  },
  // A live migration to a fresh QEMU on this host, its coordinator killed at each phase: before
  // the commit point the next command rolls back (the source runs on), after it rolls forward.
  "migrate.transfer": migrateScenario(),
  "migrate.switchover": migrateScenario(),
  "migrate.committed": migrateScenario(),
  "migrate.finishing": migrateScenario(),
  "projection.batch-written": { killed: ["ls"], next: ["status", VM, "--json"] },
};

function migrateScenario(): Scenario {
  return {
    setup: [["start", VM]],
    killed: ["migrate", VM, "--to", hostname().split(".")[0] || "localhost"],
    next: ["status", VM, "--json"],
    request: "vm.migration-requested",
  };
}

async function plantStaleLock(box: CrashSandbox): Promise<void> {
  const { stdout } = await exec(process.execPath, ["-e", "console.log(process.pid)"]);
  const dead = Number(stdout.trim());
  const lock = join(box.dataDir, "pglite.lock");
  await writeFile(
    lock,
    JSON.stringify({ pid: dead, host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "dead" }),
  );
}

/**
 * The embedded store's points in two files of about equal time (each CLI call there opens
 * PGlite): crash-points.qemu.test.ts runs the first, crash-points-late.qemu.test.ts the second.
 * crash-points.qemu.test.ts checks that every point is in exactly one.
 */
export const PGLITE_PARTS: readonly (readonly string[])[] = [
  ["lock.", "store.", "start.", "stop."],
  ["snapshot.", "migrate.", "projection."],
];

/**
 * Registers the suite for the points whose names start with one of `prefixes` (all points when
 * omitted): a file per part, so a dialect's points can run side by side on two workers.
 */
export function crashPointSuite(dialect: "pglite" | "pg", prefixes?: readonly string[]): void {
  const serverUrl = inject("databaseUrl");
  const part = prefixes ? `, ${prefixes.map((p) => `${p}*`).join(" ")}` : "";
  const scenarios = (Object.entries(SCENARIOS) as [CrashPoint, Scenario][]).filter(
    ([point]) => !prefixes || prefixes.some((p) => point.startsWith(p)),
  );
  if (dialect === "pg" && !serverUrl) {
    console.log(
      `crash points (pg${part}): skipped: no PostgreSQL server (the global setup starts one when the server binaries exist; see docs/testing.md)`,
    );
  }
  describe.skipIf(dialect === "pg" && !serverUrl)(`kill at every crash point (${dialect}${part})`, () => {
    let box: CrashSandbox;
    let n = 0;
    /** How long a plain `ls` takes on this machine now: the next command may take a few times that. */
    let baseline = 0;
    const normalMs = () => Math.max(NORMAL_MS, 4 * baseline);
    beforeAll(async () => {
      box = await createCrashSandbox(dialect, serverUrl);
      expect((await box.run(["ls"])).code).toBe(0);
      baseline = (await box.run(["ls"])).ms;
    }, 300_000);
    afterAll(async () => {
      // Each test stops the VM it left running; this catches what a failed test left. A VM the
      // store calls stopped needs no stop (a CLI process each, ~20 per file).
      const listed = await box.run(["ls", "--json"]);
      for (const vm of listed.code === 0 ? listed.json<{ name: string; state: string }[]>() : []) {
        if (vm.state !== "stopped") await box.run(["stop", vm.name, "--force"]);
      }
      await box.cleanup();
    }, 600_000);

    for (const [point, scenario] of scenarios) {
      const skip =
        dialect === "pg" && scenario.pgliteOnly ? "the PGlite lock and data dir are not used with a server" : "";
      it.skipIf(skip !== "")(
        `${point}${skip ? ` (skipped: ${skip})` : ""}`,
        async () => {
          n += 1;
          const vm = `cp${n}`;
          const fresh = join(box.home, `fresh-${n}`);
          const fill = (args: string[]) => args.map((a) => a.replace(VM, vm).replace("{fresh}", fresh));
          await writeFile(
            join(box.home, `${vm}.yaml`),
            `name: ${vm}\naccel: tcg\nmemory: 32M\nstorage:\n  - {name: hdd, type: qcow2, file: ${vm}.qcow2, size: 8M}\n`,
          );
          const added = await box.run(["add", `${vm}.yaml`, "--json"]);
          expect(added.code, added.stderr).toBe(0);
          const vmId = added.json<{ id: string }>().id;
          for (const args of scenario.setup ?? []) {
            const r = await box.run(fill(args));
            expect(r.code, `${fill(args).join(" ")}: ${r.stderr}`).toBe(0);
          }
          await scenario.plant?.(box);

          const killed = await box.run(fill(scenario.killed), { crashAt: point });
          expect(killed.signal, `${point} was not reached: exit ${killed.code}, ${killed.stderr}`).toBe("SIGKILL");
          expect(killed.stderr).toContain(`crash point ${point}`);

          const next = await box.run(fill(scenario.next));
          expect(next.code, `the next command failed after ${point}: ${next.stderr}`).toBe(0);
          expect(next.ms, `baseline ${baseline} ms`).toBeLessThan(normalMs());

          // No lock stuck: no lock file, takeover guard or temporary lock file left.
          for (const dataDir of [box.dataDir, fresh]) {
            const left = await readdir(dataDir).catch(() => [] as string[]);
            expect(
              left.filter((f) => f.startsWith("pglite.lock")),
              `lock files in ${dataDir}`,
            ).toEqual([]);
          }
          const status = scenario.next[0] === "status" ? next : await box.run(["status", vm, "--json"]);
          expect(status.code, status.stderr).toBe(0);
          // No request left open; no event lost (versions without gaps, the killed command's request kept).
          const after = await box.history(vm);
          expect(openRequests(after)).toEqual([]);
          expect(after.map((e) => e.version)).toEqual(after.map((_, i) => i));
          if (scenario.request) expect(after.map((e) => e.type)).toContain(scenario.request);
          // No orphan QEMU: a QEMU runs only if the history says the VM is running, and then exactly one.
          const { state, pid } = status.json<{ state: string; pid?: number | null }>();
          const qemu = box.qemuOf(vmId);
          if (state === "running" || state === "paused") {
            expect(qemu).toEqual([pid]);
            expect((await box.run(["stop", vm, "--force"])).code).toBe(0);
          } else expect(qemu, `QEMU left running for ${vm} (${state})`).toEqual([]);
        },
        900_000,
      );
    }
  });
}
