/**
 * Internal snapshots of a VM's qcow2 drives: create, load, delete. Each runs inside
 * `VmActor.exclusive`, so it never races a start or a stop:
 *
 * - VM stopped → offline, through qemu-img (`snapshot -c/-a/-d`), qcow2 only;
 * - VM running → live, through the QMP jobs `snapshot-save` / `snapshot-load` / `snapshot-delete`
 *   (QEMU ≥ 6) on the drives' block nodes, found with `query-block` (drives are attached with
 *   `-drive id=<name>`, so their nodes carry QEMU's generated names); a live snapshot saves the
 *   VM's RAM and device state into the first drive too.
 *
 * What each decides is here; the run they share (the facts recorded before and after, the QMP
 * jobs dismissed) is src/actors/snapshot-run.ts, which drives they cover is
 * src/actors/snapshot-drives.ts, and listing what the drives hold is src/actors/snapshot-listing.ts.
 *
 * @example
 * ```ts
 * await vm.exclusive((access) => createSnapshot(access, deps, { tag: "before-upgrade" }));
 * ```
 */
import type { DiskDevice } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { SnapshotRecord } from "../events/snapshot-events.ts";
import { runQmpJob } from "./qmp-job.ts";
import { liveNodes, liveSession } from "./snapshot-listing.ts";
import {
  jobOptions,
  runOperation,
  type SnapshotDeps,
  type SnapshotOutcome,
  type SnapshotRequest,
} from "./snapshot-run.ts";
import type { VmAccess } from "./vm-actor.ts";

export { assertValidTag, snapshotDrives } from "./snapshot-drives.ts";
export { fromCatalogue, readDrives, refreshSnapshotListing, type SnapshotListing } from "./snapshot-listing.ts";
export type { SnapshotDeps, SnapshotOutcome, SnapshotRequest } from "./snapshot-run.ts";

export function createSnapshot(
  access: VmAccess,
  deps: SnapshotDeps,
  request: SnapshotRequest & { overwrite?: boolean },
): Promise<SnapshotOutcome> {
  const overwrite = request.overwrite === true;
  return runOperation("create", access, deps, request, { overwrite }, async (disks, live, deps) => {
    if (live) {
      const session = liveSession(access);
      const nodes = await liveNodes(session, disks, access.view.name);
      const existing = nodes.filter((n) => hasTag(n, request.tag));
      if (existing.length > 0 && !overwrite) throw exists(access.view.name, request.tag, existing);
      if (existing.length > 0) {
        await runQmpJob(
          session,
          "snapshot-delete",
          { tag: request.tag, devices: existing.map((n) => n.node) },
          jobOptions(deps, request, 0, 20),
        );
      }
      await runQmpJob(
        session,
        "snapshot-save",
        { tag: request.tag, vmstate: nodes[0]!.node, devices: nodes.map((n) => n.node) },
        jobOptions(deps, request, existing.length > 0 ? 20 : 0, 100),
      );
      return { replaced: existing.length > 0 };
    }
    const images = await imageSnapshots(deps, disks, request);
    const existing = images.filter((i) => hasTag(i, request.tag));
    if (existing.length > 0 && !overwrite) throw exists(access.view.name, request.tag, existing);
    await eachDisk(images, request, async (image) => {
      if (existing.includes(image))
        await deps.tool.snapshotDelete(image.disk.file, request.tag, { signal: request.signal });
      await deps.tool.snapshotCreate(image.disk.file, request.tag, { signal: request.signal });
    });
    return { replaced: existing.length > 0 };
  });
}

