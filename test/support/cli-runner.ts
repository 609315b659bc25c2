/**
 * Runs the built CLI (`node dist/src/cli/bin.js`) as a user would, each call a separate
 * process, in a sandbox with its own HOME, XDG data and runtime dirs.
 */
import { execFile } from "node:child_process";
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
  return {
    home,
    env,
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
    cleanup: () => rm(home, { recursive: true, force: true }),
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
