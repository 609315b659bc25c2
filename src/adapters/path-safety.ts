/**
 * Where maqet may create disk images: anywhere except the system directories below (MAQET's
 * `DANGEROUS_SYSTEM_PATHS`), with `/dev/shm` allowed. The check runs on the real path (the
 * nearest existing parent with symlinks resolved, plus the part not created yet) and on the path
 * as written, so a symlink into `/etc` is refused as surely as `/etc` itself.
 *
 * @example
 * ```ts
 * await assertDiskPathAllowed("/home/me/vms/web.qcow2"); // ok
 * await assertDiskPathAllowed("/etc/evil.qcow2");        // throws PATH_REFUSED
 * ```
 */
import { lstat, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative } from "node:path";
import { MaqetError } from "../errors/maqet-error.ts";

/** The one list of directories (and everything under them) where disks are never created. */
export const SYSTEM_DIRECTORIES: readonly string[] = [
  "/etc",
  "/sys",
  "/proc",
  "/dev",
  "/boot",
  "/root",
  "/var",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib64",
];

/** Exceptions inside {@link SYSTEM_DIRECTORIES} (RAM-backed scratch space is a fine place for disks). */
export const ALLOWED_SYSTEM_SUBDIRECTORIES: readonly string[] = ["/dev/shm"];

/** Checks a disk path before it is created; resolves when allowed, throws `PATH_REFUSED` when not. */
export type PathGuard = (path: string) => Promise<void>;

/**
 * The system directory an absolute, normalised path falls in, or undefined when it is allowed.
 *
 * @example
 * ```ts
 * systemDirectoryOf("/var/lib/x.qcow2"); // "/var"
 * systemDirectoryOf("/dev/shm/x.raw");   // undefined
 * ```
 */
export function systemDirectoryOf(path: string): string | undefined {
  if (ALLOWED_SYSTEM_SUBDIRECTORIES.some((allowed) => isWithin(path, allowed))) return undefined;
  return SYSTEM_DIRECTORIES.find((dir) => isWithin(path, dir));
}

/**
 * Refuses (PATH_REFUSED, exit 4) a disk path inside a system directory, judged both as written and
 * by its real location. Returns the real path the file would get.
 *
 * @example
 * ```ts
 * const real = await assertDiskPathAllowed("/tmp/vms/a.qcow2");
 * ```
 */
export async function assertDiskPathAllowed(path: string): Promise<string> {
  if (!isAbsolute(path) || path.includes("\0")) {
    throw new MaqetError(
      "PATH_REFUSED",
      `Refusing disk path ${JSON.stringify(path)}: a disk path must be absolute and contain no NUL byte. Use an absolute path.`,
      { details: { path, rule: "absolute" } },
    );
  }
  const written = normalize(path);
  const real = await realTargetPath(written);
  for (const candidate of [written, real]) {
    const rule = systemDirectoryOf(candidate);
    if (rule !== undefined) {
      const via = candidate === written ? "" : ` (its real path is ${real})`;
      throw new MaqetError(
        "PATH_REFUSED",
        `Refusing to create disk ${written}${via}: ${rule} is a system directory where maqet never creates disks. Put the disk under your home or data directory (e.g. ~/.local/share/maqet/disks), or /dev/shm for scratch.`,
        { details: { path: written, realPath: real, rule } },
      );
    }
  }
  return real;
}

/**
 * Refuses a VirtFS share directory: `/` (the whole host) and system directories are refused with
 * PATH_REFUSED (exit 4), judged on the path as written and on its real path (a symlink to `/`
 * or into `/etc` is refused too); a directory that does not exist is PATH_NOT_FOUND (exit 3).
 * Returns the real path.
 *
 * @example
 * ```ts
 * await assertSharePathAllowed("/home/me/share"); // "/home/me/share"
 * await assertSharePathAllowed("/");              // throws PATH_REFUSED
 * ```
 */
export async function assertSharePathAllowed(path: string, name = "share"): Promise<string> {
  if (!isAbsolute(path) || path.includes("\0")) {
    throw new MaqetError(
      "PATH_REFUSED",
      `Refusing VirtFS ${name} path ${JSON.stringify(path)}: it must be absolute and contain no NUL byte. Use an absolute path.`,
      { details: { path, rule: "absolute" } },
    );
  }
  const written = normalize(path).replace(/(.)\/+$/, "$1");
  let real: string;
  try {
    real = await realpath(written);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
    refuseShare(written, written, name);
    throw new MaqetError(
      "PATH_NOT_FOUND",
      `VirtFS ${name} directory ${written} does not exist. Create it (mkdir -p ${written}) or fix path: in the config.`,
      { details: { path: written, rule: "exists" } },
    );
  }
  refuseShare(written, real, name);
  if (!(await stat(real)).isDirectory()) {
    throw new MaqetError("PATH_NOT_FOUND", `VirtFS ${name} path ${written} is not a directory. Share a directory.`, {
      details: { path: written, realPath: real, rule: "directory" },
    });
  }
  return real;
}

function refuseShare(written: string, real: string, name: string): void {
  for (const candidate of [written, real]) {
    const via = candidate === written ? "" : ` (its real path is ${real})`;
    if (candidate === "/") {
      throw new MaqetError(
        "PATH_REFUSED",
        `Refusing VirtFS ${name} of ${written}${via}: sharing / exposes the whole host to the guest. Share a dedicated directory instead.`,
        { details: { path: written, realPath: real, rule: "/" } },
      );
    }
    const rule = systemDirectoryOf(candidate);
    if (rule !== undefined) {
      throw new MaqetError(
        "PATH_REFUSED",
        `Refusing VirtFS ${name} of ${written}${via}: ${rule} is a system directory and is never shared with a guest. Share a dedicated directory instead.`,
        { details: { path: written, realPath: real, rule } },
      );
    }
  }
}

/** The real path of the nearest existing ancestor, joined with the components that do not exist yet. */
async function realTargetPath(path: string): Promise<string> {
  let existing = dirname(path);
  for (;;) {
    try {
      const real = await realpath(existing);
      return join(real, relative(existing, path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== "ENOENT" && code !== "ENOTDIR") || existing === "/") throw error;
      existing = dirname(existing);
    }
  }
}

function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * Refuses (PATH_REFUSED, exit 4) a config whose disk a start would have to create inside a system
 * directory: the check `start` makes, made at `add` and `apply` already, so a config that can
 * never start is never recorded. Disks whose file exists are the user's and are not judged here
 * (an image under /var/lib/libvirt/images is used, not created); CD-ROMs are never created.
 *
 * @example
 * ```ts
 * await assertConfigDiskPaths({ storage: [{ name: "hdd0", file: "/etc/x.qcow2" }] }); // throws PATH_REFUSED
 * ```
 */
export async function assertConfigDiskPaths(config: {
  storage: ReadonlyArray<{ name: string; file: string; media?: string }>;
}): Promise<void> {
  for (const disk of config.storage) {
    if (disk.media === "cdrom" || !isAbsolute(disk.file) || (await exists(disk.file))) continue;
    try {
      await assertDiskPathAllowed(disk.file);
    } catch (error) {
      if (error instanceof MaqetError && error.code === "PATH_REFUSED") {
        throw new MaqetError("PATH_REFUSED", `Disk '${disk.name}': ${error.message}`, {
          cause: error,
          details: { ...error.details, disk: disk.name, keyPath: `storage[name=${disk.name}].file` },
        });
      }
      throw error;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
