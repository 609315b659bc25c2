/**
 * The one `qemu-img` adapter: every image operation maqet runs goes through here, with the
 * binary from the cached locator and its version read once.
 *
 * - Argument arrays, never a shell; `--` before paths (qemu-img 7.2 accepts it for every
 *   subcommand used here), so a file named `-x` or `json:{...}` is still a file.
 * - A time limit per operation (kill, then reap) on the injected clock; an AbortSignal ends it too.
 * - Retries with exponential back-off only for transient failures: an image lock held by another
 *   process, EAGAIN / "Resource temporarily unavailable", "Device or resource busy".
 * - Errors quote qemu-img's own stderr, name the file and say what to do.
 *
 * @example
 * ```ts
 * const img = qemuImgFor(sharedBinaryLocator());
 * await img.create("/srv/vms/web.qcow2", { format: "qcow2", size: "10G" });
 * (await img.info("/srv/vms/web.qcow2")).virtualSize; // 10737418240
 * ```
 */
import { Observable } from "rxjs";
import type {
  CreateImageSpec,
  DiskImageTool,
  ImageCheck,
  ImageFormat,
  ImageInfo,
  Progress,
  ToolCallOptions,
} from "../actors/disk-image-port.ts";
import { parseImageSnapshot } from "../actors/disk-image-port.ts";
import type { BinaryLocator, Clock } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";
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

export interface QemuImg extends DiskImageTool {
  /** How many times `qemu-img --version` actually ran. */
  readonly versionReads: number;
}

/**
 * A qemu-img adapter with its own version cache.
 *
 * @example
 * ```ts
 * const img = createQemuImg({ locator, clock: new FakeClock(), runner: fakeRunner });
 * ```
 */
