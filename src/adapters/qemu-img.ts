/**
 * The one `qemu-img` adapter: every image operation maqet runs goes through here (info, check,
 * create, resize, convert, internal snapshots), with the binary from the cached locator and its
 * version read once. How each operation's arguments are built is here; how qemu-img is run
 * (time limit, retries, version gate) is src/adapters/qemu-img-runner.ts, and how its output is
 * read is src/adapters/qemu-img-output.ts.
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
  ImageFormat,
  ImageInfo,
  Progress,
  ToolCallOptions,
} from "../actors/disk-image-port.ts";
import type { BinaryLocator } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { parseCheck, parseInfo, parseJson, progressParser } from "./qemu-img-output.ts";
import { createQemuImgRunner, type QemuImgOptions } from "./qemu-img-runner.ts";

export { isTransient, progressParser } from "./qemu-img-output.ts";
export {
  DEFAULT_RETRY,
  MIN_QEMU_IMG_VERSION,
  QEMU_IMG_TIMEOUT_MS,
  QEMU_IMG_TIMEOUTS,
  type QemuImgOperation,
  type QemuImgOptions,
  type RetryPolicy,
} from "./qemu-img-runner.ts";

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
  const runner = createQemuImgRunner(options);
  const { exec, checkedVersion } = runner;

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
      return runner.versionReads;
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

// ---------------------------------------------------------------- arguments

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
