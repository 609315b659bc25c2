/**
 * The file facts behind `maqet storage orphaned|verify` and `maqet cleanup`: which disk images
 * lie in a set of directories, whether paths exist (and how big they are), and removing a socket
 * nobody answers on. Reads only what it is asked about; follows no symlink when it removes.
 *
 * @example
 * ```ts
 * const images = await listImageFiles(["/home/ada/.local/share/maqet/disks"]);
 * const facts = await pathFacts(["/srv/vms/web.qcow2"]);
 * ```
 */
import { lstat, readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";

/** The image extensions MAQET's orphan scan looked for (`*.qcow2`, `*.img`; its docs add `*.raw`). */
export const IMAGE_EXTENSIONS = [".qcow2", ".img", ".raw"] as const;

export interface PathFact {
  path: string;
  exists: boolean;
  /** Size in bytes of a regular file (apparent size). */
  bytes?: number;
  kind?: "file" | "directory" | "other";
}

/**
 * Regular files with an image extension directly inside each directory (missing ones skipped),
 * sorted, without duplicates.
 *
 * @example
 * ```ts
 * await listImageFiles(["/srv/vms"]); // ["/srv/vms/old.qcow2"]
 * ```
 */
export async function listImageFiles(dirs: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const dir of new Set(dirs)) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!IMAGE_EXTENSIONS.some((ext) => name.endsWith(ext))) continue;
      const path = join(dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (info?.isFile()) found.add(path);
    }
  }
  return [...found].sort();
}

/**
 * Whether each path exists, with its size when it is a file (symlinks followed: what QEMU opens).
 *
 * @example
 * ```ts
 * (await pathFacts(["/nope"]))[0].exists; // false
 * ```
 */
export async function pathFacts(paths: readonly string[]): Promise<PathFact[]> {
  const out: PathFact[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) out.push({ path, exists: false });
    else if (info.isFile()) out.push({ path, exists: true, bytes: Number(info.size), kind: "file" });
    else out.push({ path, exists: true, kind: info.isDirectory() ? "directory" : "other" });
  }
  return out;
}

/**
 * Removes a Unix socket file (only a socket: never a regular file or a symlink's target).
 * Returns false when there was nothing of that kind to remove.
 *
 * @example
 * ```ts
 * await removeSocketFile("/run/user/1000/maqet/<id>/qmp.sock");
 * ```
 */
export async function removeSocketFile(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  if (info === undefined || !info.isSocket()) return false;
  await unlink(path);
  return true;
}
