/**
 * Which configured disk files do not exist yet (so a start will need `qemu-img create`).
 *
 * @example
 * ```ts
 * const toCreate = await missingDisks(config.storage);
 * ```
 */
import { lstat } from "node:fs/promises";
import type { DiskDevice } from "../config/vm-config.ts";

export async function missingDisks(disks: readonly DiskDevice[]): Promise<DiskDevice[]> {
  const missing: DiskDevice[] = [];
  for (const disk of disks) {
    try {
      await lstat(disk.file);
    } catch {
      missing.push(disk);
    }
  }
  return missing;
}
