/**
 * What a VM's drives hold: the snapshot catalogue's answer while it is still true (nothing read),
 * else read from QEMU when the VM runs (`query-block`: each drive's block node, QEMU's generated
 * name, and its snapshots; no image touched) or from the images (`qemu-img info`, each image
 * stamped after the read). A listing that had to read records what it read as `snapshot.observed`.
 *
 * @example
 * ```ts
 * const listing = await vm.exclusive((access) => refreshSnapshotListing(access, deps, catalogue, undefined));
 * ```
 */
import type { DiskDevice } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { DriveSnapshots, SnapshotRecord } from "../events/snapshot-events.ts";
import { vmEvent } from "../events/vm-events.ts";
import { parseImageSnapshot } from "./disk-image-port.ts";
import type { QmpSession } from "./ports.ts";
import { isEntryFresh, type SnapshotCatalogue } from "./snapshot-catalogue.ts";
import { snapshotDrives } from "./snapshot-drives.ts";
import type { SnapshotDeps } from "./snapshot-run.ts";
import type { VmAccess } from "./vm-actor.ts";

export interface SnapshotListing {
  vm: string;
  running: boolean;
  /** Where the answer came from: the catalogue (nothing read), the images (qemu-img) or QEMU. */
  source: "catalogue" | "qemu-img" | "qmp";
  drives: DriveSnapshots[];
}

/** A drive of the running VM: its block node and the snapshots QEMU reports for it. */
export interface LiveNode {
  disk: DiskDevice;
  node: string;
  snapshots: SnapshotRecord[];
}

interface QueryBlockEntry {
  device: string;
  inserted?: { "node-name"?: string; drv?: string; ro?: boolean; image?: { format?: string; snapshots?: unknown[] } };
}

/**
 * The drives' snapshots, from the catalogue when it is still true (nothing read), else from QEMU
 * (running VM: `query-block`, no image touched) or the images (`qemu-img info`), recording what
 * was read as `snapshot.observed`.
 */
export async function refreshSnapshotListing(
  access: VmAccess,
  deps: SnapshotDeps,
  catalogue: SnapshotCatalogue,
  drive: string | undefined,
  signal?: AbortSignal,
): Promise<SnapshotListing> {
  const disks = snapshotDrives(access.view.config, access.view.name, drive);
  const cached = await fromCatalogue(deps, catalogue, disks, access.running);
  const base = { vm: access.view.name, running: access.running };
  if (cached !== undefined) return { ...base, source: "catalogue", drives: cached };
  const drives = await readDrives(access, deps, disks, signal);
  // An image that does not exist yet has nothing to remember.
  const observed = drives.filter((d) => access.running || d.stamp !== undefined);
  if (observed.length > 0) {
    await access.record([
      vmEvent("snapshot.observed", { source: access.running ? "qmp" : "qemu-img", drives: observed }),
    ]);
  }
  return { ...base, source: access.running ? "qmp" : "qemu-img", drives };
}

/**
 * The catalogue's answer when every drive's entry is still true; undefined when one must be read.
 *
 * @example
 * ```ts
 * const drives = await fromCatalogue(deps, catalogue, disks, view.status === "running");
 * ```
 */
export async function fromCatalogue(
  deps: Pick<SnapshotDeps, "files">,
  catalogue: SnapshotCatalogue,
  disks: readonly DiskDevice[],
  running: boolean,
): Promise<DriveSnapshots[] | undefined> {
  const out: DriveSnapshots[] = [];
  for (const disk of disks) {
    const entry = catalogue.drives.get(disk.name);
    const stamp = running ? undefined : await deps.files.fingerprint(disk.file);
    if (!isEntryFresh(entry, catalogue, { running, file: disk.file, stamp })) return undefined;
    out.push({ drive: entry.drive, file: entry.file, snapshots: entry.snapshots });
  }
  return out;
}

/**
 * What the drives hold now: from QEMU (`query-block`) when the VM runs, else from the images
 * (qemu-img, with each image's stamp).
 *
 * @example
 * ```ts
 * const drives = await readDrives(access, deps, snapshotDrives(access.view.config, access.view.name, undefined));
 * ```
 */
export async function readDrives(
  access: VmAccess,
  deps: SnapshotDeps,
  disks: readonly DiskDevice[],
  signal?: AbortSignal,
): Promise<DriveSnapshots[]> {
  if (access.running) {
    const nodes = await liveNodes(liveSession(access), disks, access.view.name);
    return nodes.map((n) => ({ drive: n.disk.name, file: n.disk.file, snapshots: n.snapshots }));
  }
  const out: DriveSnapshots[] = [];
  for (const disk of disks) {
    const stamp = await deps.files.fingerprint(disk.file);
    if (stamp === undefined) {
      out.push({ drive: disk.name, file: disk.file, snapshots: [] });
      continue;
    }
    const snapshots = await deps.tool.snapshotList(disk.file, { signal });
    // Stamped after the read: qemu-img info does not write, so this is the image as listed.
    const after = (await deps.files.fingerprint(disk.file)) ?? stamp;
    out.push({ drive: disk.name, file: disk.file, snapshots, stamp: after });
  }
  return out;
}

/**
 * The block node of each drive (QEMU's generated node name) and its snapshots, from `query-block`.
 *
 * @example
 * ```ts
 * const [first] = await liveNodes(liveSession(access), disks, access.view.name);
 * ```
 */
export async function liveNodes(session: QmpSession, disks: readonly DiskDevice[], vm: string): Promise<LiveNode[]> {
  const blocks = await session.execute<QueryBlockEntry[]>("query-block");
  return disks.map((disk) => {
    const inserted = blocks.find((b) => b.device === disk.name)?.inserted;
    const node = inserted?.["node-name"];
    if (inserted === undefined || node === undefined) {
      throw new MaqetError(
        "SNAPSHOT_FAILED",
        `Drive '${disk.name}' of VM '${vm}' is not attached in the running QEMU (query-block has no device '${disk.name}' with a medium). Restart the VM so it runs with its current config.`,
        { details: { vm, drive: disk.name, devices: blocks.map((b) => b.device) } },
      );
    }
    return { disk, node, snapshots: (inserted.image?.snapshots ?? []).map(parseImageSnapshot) };
  });
}

/**
 * The QMP session of a running VM; VM_INVALID_STATE when maqet has none.
 *
 * @example
 * ```ts
 * await liveSession(access).execute("query-block");
 * ```
 */
export function liveSession(access: VmAccess): QmpSession {
  if (access.session === undefined) {
    throw new MaqetError(
      "VM_INVALID_STATE",
      `VM '${access.view.name}' is running but maqet has no QMP connection to it.`,
    );
  }
  return access.session;
}
