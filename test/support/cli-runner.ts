/**
 * Runs the built CLI (`node dist/src/cli/bin.js`) as a user would, each call a separate
 * process, in a sandbox with its own HOME, XDG data and runtime dirs.
 *
 * With `MAQET_TEST_AGENT=1` each sandbox also runs `maqet agent` (on the sandbox's default
 * socket), so every call goes through it: the whole e2e suite runs in both modes.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "./build-dist.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = unknown>(): T;
}

export interface CliSandbox {
  home: string;
  env: Record<string, string>;
  run(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  cleanup(): Promise<void>;
  /** The sandbox's agent when MAQET_TEST_AGENT=1 (its log lines so far). */
  agent?: SandboxAgent;
}

export interface SandboxAgent {
  readonly process: ChildProcess;
  readonly socket: string;
  log(): string;
}

/** True when the e2e suite runs through an agent (MAQET_TEST_AGENT=1). */
export const AGENT_MODE = process.env.MAQET_TEST_AGENT === "1";

/**
 * Starts `maqet agent` with `env` and waits until it listens; resolves with it.
 *
 * @example
 * ```ts
 * const agent = await startSandboxAgent(box.env, box.home);
 * ```
 */
export async function startSandboxAgent(
  env: Record<string, string>,
  cwd: string,
  extraArgs: string[] = [],
): Promise<SandboxAgent> {
  const bin = join(projectRoot, "dist/src/cli/bin.js");
  const child = spawn(process.execPath, [bin, "agent", "--log-format", "json", ...extraArgs], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout?.on("data", (c: Buffer) => {
    log += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    log += c.toString();
  });
  const socket = extraArgs.includes("--socket")
    ? extraArgs[extraArgs.indexOf("--socket") + 1]!
    : join(env.XDG_RUNTIME_DIR!, "maqet", "agent.sock");
  const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
  const ready = await Promise.race([
    waitFor(async () => log.includes("listening on"), 280_000),
    exited.then(() => false),
  ]);
  if (!ready) {
    child.kill("SIGKILL");
    throw new Error(`maqet agent did not start: ${log}`);
  }
  return { process: child, socket, log: () => log };
}

/** SIGTERM, then wait for the agent to exit (SIGKILL after 20 s). */
export async function stopSandboxAgent(agent: SandboxAgent): Promise<number | null> {
  const child = agent.process;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

export async function createCliSandbox(): Promise<CliSandbox> {
  const home = await mkdtemp(join(tmpdir(), "maqet-e2e-"));
  const env: Record<string, string> = {
    HOME: home,
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    XDG_DATA_HOME: join(home, ".local/share"),
    XDG_RUNTIME_DIR: join(home, "run"),
    USER: process.env.USER ?? "root",
  };
  const bin = join(projectRoot, "dist/src/cli/bin.js");
  const agent = AGENT_MODE ? await startSandboxAgent(env, home) : undefined;
  return {
    home,
    env,
    ...(agent ? { agent } : {}),
    run: (args, extraEnv = {}) =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [bin, ...args],
          { cwd: home, env: { ...env, ...extraEnv }, timeout: 120_000 },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
            resolve({
              code,
              stdout,
              stderr,
              json: <T>() => JSON.parse(stdout) as T,
            });
          },
        );
      }),
    cleanup: async () => {
      if (agent) await stopSandboxAgent(agent);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** True while /proc says the pid is a live (non-zombie) process. */
export async function processAlive(pid: number): Promise<boolean> {
  const { readFile } = await import("node:fs/promises");
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}