export function loadSnapshot(access: VmAccess, deps: SnapshotDeps, request: SnapshotRequest): Promise<SnapshotOutcome> {
  return runOperation("load", access, deps, request, {}, async (disks, live, deps) => {
    if (live) {
      const session = liveSession(access);
      const nodes = await liveNodes(session, disks, access.view.name);
      if (!nodes.every((n) => hasTag(n, request.tag))) throw notFound(access.view.name, request.tag, nodes);
      const withState = nodes.find((n) => n.snapshots.some((s) => s.name === request.tag && s.vmStateSize > 0));
      if (withState === undefined) {
        throw new MaqetError(
          "SNAPSHOT_UNSUPPORTED",
          `Snapshot '${request.tag}' of VM '${access.view.name}' holds no VM state (it was taken with the VM stopped), so a running VM cannot load it. Stop the VM (\`maqet stop ${access.view.name}\`) and load it offline.`,
          { details: { vm: access.view.name, tag: request.tag } },
        );
      }
      await runQmpJob(
        session,
        "snapshot-load",
        { tag: request.tag, vmstate: withState.node, devices: nodes.map((n) => n.node) },
        jobOptions(deps, request, 0, 100),
      );
      return {};
    }
    const images = await imageSnapshots(deps, disks, request);
    if (!images.every((i) => hasTag(i, request.tag))) throw notFound(access.view.name, request.tag, images);
    await eachDisk(images, request, (image) =>
      deps.tool.snapshotApply(image.disk.file, request.tag, { signal: request.signal }),
    );
    return {};
  });
}

export function deleteSnapshot(
  access: VmAccess,
  deps: SnapshotDeps,
  request: SnapshotRequest,
): Promise<SnapshotOutcome> {
  return runOperation("delete", access, deps, request, {}, async (disks, live, deps) => {
    if (live) {
      const session = liveSession(access);
      const nodes = await liveNodes(session, disks, access.view.name);
      const having = nodes.filter((n) => hasTag(n, request.tag));
      if (having.length === 0) throw notFound(access.view.name, request.tag, nodes);
      await runQmpJob(
        session,
        "snapshot-delete",
        { tag: request.tag, devices: having.map((n) => n.node) },
        jobOptions(deps, request, 0, 100),
      );
      return {};
    }
    const images = await imageSnapshots(deps, disks, request);
    const having = images.filter((i) => hasTag(i, request.tag));
    if (having.length === 0) throw notFound(access.view.name, request.tag, images);
    await eachDisk(having, request, (image) =>
      deps.tool.snapshotDelete(image.disk.file, request.tag, { signal: request.signal }),
    );
    return {};
  });
}

/** A drive and the snapshots it holds (a live block node, or an image as qemu-img lists it). */
interface DriveState {
  disk: DiskDevice;
  snapshots: readonly SnapshotRecord[];
}

/** Each drive's image and its snapshots, listed by qemu-img (all at once). */
async function imageSnapshots(
  deps: SnapshotDeps,
  disks: readonly DiskDevice[],
  request: SnapshotRequest,
): Promise<DriveState[]> {
  const lists = await Promise.all(disks.map((d) => deps.tool.snapshotList(d.file, { signal: request.signal })));
  return disks.map((disk, i) => ({ disk, snapshots: lists[i]! }));
}

/** Runs `step` on each drive in turn, reporting the share of drives done as progress. */
async function eachDisk<T>(drives: readonly T[], request: SnapshotRequest, step: (drive: T) => Promise<void>) {
  let done = 0;
  for (const drive of drives) {
    await step(drive);
    request.onProgress?.(Math.floor((100 * ++done) / drives.length));
  }
}

function hasTag(drive: DriveState, tag: string): boolean {
  return drive.snapshots.some((s) => s.name === tag);
}

function exists(vm: string, tag: string, having: readonly DriveState[]): MaqetError {
  const drives = having.map((d) => d.disk.name);
  return new MaqetError(
    "SNAPSHOT_EXISTS",
    `Snapshot '${tag}' already exists on ${drives.map((d) => `drive '${d}'`).join(", ")} of VM '${vm}'. Use --overwrite to replace it, or choose another name.`,
    { details: { vm, tag, drives } },
  );
}

function notFound(vm: string, tag: string, drives: readonly DriveState[]): MaqetError {
  const tags = [...new Set(drives.flatMap((d) => d.snapshots.map((s) => s.name)))];
  const missingOn = drives.filter((d) => !hasTag(d, tag)).map((d) => d.disk.name);
  return new MaqetError(
    "SNAPSHOT_NOT_FOUND",
    `Snapshot '${tag}' not found on ${missingOn.map((d) => `drive '${d}'`).join(", ")} of VM '${vm}'. ${tags.length ? `Existing snapshots: ${tags.join(", ")}.` : "The VM has no snapshots."} List them with \`maqet snapshot list ${vm}\`.`,
    { details: { vm, tag, missingOn, existing: tags } },
  );
}
