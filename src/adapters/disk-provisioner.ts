/**
 * Creates disk images safely, for a VM's first start ({@link createDiskProvisioner}) and for
 * `maqet disk create` ({@link createImageFile}):
 *
 * 1. refuse system directories, judged on the real path (path-safety, exit 4);
 * 2. check the backing file is a readable regular file;
 * 3. check free space (statfs): qcow2 needs its virtual size × 1.1 (room to grow, as MAQET
 *    did), raw its size; images with a backing file are not checked (they start empty);
 * 4. claim the file with O_CREAT|O_EXCL|O_NOFOLLOW at mode 0600 (no symlink followed, no other
 *    creator races us, never readable by others);
 * 5. `qemu-img create` through the one adapter; verify a regular file is left;
 * 6. on any failure, timeout or abort, remove the partial file;
 * 7. a start that fails after creating images removes them (`discard`), and only them.
 *
 * @example
 * ```ts
 * const disks = createDiskProvisioner({ locator: sharedBinaryLocator() });
 * await disks.ensure({ name: "hdd0", type: "qcow2", file: "/srv/vms/web.qcow2", size: "10G", interface: "virtio" });
 * ```
 */
import { chmod, lstat, mkdir, rm } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";
import type { CreateImageSpec, DiskImageTool } from "../actors/disk-image-port.ts";
import type { BinaryLocator, DiskProvisioner } from "../actors/ports.ts";
import type { DiskDevice } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { formatBytes } from "../util/format-bytes.ts";
import { claimFile, freeBytes, isReadableFile, missingDisks, pathExists } from "./disk-files.ts";
import { assertDiskPathAllowed, assertSharePathAllowed, type PathGuard } from "./path-safety.ts";
import { createQemuImg, qemuImgFor } from "./qemu-img.ts";

/** qcow2 is created sparse but may grow to its virtual size plus metadata: ask for 10 % more. */
export const QCOW2_SPACE_FACTOR = 1.1;

export interface DiskProvisionerOptions {
  locator: BinaryLocator;
  /** The qemu-img adapter (default: the shared one for `locator`). */
  tool?: DiskImageTool;
  /** Refuses paths where disks may not be created (default: {@link assertDiskPathAllowed}). */
  pathGuard?: PathGuard;
  timeoutMs?: number;
  /** Free bytes on the filesystem of a directory (default: statfs). */
  freeSpace?: (dir: string) => Promise<number>;
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
  const tool =
    options.tool ??
    (options.timeoutMs === undefined
      ? qemuImgFor(options.locator)
      : createQemuImg({ locator: options.locator, timeouts: { create: options.timeoutMs } }));
  const freeSpace = options.freeSpace ?? freeBytes;
  return {
    missing: missingDisks,
    checkShare: async (share) => void (await assertSharePathAllowed(share.path, `share '${share.name}'`)),
    discard: (file) => rm(file, { force: true }),
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
      if (await pathExists(disk.file)) return { created: false, durationMs: elapsed() };
      if (disk.size === undefined && disk.backingFile === undefined) {
        throw new MaqetError(
          "CONFIG_INVALID",
          `Invalid config: disk '${disk.name}' has no 'size' and its file ${disk.file} does not exist yet. Add size: (e.g. size: 10G) to that storage entry, or create the file.`,
          { details: { keyPath: `storage[name=${disk.name}].size`, disk: disk.name, file: disk.file } },
        );
      }
      // The VM's directory is created on first start (0700), as MAQET did; `maqet disk create` does not.
      const guard = options.pathGuard ?? (async (path: string) => void (await assertDiskPathAllowed(path)));
      await guard(disk.file);
      await mkdir(dirname(disk.file), { recursive: true, mode: 0o700 });
      const created = await createImageFile(disk.file, specOf(disk), {
        tool,
        freeSpace,
        signal,
        subject: `disk '${disk.name}'`,
        skipGuard: true,
      });
      return { created, durationMs: elapsed() };
    },
  };
}

export interface CreateImageFileOptions {
  tool: DiskImageTool;
  freeSpace?: (dir: string) => Promise<number>;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** How messages name the image, e.g. "disk 'hdd0'" (default: the path). */
  subject?: string;
  /** The caller has already run the path guard. */
  skipGuard?: boolean;
}

