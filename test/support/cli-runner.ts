/**
 * Runs the built CLI (`node dist/src/bin/maqet.js`) as a user would, each call a separate
 * process, in a sandbox with its own HOME, XDG data and runtime dirs.
 *
 * With `MAQET_TEST_AGENT=1` each sandbox also runs `maqet agent` (on the sandbox's default
 * socket), so every call goes through it: the whole e2e suite runs in both modes.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliBin } from "./build-dist.ts";
import { seedEmbeddedStore } from "./embedded-store-template.ts";
import { waitUntil } from "./poll.ts";

export interface CliResult {
  /** The exit code; null when a signal ended the process (see `signal`). */
  code: number | null;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON; when it is not JSON, throws showing the exit, stdout and stderr. */
  json<T = unknown>(): T;
}

/** How long one CLI call may take before the harness kills it and fails the test. */
const CALL_TIMEOUT_MS = 120_000;
/** More output than this is a runaway, not a result. */
const MAX_BUFFER = 64 * 1024 * 1024;

/**
 * One finished CLI process as a CliResult; a call killed by the harness (time limit, output
 * limit) throws saying so, with the output so far, instead of passing for "exit 1".
 *
 * @example
 * ```ts
 * execFile(node, args, (error, stdout, stderr) => resolve(cliResult(args, error, stdout, stderr)));
 * ```
 */
