/**
 * Disk images through `qemu-img`: {@link createDiskProvisioner} creates a missing image before a
 * VM starts; {@link qemuImgInfo} reads an image's format and sizes.
 *
 * Creating a disk: refuse system directories (path-safety), create the parent (0700), claim the
 * file with O_CREAT|O_EXCL at mode 0600 (no symlink is followed, no other creator races us, and
 * the image is never readable by others), then `qemu-img create -f <fmt> -- <abs> <size>` as an
 * argument array (no shell; `--` is accepted by qemu-img 7.2 and the path is absolute anyway, so
 * it can never be read as an option or a protocol prefix). Failure, timeout (30 s) or abort
 * removes the file and quotes qemu-img's own stderr.
 *
 * @example
 * ```ts
 * const disks = createDiskProvisioner({ locator: sharedBinaryLocator() });
 * await disks.ensure({ name: "hdd0", type: "qcow2", file: "/srv/vms/web.qcow2", size: "10G", interface: "virtio" });
 * ```
 */
import { constants } from "node:fs";
import { chmod, lstat, mkdir, open, rm } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";
import { execa } from "execa";
import type { BinaryLocator, DiskProvisioner } from "../actors/ports.ts";
import type { DiskDevice } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { sharedBinaryLocator } from "./binary-locator.ts";
import { assertDiskPathAllowed, type PathGuard } from "./path-safety.ts";

/** qemu-img create/info time limit (MAQET used the same). */
export const QEMU_IMG_TIMEOUT_MS = 30_000;

export interface DiskProvisionerOptions {
  locator: BinaryLocator;
  /** Refuses paths where disks may not be created (default: {@link assertDiskPathAllowed}). */
  pathGuard?: PathGuard;
  timeoutMs?: number;
}

/**
 * A {@link DiskProvisioner} backed by the real `qemu-img`.
 *
 * @example
 * ```ts
 * const { created, durationMs } = await createDiskProvisioner({ locator }).ensure(disk, signal);
 * ```
 */
export function createDiskProvisioner(options: DiskProvisionerOptions): DiskProvisioner {
  const guard: PathGuard =
    options.pathGuard ??
    (async (path) => {
      await assertDiskPathAllowed(path);
    });
  const timeoutMs = options.timeoutMs ?? QEMU_IMG_TIMEOUT_MS;

  return {
    async missing(disks: readonly DiskDevice[]) {
      const found = await Promise.all(disks.map((disk) => exists(disk.file)));
      return disks.filter((_, i) => !found[i]);
    },
    async ensure(disk: DiskDevice, signal?: AbortSignal) {
      const t0 = performance.now();
      const elapsed = () => Math.round(performance.now() - t0);
      signal?.throwIfAborted();
      if (!isAbsolute(disk.file)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Disk '${disk.name}' has a relative file path ${JSON.stringify(disk.file)}; the config parser resolves paths, so pass an absolute one.`,
        );
      }
      if (await exists(disk.file)) return { created: false, durationMs: elapsed() };

      await guard(disk.file);
      if (disk.size === undefined) {
        throw new MaqetError(
          "CONFIG_INVALID",
          `Invalid config: disk '${disk.name}' has no 'size' and its file ${disk.file} does not exist yet. Add size: (e.g. size: 10G) to that storage entry, or create the file.`,
          { details: { keyPath: `storage[name=${disk.name}].size`, disk: disk.name, file: disk.file } },
        );
      }
      const binary = await options.locator.locate("qemu-img");
      await mkdir(dirname(disk.file), { recursive: true, mode: 0o700 });
      if (!(await claim(disk.file))) return { created: false, durationMs: elapsed() };

      const subject = `disk '${disk.name}' (${disk.file}, ${disk.type}, ${disk.size})`;
      try {
        const result = await execa(binary, ["create", "-q", "-f", disk.type, "--", disk.file, disk.size], {
          reject: false,
          timeout: timeoutMs,
          ...(signal ? { cancelSignal: signal } : {}),
          stdin: "ignore",
          cwd: "/",
        });
        if (result.isCanceled) throw signal?.reason ?? new Error("aborted");
        if (result.timedOut) {
          throw new MaqetError(
            "QEMU_IMG_FAILED",
            `qemu-img create timed out after ${timeoutMs} ms for ${subject}. Check that the filesystem of ${dirname(disk.file)} responds, then retry.`,
            { details: { disk: disk.name, file: disk.file, timedOut: true } },
          );
        }
        if (result.failed) {
          const said = String(result.stderr ?? "").trim() || result.shortMessage;
          throw new MaqetError(
            "QEMU_IMG_FAILED",
            `qemu-img create failed for ${subject}: ${said}. Check the size and that ${dirname(disk.file)} is writable.`,
            { details: { disk: disk.name, file: disk.file, exitCode: result.exitCode, stderr: said } },
          );
        }
        const made = await lstat(disk.file);
        if (!made.isFile()) {
          throw new MaqetError(
            "QEMU_IMG_FAILED",
            `qemu-img create left ${disk.file} as something other than a regular file. Remove it and retry.`,
          );
        }
        await chmod(disk.file, 0o600); // umask may have narrowed it further, never widened; make it exact
        return { created: true, durationMs: elapsed() };
      } catch (error) {
        await rm(disk.file, { force: true }).catch(() => undefined);
        throw error;
      }
    },
  };
}

export interface QemuImgInfo {
  format: string;
  virtualSize: number;
  actualSize?: number;
  /** The whole `qemu-img info --output=json` object. */
  raw: Record<string, unknown>;
}

/**
 * `qemu-img info --output=json -U` (`-U`: readable even while a running VM holds the image lock).
 *
 * @example
 * ```ts
 * (await qemuImgInfo("/srv/vms/web.qcow2")).format; // "qcow2"
 * ```
 */
export async function qemuImgInfo(
  file: string,
  options: { locator?: BinaryLocator; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<QemuImgInfo> {
  const binary = await (options.locator ?? sharedBinaryLocator()).locate("qemu-img");
  const result = await execa(binary, ["info", "--output=json", "-U", "--", file], {
    reject: false,
    timeout: options.timeoutMs ?? QEMU_IMG_TIMEOUT_MS,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
    stdin: "ignore",
  });
  if (result.isCanceled) throw options.signal?.reason ?? new Error("aborted");
  if (result.failed) {
    const said = String(result.stderr ?? "").trim() || result.shortMessage;
    throw new MaqetError(
      "QEMU_IMG_FAILED",
      `qemu-img info failed for ${file}: ${said}. Check that the file exists and is a disk image.`,
      {
        details: { file, exitCode: result.exitCode, stderr: said },
      },
    );
  }
  const raw = JSON.parse(String(result.stdout)) as Record<string, unknown>;
  return {
    format: String(raw.format),
    virtualSize: Number(raw["virtual-size"]),
    ...(typeof raw["actual-size"] === "number" ? { actualSize: raw["actual-size"] } : {}),
    raw,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path); // lstat: a dangling symlink counts as existing; we never write through it
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** Creates the empty file exclusively at 0600; false when someone else created it first. */
async function claim(path: string): Promise<boolean> {
  try {
    const handle = await open(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}
