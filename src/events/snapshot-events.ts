/**
 * Snapshot facts of a VM's stream (part of the `vm` catalogue in vm-events.ts, kept here so the
 * snapshot feature is one place). Each operation is a requested/completed/failed triple with
 * the time it took; `snapshot.observed` records what maqet read from the images (or from QEMU)
 * so the snapshot catalogue can answer `list` later without reading them again.
 * Documented in docs/events.md and docs/snapshots.md.
 *
 * @example
 * ```ts
 * vmEvent("snapshot.create-requested", { tag: "before-upgrade", drives: ["hdd"], live: false, overwrite: false });
 * ```
 */

/** How the snapshot was taken: `qemu-img snapshot` on a stopped VM, or a QMP job on a running one. */
export type SnapshotMethod = "qemu-img" | "qmp-job";

/** One internal snapshot as recorded (from qemu-img info's or QEMU's `snapshots[]`). */
export interface SnapshotRecord {
  name: string;
  id: string;
  /** Bytes of saved VM state: 0 for a disk-only snapshot taken with the VM stopped. */
  vmStateSize: number;
  /** Epoch milliseconds. */
  createdAt: number;
  vmClockNs: number;
}

/** What a drive's image looked like after an operation (size, mtime, inode): tells if it changed since. */
export interface ImageStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** The snapshots of one drive, as read at one moment. */
export interface DriveSnapshots {
  drive: string;
  file: string;
  snapshots: SnapshotRecord[];
  /** The image's stamp when read with the VM stopped (absent when read from a running VM). */
  stamp?: ImageStamp;
}

interface SnapshotRequest {
  tag: string;
  /** The drives (storage names) the operation covers. */
  drives: string[];
  /** True when it runs on a running VM through QMP jobs. */
  live: boolean;
}

interface SnapshotDone extends SnapshotRequest {
  method: SnapshotMethod;
  durationMs: number;
  /** The drives' snapshots right after the operation (keeps the catalogue current). */
  after?: DriveSnapshots[];
}

interface SnapshotFailed extends SnapshotRequest {
  /** The error code (SNAPSHOT_NOT_FOUND, SNAPSHOT_EXISTS, QEMU_IMG_FAILED, SNAPSHOT_FAILED...). */
  code: string;
  message: string;
  durationMs: number;
}

export interface SnapshotEventData {
  "snapshot.create-requested": SnapshotRequest & { overwrite: boolean };
  /** `replaced`: an existing snapshot of that tag was deleted first (`--overwrite`). */
  "snapshot.created": SnapshotDone & { replaced: boolean };
  "snapshot.create-failed": SnapshotFailed;
  "snapshot.load-requested": SnapshotRequest;
  "snapshot.loaded": SnapshotDone;
  "snapshot.load-failed": SnapshotFailed;
  "snapshot.delete-requested": SnapshotRequest;
  "snapshot.deleted": SnapshotDone;
  "snapshot.delete-failed": SnapshotFailed;
  /** maqet read the drives' snapshots (the catalogue was missing or out of date). */
  "snapshot.observed": { source: "qemu-img" | "qmp"; drives: DriveSnapshots[] };
}

export const SNAPSHOT_EVENT_SCHEMA: { readonly [K in keyof SnapshotEventData]: number } = {
  "snapshot.create-requested": 1,
  "snapshot.created": 1,
  "snapshot.create-failed": 1,
  "snapshot.load-requested": 1,
  "snapshot.loaded": 1,
  "snapshot.load-failed": 1,
  "snapshot.delete-requested": 1,
  "snapshot.deleted": 1,
  "snapshot.delete-failed": 1,
  "snapshot.observed": 1,
};
