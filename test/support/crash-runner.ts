/**
 * Runs the built CLI in a sandbox (own HOME, data and runtime dirs; the embedded store, or a
 * fresh database on the test server) with `MAQET_CRASH_AT` when asked, and reports how each run
 * ended, a SIGKILL included. Each call is cli-runner's startMaqet (the one background-CLI
 * spawner), with a time limit. Used by the crash-point and snapshot-recovery tests.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProcessControl } from "../../src/adapters/process-control.ts";
import { type CliResult, finishedCli, startMaqet } from "./cli-runner.ts";
import { seedEmbeddedStore } from "./embedded-store-template.ts";
import { createTestDatabase } from "./postgres-cluster.ts";

/** A finished CLI run (exit code or signal, output) and how long it took. */
export interface RunResult extends CliResult {
  ms: number;
}

export interface CrashSandbox {
  home: string;
  runtimeDir: string;
  dataDir: string;
  /** The database URL (pg dialect), or undefined (embedded store under dataDir). */
  databaseUrl?: string;
  run(args: string[], options?: { crashAt?: string; timeoutMs?: number }): Promise<RunResult>;
  /** The VM's events (`maqet history <vm> --json`). */
  history(vm: string): Promise<{ type: string; version: number; data: Record<string, unknown> }[]>;
  /** Live QEMU processes carrying this VM id (an orphan is one the stream does not call running). */
  qemuOf(vmId: string): number[];
  cleanup(): Promise<void>;
}

export async function createCrashSandbox(dialect: "pglite" | "pg", baseUrl?: string): Promise<CrashSandbox> {
  const home = await mkdtemp(join(tmpdir(), "maqet-crash-"));
  const runtimeDir = join(home, "run");
  const dataDir = join(home, ".local/share/maqet");
  const db = dialect === "pg" ? await createTestDatabase(baseUrl!) : undefined;
  if (dialect === "pglite") await seedEmbeddedStore(dataDir);
  const env: Record<string, string> = {
    HOME: home,
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    XDG_DATA_HOME: join(home, ".local/share"),
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: join(home, ".config"),
    USER: process.env.USER ?? "root",
    ...(db ? { MAQET_DATABASE_URL: db.url } : {}),
  };
  const run: CrashSandbox["run"] = async (args, options = {}) => {
    const t0 = Date.now();
    const cli = startMaqet(args, {
      cwd: home,
      env: { ...env, ...(options.crashAt ? { MAQET_CRASH_AT: options.crashAt } : {}) },
    });
    // A SIGKILL the crash point sends is a result; one the harness sends is a hang, said as such.
    const limitMs = options.timeoutMs ?? 900_000;
    let killedByHarness = false;
    const timer = setTimeout(() => {
      killedByHarness = true;
      cli.child.kill("SIGKILL");
    }, limitMs);
    const { code, signal, stdout, stderr } = await cli.exited.finally(() => clearTimeout(timer));
    if (killedByHarness) {
      throw new Error(
        `maqet ${args.join(" ")}: still running after ${limitMs} ms, killed with SIGKILL\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
      );
    }
    return { ...finishedCli(args, { code, signal, stdout, stderr }), ms: Date.now() - t0 };
  };
  const processes = createProcessControl({ runtimeRoot: join(runtimeDir, "maqet") });
  return {
    home,
    runtimeDir,
    dataDir,
    databaseUrl: db?.url,
    run,
    history: async (vm) => {
      const result = await run(["history", vm, "--json"]);
      if (result.code !== 0) throw new Error(`history ${vm} failed (${result.code}): ${result.stderr}`);
      // history --json: {vm, point, version, events, state, config}; the harness wants the events.
      return result.json<{ events: never }>().events;
    },
    qemuOf: (vmId) => processes.findProcesses(vmId),
    cleanup: async () => {
      await db?.drop().catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Outcome types of each request type. */
export const OUTCOMES: Record<string, string[]> = {
  "vm.start-requested": ["vm.started", "vm.start-failed"],
  "vm.stop-requested": ["vm.stopped", "vm.reattached"],
  "snapshot.create-requested": ["snapshot.created", "snapshot.create-failed"],
  "snapshot.load-requested": ["snapshot.loaded", "snapshot.load-failed"],
  "snapshot.delete-requested": ["snapshot.deleted", "snapshot.delete-failed"],
  "vm.migration-requested": ["vm.migrated", "vm.migration-failed", "vm.migration-cancelled"],
};

/** Requests in a history with no outcome after them (a later request of another kind closes nothing). */
export function openRequests(events: readonly { type: string; version: number }[]): string[] {
  const open: string[] = [];
  for (const [i, e] of events.entries()) {
    const outcomes = OUTCOMES[e.type];
    if (outcomes === undefined) continue;
    if (!events.slice(i + 1).some((later) => outcomes.includes(later.type))) open.push(`${e.type}@${e.version}`);
  }
  return open;
}
