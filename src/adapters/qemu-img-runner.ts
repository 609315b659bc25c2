/**
 * Running qemu-img: the binary from the locator, its version read once (and refused when older
 * than {@link MIN_QEMU_IMG_VERSION}), a time limit per operation (kill, then reap) on the injected
 * clock, an AbortSignal that ends it too, and retries with exponential back-off for transient
 * failures only. A failure is QEMU_IMG_FAILED or QEMU_IMG_TIMEOUT quoting qemu-img's stderr and
 * naming the file and the fix. The operations themselves are in src/adapters/qemu-img.ts.
 *
 * @example
 * ```ts
 * const run = createQemuImgRunner({ locator });
 * await run.exec(["check", "--output=json", "--", file], { operation: "check", label: "qemu-img check", subject: file, fix: "…" });
 * ```
 */
import type { ToolCallOptions } from "../actors/disk-image-port.ts";
import type { BinaryLocator, Clock } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { isLockError, isTransient, quote } from "./qemu-img-output.ts";
import { systemClock } from "./system-clock.ts";
import { createToolRunner, type ToolRunner, type ToolRunResult } from "./tool-runner.ts";

/** qemu-img create/info time limit (MAQET used the same). */
export const QEMU_IMG_TIMEOUT_MS = 30_000;

export type QemuImgOperation = "version" | "info" | "check" | "create" | "resize" | "convert" | "snapshot";

/** Default time limits per operation; `Infinity` means none (a convert takes as long as the data). */
export const QEMU_IMG_TIMEOUTS: Readonly<Record<QemuImgOperation, number>> = {
  version: 10_000,
  info: QEMU_IMG_TIMEOUT_MS,
  create: QEMU_IMG_TIMEOUT_MS,
  resize: 60_000,
  check: 300_000,
  snapshot: 300_000,
  convert: Number.POSITIVE_INFINITY,
};

export interface RetryPolicy {
  /** Tries in all, the first included (default 3, as MAQET). */
  attempts: number;
  /** Wait before the second try (default 1000 ms); doubled before each later one. */
  initialDelayMs: number;
  factor: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, initialDelayMs: 1000, factor: 2 };

/** The oldest qemu-img maqet drives: `-U` (force-share) appeared in 2.10. */
export const MIN_QEMU_IMG_VERSION = [2, 10] as const;

export interface QemuImgOptions {
  locator: BinaryLocator;
  runner?: ToolRunner;
  clock?: Clock;
  timeouts?: Partial<Record<QemuImgOperation, number>>;
  retry?: Partial<RetryPolicy>;
}

/** One run of qemu-img: what it is for, and what its error message says. */
export interface QemuImgCall extends ToolCallOptions {
  operation: QemuImgOperation;
  /** What the message names: "qemu-img snapshot -c 'before' failed for <subject>". */
  label: string;
  subject: string;
  fix: string;
  /** Exit codes that are answers, not failures (check: 2 corrupt, 3 leaks). */
  okExitCodes?: readonly number[];
  /** Retry transient failures (default true). */
  retry?: boolean;
  /** Retry a lock held by another process too (default true; info falls back to -U instead). */
  retryLocks?: boolean;
  onStdout?: (chunk: string) => void;
}

export interface QemuImgRunner {
  /** Runs qemu-img with `args` (after the version check, except for the version read itself). */
  exec(args: readonly string[], call: QemuImgCall): Promise<ToolRunResult>;
  /** The version, read once per runner; QEMU_IMG_FAILED when it is too old. */
  checkedVersion(signal?: AbortSignal): Promise<string>;
  /** How many times `qemu-img --version` actually ran. */
  readonly versionReads: number;
}

/**
 * A qemu-img runner with its own version cache.
 *
 * @example
 * ```ts
 * const run = createQemuImgRunner({ locator, clock: new FakeClock(), runner: fakeRunner });
 * await run.checkedVersion(); // "8.2.2"
 * ```
 */