export function cliResult(
  args: readonly string[],
  error: (Error & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals | null }) | null,
  stdout: string,
  stderr: string,
): CliResult {
  const shown = `maqet ${args.join(" ")}`;
  if (error?.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") {
    throw new Error(`${shown}: printed more than ${MAX_BUFFER} bytes and was killed\nstderr: ${stderr.slice(-2000)}`);
  }
  if (error?.killed) {
    throw new Error(
      `${shown}: still running after ${CALL_TIMEOUT_MS} ms, killed with ${error.signal}\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
    );
  }
  if (error && typeof error.code !== "number" && !error.signal) throw error; // could not start it at all
  const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
  return finishedCli(args, { code, signal: error?.signal ?? null, stdout, stderr });
}

/**
 * A process that has ended (by exit or signal) as a CliResult, whose `json()` throws showing the
 * exit, stdout and stderr when stdout is not JSON.
 *
 * @example
 * ```ts
 * const ended = await startMaqet(["ls", "--json"], { env }).exited;
 * const vms = finishedCli(["ls", "--json"], ended).json<{ name: string }[]>();
 * ```
 */
export function finishedCli(
  args: readonly string[],
  ended: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string },
): CliResult {
  const shown = `maqet ${args.join(" ")}`;
  const { code, signal, stdout, stderr } = ended;
  return {
    code,
    signal,
    stdout,
    stderr,
    json: <T>() => {
      try {
        return JSON.parse(stdout) as T;
      } catch (e) {
        throw new Error(
          `${shown}: stdout is not JSON (${(e as Error).message}); exit ${code ?? signal}\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr.slice(0, 2000)}`,
        );
      }
    },
  };
}

/** The built CLI, as `maqet` is installed (`bin` of package.json). */
export const MAQET_BIN = cliBin;

export interface RunOptions {
  env: Record<string, string | undefined>;
  /** Working directory (default: this process's). */
  cwd?: string;
}

/**
 * Runs `maqet args` (the real binary, a process of its own) to its end, as a {@link CliResult};
 * a call still running after 120 s is killed and throws saying so.
 *
 * @example
 * ```ts
 * const r = await runMaqet(["doctor", "--json"], { env, cwd: home });
 * expect(r.code).toBe(0);
 * ```
 */
export function runMaqet(args: string[], options: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [MAQET_BIN, ...args],
      { cwd: options.cwd, env: options.env, timeout: CALL_TIMEOUT_MS, maxBuffer: MAX_BUFFER },
      (error, stdout, stderr) => {
        try {
          resolve(cliResult(args, error, stdout, stderr));
        } catch (failure) {
          reject(failure);
        }
      },
    );
  });
}

/** A `maqet` process left running: its output so far, waits on it, its end. */
export interface BackgroundCli {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** stdout's complete lines so far. */
  lines(): string[];
  /** Resolves when the process has exited, with how and what it printed. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** Waits until stdout (or stderr, with `stream`) holds `text`; throws with the output after `timeoutMs`. */
  waitForOutput(text: string | RegExp, timeoutMs?: number, stream?: "stdout" | "stderr"): Promise<void>;
  /** Waits until stdout has `count` complete lines; throws with them after `timeoutMs`. */
  waitLines(count: number, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (default SIGINT, a Ctrl-C) and resolves with the exit code once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `maqet args` (the real binary) and leaves it running: for followers, agents, and a
 * command that must still be running when another one comes.
 *
 * @example
 * ```ts
 * const follower = startMaqet(["events", "--follow", "--json"], { env, cwd: home });
 * await follower.waitLines(2);
 * expect(await follower.stop()).toBe(0);
 * ```
 */
export function startMaqet(args: string[], options: RunOptions): BackgroundCli {
  const child = spawn(process.execPath, [MAQET_BIN, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  // A process that could not start ends with "close" after "error": keep the reason in stderr.
  child.once("error", (error) => {
    stderr += `[could not start ${MAQET_BIN}: ${error.message}]\n`;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const lines = () => stdout.split("\n").slice(0, -1);
  const shown = `maqet ${args.join(" ")}`;
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    lines,
    exited,
    waitForOutput: async (text, timeoutMs = 60_000, stream = "stdout") => {
      const has = () => {
        const out = stream === "stdout" ? stdout : stderr;
        return typeof text === "string" ? out.includes(text) : text.test(out);
      };
      await waitUntil(
        `${shown} to print ${String(text)} on ${stream}`,
        () => ({ found: has(), exitCode: child.exitCode, stdout: stdout.slice(-2000), stderr: stderr.slice(-2000) }),
        (s) => s.found,
        { timeoutMs, everyMs: 25 },
      );
    },
    waitLines: async (count, timeoutMs = 15_000) => {
      await waitUntil(
        `${count} lines from ${shown}`,
        () => ({ lines: lines(), exitCode: child.exitCode, stderr: stderr.slice(-2000) }),
        (s) => s.lines.length >= count,
        { timeoutMs, everyMs: 25 },
      );
    },
    stop: async (signal = "SIGINT") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return (await exited).code;
    },
  };
}

export interface CliSandbox {
  home: string;
  env: Record<string, string>;
  run(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  cleanup(): Promise<void>;
  /** The sandbox's agent when MAQET_TEST_AGENT=1 (its log lines so far). */
  agent?: SandboxAgent;
  /**
   * Runs `fn` with the embedded store free for this test process (opening it, editing its
   * tables): with an agent (MAQET_TEST_AGENT=1), which holds the store, the agent is stopped for
   * `fn` and started again after; without one, just runs `fn`.
   */
  withStoreFree<T>(fn: () => Promise<T>): Promise<T>;
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
  const started = startMaqet(["agent", "--log-format", "json", ...extraArgs], { env, cwd });
  const child = started.child;
  const log = () => started.stdout() + started.stderr();
  const socket = extraArgs.includes("--socket")
    ? extraArgs[extraArgs.indexOf("--socket") + 1]!
    : join(env.XDG_RUNTIME_DIR!, "maqet", "agent.sock");
  const ready = await Promise.race([
    waitFor(async () => log().includes("listening on"), 280_000),
    started.exited.then(() => false),
  ]);
  if (!ready) {
    child.kill("SIGKILL");
    throw new Error(`maqet agent did not start: ${log()}`);
  }
  return { process: child, socket, log };
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

/**
 * The environment of a user whose home is `home`: maqet's data under `home/.local/share`, its
 * runtime directory `home/run`, nothing of the caller's environment but PATH and USER. `extra`
 * adds or replaces variables (e.g. `XDG_CONFIG_HOME`).
 *
 * @example
 * ```ts
 * const env = sandboxEnv(await mkdtemp(join(tmpdir(), "maqet-x-")));
 * await runMaqet(["ls"], { env });
 * ```
 */
export function sandboxEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home,
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    XDG_DATA_HOME: join(home, ".local/share"),
    XDG_RUNTIME_DIR: join(home, "run"),
    USER: process.env.USER ?? "root",
    ...extra,
  };
}

/**
 * A sandbox whose embedded store is a copy of the run's template (test/support/
 * embedded-store-template.ts): the state after a user's first command. `freshStore: true` leaves
 * the data directory absent, for tests of that first command (the store created and migrated).
 */
export async function createCliSandbox(options: { freshStore?: boolean } = {}): Promise<CliSandbox> {
  const home = await mkdtemp(join(tmpdir(), "maqet-e2e-"));
  if (!options.freshStore) await seedEmbeddedStore(join(home, ".local/share/maqet"));
  const env = sandboxEnv(home);
  let agent = AGENT_MODE ? await startSandboxAgent(env, home) : undefined;
  return {
    home,
    env,
    get agent() {
      return agent;
    },
    withStoreFree: async (fn) => {
      if (!agent) return fn();
      await stopSandboxAgent(agent);
      try {
        return await fn();
      } finally {
        agent = await startSandboxAgent(env, home);
      }
    },
    run: (args, extraEnv = {}) => runMaqet(args, { cwd: home, env: { ...env, ...extraEnv } }),
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

/**
 * Waits until `check` holds; true, or throws naming the condition (its source unless `what` is
 * given) after `timeoutMs`. A boolean form of {@link waitUntil}, for conditions with no value
 * worth showing.
 *
 * @example
 * ```ts
 * await waitFor(async () => !(await processAlive(pid)), 3000, `pid ${pid} to exit`);
 * ```
 */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what?: string): Promise<true> {
  await waitUntil(what ?? String(check).replace(/\s+/g, " "), check, (ok) => ok, { timeoutMs });
  return true;
}