/**
 * Creates one image file with every safety step above; false when the file appeared meanwhile
 * (another creator won). The parent directory must exist (PATH_NOT_FOUND, exit 3, otherwise).
 *
 * @example
 * ```ts
 * await createImageFile("/srv/vms/new.qcow2", { format: "qcow2", size: "20G" }, { tool: qemuImgFor(locator) });
 * ```
 */
export async function createImageFile(
  file: string,
  spec: CreateImageSpec,
  options: CreateImageFileOptions,
): Promise<boolean> {
  const { tool, signal } = options;
  const name = options.subject ?? file;
  if (!options.skipGuard) await assertDiskPathAllowed(file);
  const parent = dirname(file);
  if (!(await pathExists(parent))) {
    throw new MaqetError(
      "PATH_NOT_FOUND",
      `Cannot create ${name === file ? file : `${name} at ${file}`}: its directory ${parent} does not exist. Create it first (mkdir -p ${parent}), or choose another path.`,
      { details: { path: file, parent, rule: "parent-exists" } },
    );
  }
  if (spec.backingFile !== undefined && !(await isReadableFile(spec.backingFile))) {
    throw new MaqetError(
      "PATH_NOT_FOUND",
      `Cannot create ${name}: its backing file ${spec.backingFile} is not a readable regular file. Fix backing_file (relative paths are read from the image's directory).`,
      { details: { path: file, backingFile: spec.backingFile } },
    );
  }
  await checkFreeSpace(file, spec, name, options.freeSpace ?? freeBytes);
  signal?.throwIfAborted();
  if (!(await claimFile(file))) return false;
  try {
    await tool.create(file, spec, { signal, timeoutMs: options.timeoutMs });
    const made = await lstat(file);
    if (!made.isFile()) {
      throw new MaqetError(
        "QEMU_IMG_FAILED",
        `qemu-img create left ${file} as something other than a regular file. Remove it and retry.`,
      );
    }
    await chmod(file, 0o600); // umask may have narrowed it further, never widened; make it exact
    return true;
  } catch (error) {
    await rm(file, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Bytes the new image must have room for: qcow2 × {@link QCOW2_SPACE_FACTOR}, raw × 1, 0 with a
 * backing file (an overlay starts empty) or without a size.
 *
 * @example
 * ```ts
 * requiredBytes({ format: "qcow2", size: "10G" }); // 11811160064
 * ```
 */
export function requiredBytes(spec: CreateImageSpec): number {
  if (spec.backingFile !== undefined || spec.size === undefined) return 0;
  const bytes = sizeInBytes(spec.size);
  return Math.ceil(spec.format === "qcow2" ? bytes * QCOW2_SPACE_FACTOR : bytes);
}

/**
 * A qemu-img size (`512`, `64K`, `10G`; binary units) in bytes.
 *
 * @example
 * ```ts
 * sizeInBytes("1G"); // 1073741824
 * ```
 */
export function sizeInBytes(size: string): number {
  const match = /^(\d+)([KMGTPE]?)$/i.exec(size.trim());
  if (!match) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid size ${JSON.stringify(size)}: use a number of bytes or 512M, 10G, 1T.`,
    );
  }
  const power = " KMGTPE".indexOf((match[2] || " ").toUpperCase());
  return Number(match[1]) * 1024 ** power;
}

export { formatBytes };

async function checkFreeSpace(
  file: string,
  spec: CreateImageSpec,
  name: string,
  freeSpace: (dir: string) => Promise<number>,
): Promise<void> {
  const need = requiredBytes(spec);
  if (need === 0) return;
  const have = await freeSpace(dirname(file));
  if (have < need) {
    throw new MaqetError(
      "INSUFFICIENT_SPACE",
      `Insufficient disk space for ${name} (${file}, ${spec.format} ${spec.size}): need ${formatBytes(need)}${spec.format === "qcow2" ? " (size × 1.1, room to grow)" : ""}, have ${formatBytes(have)} free in ${dirname(file)}. Free some space, choose a smaller size or another directory.`,
      { details: { path: file, needBytes: need, freeBytes: have } },
    );
  }
}

function specOf(disk: DiskDevice): CreateImageSpec {
  const spec: CreateImageSpec = { format: disk.type };
  if (disk.size !== undefined) spec.size = disk.size;
  if (disk.backingFile !== undefined) {
    spec.backingFile = disk.backingFile;
    spec.backingFormat = disk.backingFormat ?? "qcow2";
  }
  if (disk.options !== undefined) spec.options = disk.options;
  return spec;
}
