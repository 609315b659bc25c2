/**
 * N simulated hosts on one machine for cluster tests: each a real `maqet agent --host NAME`
 * process (the built binary, started by cli-runner's startMaqet) with its own runtime directory and socket, all on one PostgreSQL database of this test
 * run; a CLI "on" a host talks to that host's agent. A host failure is the agent's `kill -9`
 * (with its QEMU processes for a dead machine) or SIGSTOP (a partition that heals with SIGCONT).
 *
 * @example
 * ```ts
 * const cluster = await startCluster(["a", "b", "c"], { url });
 * await cluster.cli("a", ["start", "web"]);
 * await cluster.stop();
 * ```
 */
import type { ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { qemuPidsOf } from "./agent-helpers.ts";
import { type CliResult, runMaqet, startMaqet, waitFor } from "./cli-runner.ts";

/** What `maqet status --json` (or one row of `ls --json`) says of a VM, as cluster tests read it. */
export interface Status {
  name: string;
  id: string;
  state: string;
  host: string | null;
  qmpSocket: string | null;
}

export interface SimHost {
  readonly name: string;
  readonly runtimeDir: string;
  readonly socket: string;
  readonly env: Record<string, string>;
  process: ChildProcess;
  log: string;
  /** Set before {@link SimCluster.startAgent}: more environment for this host's next agent (e.g. MAQET_CRASH_AT). */
  extraEnv?: Record<string, string>;
}

export interface SimCluster {
  readonly home: string;
  readonly hosts: Map<string, SimHost>;
  /** Runs the CLI on a host (through its agent). */
  cli(host: string, args: string[]): Promise<CliResult>;
  /** Starts (or restarts) a host's agent and waits until it listens. */
  startAgent(host: string): Promise<SimHost>;
  /** kill -9 of the agent. */
  killAgent(host: string): Promise<void>;
  /** Stops everything: agents (SIGKILL, then SIGCONT for stopped ones), QEMU of every host. */
  stop(): Promise<void>;
}

export async function startCluster(
  names: readonly string[],
  options: { url: string; agentArgs?: (host: string) => string[] },
): Promise<SimCluster> {
  const home = await mkdtemp(join(tmpdir(), "maqet-cluster-"));
  const hosts = new Map<string, SimHost>();
  const spawnAgent = async (name: string): Promise<SimHost> => {
    const runtimeDir = join(home, `run-${name}`);
    await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
    const env: Record<string, string> = {
      HOME: home,
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      XDG_DATA_HOME: join(home, `data-${name}`),
      XDG_RUNTIME_DIR: runtimeDir,
      USER: process.env.USER ?? "root",
      MAQET_DATABASE_URL: options.url,
    };
    const socket = join(runtimeDir, "maqet", "agent.sock");
    const agent = startMaqet(["agent", "--host", name, "--log-format", "json", ...(options.agentArgs?.(name) ?? [])], {
      cwd: home,
      env: { ...env, ...hosts.get(name)?.extraEnv },
    });
    const child = agent.child;
    const host: SimHost = hosts.get(name) ?? { name, runtimeDir, socket, env, process: child, log: "" };
    host.process = child;
    const append = (c: Buffer) => {
      host.log += c.toString();
      if (process.env.MAQET_CLUSTER_LOGS) appendFileSync(join(process.env.MAQET_CLUSTER_LOGS, `${name}.log`), c);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    hosts.set(name, host);
    const mark = host.log.length;
    const ready = await Promise.race([
      waitFor(async () => host.log.slice(mark).includes("listening on"), 120_000).then(() => true),
      agent.exited.then(() => false),
    ]);
    if (!ready) throw new Error(`agent ${name} did not start: ${host.log.slice(mark)}`);
    // Without its fence guard a frozen or killed agent leaves its QEMU running: every failure
    // case would test something else than the product (the bundled executable once looked for
    // the guard's script next to itself, and every agent ran without one).
    if (host.log.slice(mark).includes("no fence guard")) {
      throw new Error(`agent ${name} started without its fence guard: ${host.log.slice(mark)}`);
    }
    return host;
  };
  for (const name of names) await spawnAgent(name);
  return {
    home,
    hosts,
    startAgent: spawnAgent,
    killAgent: async (name) => {
      const host = hosts.get(name)!;
      if (host.process.exitCode !== null || host.process.signalCode !== null) return;
      const exited = new Promise((resolve) => host.process.once("exit", resolve));
      host.process.kill("SIGKILL");
      await exited;
    },
    cli: (name, args) => {
      const host = hosts.get(name)!;
      return runMaqet(args, { cwd: home, env: { ...host.env, MAQET_AGENT: host.socket } });
    },
    stop: async () => {
      for (const host of hosts.values()) {
        if (host.process.exitCode === null && host.process.signalCode === null) {
          const exited = new Promise((resolve) => host.process.once("exit", resolve));
          host.process.kill("SIGCONT");
          host.process.kill("SIGKILL");
          await exited;
        }
      }
      for (const pid of await qemuPidsOf(home)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      await rm(home, { recursive: true, force: true });
    },
  };
}
