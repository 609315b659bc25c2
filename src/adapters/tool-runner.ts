/**
 * Runs a short-lived tool (qemu-img) as an argument array: no shell, stdin closed, cwd `/`,
 * output capped. An abort kills it (SIGTERM, then SIGKILL after a grace period) and the promise
 * settles only once the process has been reaped, so nothing is left behind.
 *
 * The qemu-img adapter decides timeouts and retries on its injected clock; this file is only the
 * effect, so unit tests replace it with a fake runner.
 *
 * @example
 * ```ts
 * const r = await createToolRunner().run("/usr/bin/qemu-img", ["--version"], { signal });
 * r.stdout; // "qemu-img version 7.2.22 ..."
 * ```
 */
import { execa } from "execa";

export interface ToolRunOptions {
  signal?: AbortSignal;
  /** Called with each chunk qemu-img writes to stdout (progress lines end with `\r`). */
  onStdout?: (chunk: string) => void;
}

export interface ToolRunResult {
  exitCode: number | null;
  /** The signal that ended it (e.g. `SIGTERM` after an abort). */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when the abort signal ended it. */
  aborted: boolean;
}

/** The process effect behind the qemu-img adapter. */
export interface ToolRunner {
  run(binary: string, args: readonly string[], options?: ToolRunOptions): Promise<ToolRunResult>;
}

/** More output than any qemu-img answer we parse (MAQET capped it too). */
export const TOOL_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;

/**
 * The real runner (execa).
 *
 * @example
 * ```ts
 * const runner = createToolRunner({ killGraceMs: 1000 });
 * ```
 */
export function createToolRunner(options: { killGraceMs?: number } = {}): ToolRunner {
  const killGraceMs = options.killGraceMs ?? 2000;
  return {
    async run(binary, args, runOptions = {}) {
      const { signal, onStdout } = runOptions;
      const child = execa(binary, [...args], {
        reject: false,
        stdin: "ignore",
        cwd: "/",
        maxBuffer: TOOL_MAX_OUTPUT_BYTES,
        forceKillAfterDelay: killGraceMs,
        // C locale: qemu-img's messages are what we quote and match (lock errors, EAGAIN).
        env: { LC_ALL: "C" },
        ...(signal ? { cancelSignal: signal } : {}),
      });
      if (onStdout) {
        child.stdout?.setEncoding("utf8");
        child.stdout?.on("data", (chunk: string) => onStdout(chunk));
      }
      const result = await child; // settles after exit and the end of both pipes: reaped
      return {
        exitCode: result.exitCode ?? null,
        signal: result.signal ?? null,
        stdout: String(result.stdout ?? ""),
        stderr: String(result.stderr ?? ""),
        aborted: result.isCanceled === true,
      };
    },
  };
}
