/**
 * What a snapshot operation covers, checked before anything is recorded: a valid tag, the named
 * drive (which must be qcow2, not raw and not a VirtFS share) or every qcow2 drive of the VM, and,
 * for an offline operation, images that exist. Each refusal names the drives there are and the fix.
 *
 * @example
 * ```ts
 * assertValidTag("before-upgrade");
 * const disks = snapshotDrives(view.config, view.name, "hdd");
 * ```
 */
import type { DiskDevice } from "../config/vm-config.ts";
import { isValidVmName } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ImageFiles } from "./disk-image-port.ts";

/**
 * Snapshot tags: the VM-name rule (no leading `-`, no `/`, no `..`), and not only digits (qemu-img reads those as ids).
 *
 * @example
 * ```ts
 * assertValidTag("42"); // throws INVALID_ARGUMENT
 * ```
 */
export function assertValidTag(tag: string): void {
  if (!isValidVmName(tag) || /^\d+$/.test(tag)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid snapshot name ${JSON.stringify(tag)}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter, digit or '_', not only digits, without '..'.`,
      { details: { tag } },
    );
  }
}

/**
 * The drives an operation covers: the named one (which must be qcow2), or every qcow2 drive.
 *
 * @example
 * ```ts
 * snapshotDrives(view.config, view.name, "hdd").map((d) => d.file);
 * ```
 */
export function snapshotDrives(
  config: { storage: readonly DiskDevice[]; shares?: readonly { name: string }[] },
  vm: string,
  drive: string | undefined,
): DiskDevice[] {
  const describe = () =>
    [
      ...config.storage.map((d) => `${d.name} (${d.type})`),
      ...(config.shares ?? []).map((s) => `${s.name} (virtfs)`),
    ].join(", ") || "none";
  if (drive !== undefined) {
    const disk = config.storage.find((d) => d.name === drive);
    if (disk === undefined) {
      if (config.shares?.some((s) => s.name === drive)) {
        throw new MaqetError(
          "SNAPSHOT_UNSUPPORTED",
          `Cannot snapshot '${drive}' of VM '${vm}': it is a VirtFS share; snapshots need a qcow2 drive. Drives: ${describe()}.`,
          { details: { vm, drive, format: "virtfs" } },
        );
      }
      throw new MaqetError(
        "DRIVE_NOT_FOUND",
        `VM '${vm}' has no drive '${drive}'. Drives: ${describe()}. Only qcow2 drives support snapshots.`,
        { details: { vm, drive, drives: config.storage.map((d) => d.name) } },
      );
    }
    if (disk.type !== "qcow2") {
      throw new MaqetError(
        "SNAPSHOT_UNSUPPORTED",
        `Cannot snapshot drive '${drive}' of VM '${vm}': it is ${disk.type}, and snapshots need qcow2. Convert it (\`maqet disk convert ${disk.file} new.qcow2 --format qcow2\`) and point the config at the copy.`,
        { details: { vm, drive, format: disk.type } },
      );
    }
    return [disk];
  }
  const qcow2 = config.storage.filter((d) => d.type === "qcow2");
  if (qcow2.length === 0) {
    throw new MaqetError(
      "SNAPSHOT_UNSUPPORTED",
      `VM '${vm}' has no qcow2 drive to snapshot (drives: ${describe()}). Snapshots need qcow2.`,
      { details: { vm, drives: config.storage.map((d) => d.name) } },
    );
  }
  return qcow2;
}

/**
 * Refuses an offline operation on a drive whose image does not exist yet (created on first start).
 *
 * @example
 * ```ts
 * await assertImagesExist(deps, "web", disks); // PATH_NOT_FOUND before the first start
 * ```
 */
export async function assertImagesExist(
  deps: { files: ImageFiles },
  vm: string,
  disks: readonly DiskDevice[],
): Promise<void> {
  for (const disk of disks) {
    if ((await deps.files.fingerprint(disk.file)) === undefined) {
      throw new MaqetError(
        "PATH_NOT_FOUND",
        `Drive '${disk.name}' of VM '${vm}' has no image yet (${disk.file} does not exist): it is created on the VM's first start. Start the VM once, or create it with \`maqet disk create ${disk.file} --size <size>\`.`,
        { details: { vm, drive: disk.name, file: disk.file } },
      );
    }
  }
}