export function createQemuImg(options: QemuImgOptions): QemuImg {
  const runner = options.runner ?? createToolRunner();
  const clock = options.clock ?? systemClock;
  const timeouts = { ...QEMU_IMG_TIMEOUTS, ...options.timeouts };
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  let versionReads = 0;
  let versionPromise: Promise<string> | undefined;

  interface Call extends ToolCallOptions {
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

  const binary = (): Promise<string> => options.locator.locate("qemu-img");

  const runOnce = async (path: string, args: readonly string[], call: Call): Promise<ToolRunResult> => {
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

  const exec = async (args: readonly string[], call: Call): Promise<ToolRunResult> => {
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

  const infoOnce = async (file: string, shared: boolean, options: ToolCallOptions): Promise<ImageInfo> => {
    const result = await exec(["info", "--output=json", ...(shared ? ["-U"] : []), "--", file], {
      ...options,
      operation: "info",
      label: "qemu-img info",
      subject: file,
      fix: "Check that the file exists and is a disk image.",
      retryLocks: false,
    });
    return parseInfo(file, parseJson(result.stdout, "info", file), shared);
  };

  const tool: QemuImg = {
    get versionReads() {
      return versionReads;
    },
    version: (callOptions = {}) => checkedVersion(callOptions.signal),

    async info(file, callOptions = {}) {
      if (callOptions.shared) return infoOnce(file, true, callOptions);
      try {
        return await infoOnce(file, false, { ...callOptions });
      } catch (error) {
        // Locked by a running VM: read it shared instead (a read never needs the write lock).
        if (error instanceof MaqetError && error.details.locked === true) return infoOnce(file, true, callOptions);
        throw error;
      }
    },

    async check(file, callOptions = {}) {
      const result = await exec(["check", "--output=json", ...formatArgs(callOptions.format), "--", file], {
        ...callOptions,
        operation: "check",
        label: "qemu-img check",
        subject: file,
        fix: "Check that the file is a disk image and that no running VM uses it (stop the VM first).",
        okExitCodes: [2, 3, 63],
      });
      if (result.exitCode === 63) {
        return { file, status: "unsupported", checkErrors: 0, corruptions: 0, leaks: 0, raw: {} };
      }
      return parseCheck(file, parseJson(result.stdout, "check", file), result.exitCode ?? 0);
    },

    async create(file, spec, callOptions = {}) {
      await exec(["create", "-q", ...createArgs(spec), "--", file, ...(spec.size === undefined ? [] : [spec.size])], {
        ...callOptions,
        operation: "create",
        label: "qemu-img create",
        subject: `${file} (${spec.format}${spec.size ? `, ${spec.size}` : ""}${spec.backingFile ? `, backing ${spec.backingFile}` : ""})`,
        fix: "Check the size, the backing file and that the directory is writable.",
      });
    },

    async resize(file, size, callOptions = {}) {
      await exec(
        [
          "resize",
          "-q",
          ...formatArgs(callOptions.format),
          ...(callOptions.shrink ? ["--shrink"] : []),
          "--",
          file,
          size,
        ],
        {
          ...callOptions,
          operation: "resize",
          label: "qemu-img resize",
          subject: `${file} (to ${size})`,
          fix: callOptions.shrink
            ? "Check the size and that no running VM uses the image."
            : "Check the size (shrinking needs --shrink) and that no running VM uses the image.",
        },
      );
    },

    convert(source, target, spec, callOptions = {}) {
      return new Observable<Progress>((subscriber) => {
        const stop = new AbortController();
        const onAbort = () => stop.abort(callOptions.signal?.reason);
        callOptions.signal?.addEventListener("abort", onAbort, { once: true });
        const parse = progressParser((percent) => subscriber.next({ percent }));
        exec(
          [
            "convert",
            "-p",
            ...(spec.sourceFormat ? ["-f", spec.sourceFormat] : []),
            "-O",
            spec.outputFormat,
            ...(spec.compress ? ["-c"] : []),
            "--",
            source,
            target,
          ],
          {
            timeoutMs: callOptions.timeoutMs,
            signal: stop.signal,
            operation: "convert",
            label: "qemu-img convert",
            subject: `${source} → ${target} (${spec.outputFormat})`,
            fix: "Check the source image, free space for the target, and that no running VM writes the source.",
            onStdout: parse,
          },
        ).then(
          () => {
            parse("(100.00/100%)");
            subscriber.complete();
          },
          (error) => subscriber.error(error),
        );
        return () => {
          callOptions.signal?.removeEventListener("abort", onAbort);
          stop.abort(new Error("unsubscribed")); // a no-op once qemu-img has exited
        };
      });
    },

    async snapshotList(file, callOptions = {}) {
      return (await tool.info(file, callOptions)).snapshots;
    },
    async snapshotCreate(file, tag, callOptions = {}) {
      await snapshotCommand("-c", "create", file, tag, callOptions);
    },
    async snapshotApply(file, tag, callOptions = {}) {
      await snapshotCommand("-a", "apply", file, tag, callOptions);
    },
    async snapshotDelete(file, tag, callOptions = {}) {
      await snapshotCommand("-d", "delete", file, tag, callOptions);
    },
  };

  const snapshotCommand = (flag: string, verb: string, file: string, tag: string, callOptions: ToolCallOptions) =>
    exec(["snapshot", flag, tag, "--", file], {
      ...callOptions,
      operation: "snapshot",
      label: `qemu-img snapshot ${flag} '${tag}'`,
      subject: file,
      fix:
        verb === "create"
          ? "Check free space, and that no running VM holds the image (use a live snapshot for a running VM)."
          : "Check that the snapshot exists (`maqet snapshot list`) and that no running VM holds the image.",
    });

  return tool;
}

const byLocator = new WeakMap<BinaryLocator, QemuImg>();

/**
 * The process-wide adapter for a locator: every caller with the same locator shares one version
 * read (and, through the locator, one binary lookup).
 *
 * @example
 * ```ts
 * const img = qemuImgFor(sharedBinaryLocator());
 * ```
 */
export function qemuImgFor(locator: BinaryLocator): QemuImg {
  let img = byLocator.get(locator);
  if (img === undefined) {
    img = createQemuImg({ locator });
    byLocator.set(locator, img);
  }
  return img;
}

/**
 * `qemu-img info --output=json` (`-U` when locked), for callers without an adapter at hand.
 *
 * @example
 * ```ts
 * (await qemuImgInfo("/srv/vms/web.qcow2")).format; // "qcow2"
 * ```
 */
export async function qemuImgInfo(
  file: string,
  options: { locator: BinaryLocator; signal?: AbortSignal; timeoutMs?: number },
): Promise<ImageInfo> {
  return qemuImgFor(options.locator).info(file, { signal: options.signal, timeoutMs: options.timeoutMs });
}

// ---------------------------------------------------------------- parsing

const LOCK_PATTERNS = [/Failed to get ".*" lock/i, /Is another process using the image/i];
const TRANSIENT_PATTERNS = [
  ...LOCK_PATTERNS,
  /Resource temporarily unavailable/i,
  /\bEAGAIN\b/,
  /Device or resource busy/i,
  /\btry again\b/i,
];

/**
 * True for failures worth retrying: a lock another process holds, EAGAIN, a busy device.
 *
 * @example
 * ```ts
 * isTransient(`qemu-img: Could not open 'a.qcow2': Failed to get "write" lock`); // true
 * ```
 */
export function isTransient(stderr: string): boolean {
  return TRANSIENT_PATTERNS.some((p) => p.test(stderr));
}

function isLockError(stderr: string): boolean {
  return LOCK_PATTERNS.some((p) => p.test(stderr));
}

/** qemu-img's own words, on one line. */
function quote(result: ToolRunResult): string {
  const text = result.stderr
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ");
  if (text) return text;
  return result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode} and no message`;
}

/**
 * Feeds stdout chunks of `qemu-img convert -p` (`    (12.34/100%)\r`) and reports each new,
 * larger percentage once.
 *
 * @example
 * ```ts
 * const feed = progressParser((p) => console.log(p));
 * feed("    (0.00/100%)\r    (50."); feed("00/100%)\r"); // logs 0, then 50
 * ```
 */
export function progressParser(report: (percent: number) => void): (chunk: string) => void {
  let buffer = "";
  let last = -1;
  return (chunk) => {
    buffer += chunk;
    const pattern = /\((\d+(?:\.\d+)?)\/100%\)/g;
    let consumed = 0;
    for (let match = pattern.exec(buffer); match !== null; match = pattern.exec(buffer)) {
      consumed = pattern.lastIndex;
      const percent = Math.min(100, Number(match[1]));
      if (percent > last) {
        last = percent;
        report(percent);
      }
    }
    buffer = buffer.slice(consumed).slice(-64);
  };
}

function parseJson(stdout: string, what: string, file: string): Record<string, unknown> {
  try {
    const value = JSON.parse(stdout) as unknown;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new MaqetError(
    "QEMU_IMG_FAILED",
    `qemu-img ${what} printed something other than a JSON object for ${file} (${JSON.stringify(stdout.slice(0, 80))}). Check that MAQET_QEMU_IMG (or PATH) points at qemu-img.`,
    { details: { file, stdout: stdout.slice(0, 1000) } },
  );
}

function parseInfo(file: string, raw: Record<string, unknown>, inUse: boolean): ImageInfo {
  const snapshots = Array.isArray(raw.snapshots) ? raw.snapshots.map(parseImageSnapshot) : [];
  const info: ImageInfo = {
    file,
    format: String(raw.format),
    virtualSize: Number(raw["virtual-size"]),
    snapshots,
    inUse,
    raw,
  };
  if (typeof raw["actual-size"] === "number") info.actualSize = raw["actual-size"];
  const backing = raw["full-backing-filename"] ?? raw["backing-filename"];
  if (typeof backing === "string") info.backingFile = backing;
  if (typeof raw["backing-filename-format"] === "string") info.backingFormat = raw["backing-filename-format"];
  if (typeof raw["dirty-flag"] === "boolean") info.dirty = raw["dirty-flag"];
  return info;
}

function parseCheck(file: string, raw: Record<string, unknown>, exitCode: number): ImageCheck {
  const num = (key: string) => (typeof raw[key] === "number" ? (raw[key] as number) : 0);
  const check: ImageCheck = {
    file,
    status: exitCode === 2 ? "corrupt" : exitCode === 3 ? "leaks" : "clean",
    checkErrors: num("check-errors"),
    corruptions: num("corruptions"),
    leaks: num("leaks"),
    raw,
  };
  if (typeof raw.format === "string") check.format = raw.format;
  if (typeof raw["image-end-offset"] === "number") check.imageEndOffset = raw["image-end-offset"];
  return check;
}

function formatArgs(format: ImageFormat | undefined): string[] {
  return format ? ["-f", format] : [];
}

function createArgs(spec: CreateImageSpec): string[] {
  const args = ["-f", spec.format];
  if (spec.backingFile !== undefined) {
    args.push("-b", spec.backingFile, "-F", spec.backingFormat ?? "qcow2");
  }
  const options = Object.entries(spec.options ?? {});
  if (options.length > 0) {
    // Commas inside a value are doubled, as QEMU's option parser wants.
    args.push(
      "-o",
      options
        .map(([k, v]) => `${k}=${String(v === true ? "on" : v === false ? "off" : v).replaceAll(",", ",,")}`)
        .join(","),
    );
  }
  return args;
}