export function createQemuImgRunner(options: QemuImgOptions): QemuImgRunner {
  const runner = options.runner ?? createToolRunner();
  const clock = options.clock ?? systemClock;
  const timeouts = { ...QEMU_IMG_TIMEOUTS, ...options.timeouts };
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  let versionReads = 0;
  let versionPromise: Promise<string> | undefined;

  const binary = (): Promise<string> => options.locator.locate("qemu-img");

  const runOnce = async (path: string, args: readonly string[], call: QemuImgCall): Promise<ToolRunResult> => {
    call.signal?.throwIfAborted();
    const limit = call.timeoutMs ?? timeouts[call.operation];
    const kill = new AbortController();
    const stopTimer = new AbortController();
    let timedOut = false;
    if (Number.isFinite(limit)) {
      clock.sleep(limit, stopTimer.signal).then(
        () => {
          timedOut = true;
          kill.abort(new Error("qemu-img timed out"));
        },
        () => undefined,
      );
    }
    const onAbort = () => kill.abort(call.signal?.reason);
    call.signal?.addEventListener("abort", onAbort, { once: true });
    let result: ToolRunResult;
    try {
      result = await runner.run(path, args, { signal: kill.signal, onStdout: call.onStdout });
    } finally {
      stopTimer.abort();
      call.signal?.removeEventListener("abort", onAbort);
    }
    if (timedOut) {
      throw new MaqetError(
        "QEMU_IMG_TIMEOUT",
        `${call.label} timed out after ${limit} ms for ${call.subject}; qemu-img was killed. Check that the filesystem responds (and nothing holds the image), then retry${call.operation === "convert" ? "" : " with a longer timeout"}.`,
        { details: { operation: call.operation, file: call.subject, timeoutMs: limit, args: [...args] } },
      );
    }
    if (result.aborted) throw call.signal?.reason ?? new Error("aborted");
    return result;
  };

  const exec = async (args: readonly string[], call: QemuImgCall): Promise<ToolRunResult> => {
    const path = await binary();
    if (call.operation !== "version") await checkedVersion(call.signal);
    let delay = retry.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      const result = await runOnce(path, args, call);
      if (result.exitCode === 0 || (result.exitCode !== null && call.okExitCodes?.includes(result.exitCode))) {
        return result;
      }
      const said = quote(result);
      const transient = isTransient(result.stderr);
      const retryable = transient && call.retry !== false && !(call.retryLocks === false && isLockError(result.stderr));
      if (retryable && attempt < retry.attempts) {
        await clock.sleep(delay, call.signal);
        delay *= retry.factor;
        continue;
      }
      const tried = attempt > 1 ? ` (tried ${attempt} times)` : "";
      throw new MaqetError(
        "QEMU_IMG_FAILED",
        `${call.label} failed for ${call.subject}: ${said}${tried}. ${call.fix}`,
        {
          details: {
            operation: call.operation,
            file: call.subject,
            exitCode: result.exitCode,
            signal: result.signal,
            stderr: result.stderr.trim(),
            attempts: attempt,
            locked: isLockError(result.stderr),
            transient,
          },
        },
      );
    }
  };

  const checkedVersion = async (signal?: AbortSignal): Promise<string> => {
    const version = await readVersion(signal);
    const [major = 0, minor = 0] = version.split(".").map(Number);
    const [minMajor, minMinor] = MIN_QEMU_IMG_VERSION;
    if (major < minMajor || (major === minMajor && minor < minMinor)) {
      throw new MaqetError(
        "QEMU_IMG_FAILED",
        `qemu-img ${version} is too old: maqet needs ${minMajor}.${minMinor} or later (for -U, reading images in use). Upgrade QEMU's tools, or point MAQET_QEMU_IMG at a newer qemu-img.`,
        { details: { version } },
      );
    }
    return version;
  };

  const readVersion = (signal?: AbortSignal): Promise<string> => {
    if (versionPromise === undefined) {
      versionPromise = (async () => {
        versionReads += 1;
        const result = await exec(["--version"], {
          operation: "version",
          label: "qemu-img --version",
          subject: await binary(),
          fix: "Check that the qemu-img binary works (run it with --version).",
          retry: false,
          signal,
        });
        const match = /version\s+(\d+\.\d+(?:\.\d+)?)/.exec(result.stdout);
        if (!match) {
          throw new MaqetError(
            "QEMU_IMG_FAILED",
            `qemu-img --version printed no version (${JSON.stringify(result.stdout.split("\n")[0] ?? "")}). Check that MAQET_QEMU_IMG (or PATH) points at qemu-img.`,
          );
        }
        return match[1]!;
      })();
      // A failed read (binary missing, aborted) is not cached: the next call tries again.
      versionPromise.catch(() => {
        versionPromise = undefined;
      });
    }
    return versionPromise;
  };

  return {
    exec,
    checkedVersion,
    get versionReads() {
      return versionReads;
    },
  };
}
