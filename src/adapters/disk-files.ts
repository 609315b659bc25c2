/**
 * File-level facts and steps around disk images that do not need qemu-img: which configured
 * files are missing, claiming a new file safely (0600, exclusive, no symlink followed), free
 * space (statfs), and a fingerprint that changes whenever something writes an image.
 *
 * @example
 * ```ts
 * const toCreate = await missingDisks(config.storage);
 * if (await claimFile("/srv/vms/new.qcow2")) { ... }
 * ```
 */
import { constants } from "node:fs";
import { access, lstat, open, stat, statfs } from "node:fs/promises";
import type { ImageFiles, ImageFingerprint } from "../actors/disk-image-port.ts";
import type { DiskDevice } from "../config/vm-config.ts";

export async function missingDisks(disks: readonly DiskDevice[]): Promise<DiskDevice[]> {
  const missing: DiskDevice[] = [];
  for (const disk of disks) {
    if (!(await pathExists(disk.file))) missing.push(disk);
  }
  return missing;
}

/**
 * True when something (a file, a directory, even a dangling symlink) sits at `path`.
 *
 * @example
 * ```ts
 * await pathExists("/etc/passwd"); // true
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path); // lstat: a dangling symlink counts as existing; we never write through it
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw error;
  }
}

/**
 * Creates the empty file exclusively at mode 0600 without following a symlink; false when
 * something already exists there (another creator won, or a symlink was planted).
 *
 * @example
 * ```ts
 * if (!(await claimFile(path))) throw new Error("exists");
 * ```
 */
export async function claimFile(path: string): Promise<boolean> {
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

/**
 * Bytes an unprivileged user may still write on the filesystem holding `dir` (statfs `bavail`).
 *
 * @example
 * ```ts
 * await freeBytes("/srv/vms"); // 85899345920
 * ```
 */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/**
 * True for a readable regular file (symlinks followed): what a backing file must be.
 *
 * @example
 * ```ts
 * await isReadableFile("/srv/images/base.qcow2"); // true
 * ```
 */
export async function isReadableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Size, mtime and inode of an image (not following a symlink); undefined when absent.
 *
 * @example
 * ```ts
 * const before = await imageFingerprint(file);
 * ```
 */
export async function imageFingerprint(path: string): Promise<ImageFingerprint | undefined> {
  try {
    const s = await lstat(path);
    return { size: s.size, mtimeMs: Math.trunc(s.mtimeMs), ino: s.ino };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** The real {@link ImageFiles} port. */
export const imageFiles: ImageFiles = { fingerprint: imageFingerprint };
