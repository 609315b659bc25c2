/**
 * N simulated hosts on one machine for cluster tests: each a real `maqet agent --host NAME`
 * process with its own runtime directory and socket, all on one PostgreSQL database of this test
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
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "./build-dist.ts";
import { type CliResult, cliResult, waitFor } from "./cli-runner.ts";

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

const bin = () => join(projectRoot, "dist/src/cli/bin.js");

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
    const child = spawn(
      process.execPath,
      [bin(), "agent", "--host", name, "--log-format", "json", ...(options.agentArgs?.(name) ?? [])],
      { cwd: home, env: { ...env, ...hosts.get(name)?.extraEnv }, stdio: ["ignore", "pipe", "pipe"] },
    );
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
    const exited = new Promise<boolean>((resolve) => child.once("exit", () => resolve(false)));
    const ready = await Promise.race([
      waitFor(async () => host.log.slice(mark).includes("listening on"), 120_000).then(() => true),
      exited,
    ]);
    if (!ready) throw new Error(`agent ${name} did not start: ${host.log.slice(mark)}`);
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
      return new Promise((resolve, reject) => {
        execFile(
          process.execPath,
          [bin(), ...args],
          { cwd: home, env: { ...host.env, MAQET_AGENT: host.socket }, timeout: 120_000, maxBuffer: 16 << 20 },
          (error, stdout, stderr) => {
            try {
              resolve(cliResult(args, error, stdout, stderr));
            } catch (failure) {
              reject(failure);
            }
          },
        );
      });
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
      for (const pid of await qemuPidsUnder(home)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Live QEMU processes whose command line mentions `dir` (their runtime dir is under it). */
export async function qemuPidsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      if (!cmdline[0]?.includes("qemu-system") || !cmdline.some((a) => a.includes(dir))) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z" && state !== "X") pids.push(Number(entry));
    } catch {}
  }
  return pids;
}
