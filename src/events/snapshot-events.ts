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
  /**
   * Schema 2: true when the process that requested it died before recording this outcome, and a
   * later process found out what happened (from qemu-img, `query-block` or QEMU's job list) and
   * recorded it (`durationMs` is then 0: the real duration is unknown).
   */
  recovered?: boolean;
}

/** Why an operation has no other outcome: it was interrupted (its process died) and did not happen. */
export type SnapshotFailureReason = "interrupted";

interface SnapshotFailed extends SnapshotRequest {
  /** The error code (SNAPSHOT_NOT_FOUND, SNAPSHOT_EXISTS, QEMU_IMG_FAILED, SNAPSHOT_FAILED, INTERRUPTED...). */
  code: string;
  message: string;
  durationMs: number;
  /** Schema 2: `interrupted` when the requesting process died and a later one found it not done. */
  reason?: SnapshotFailureReason;
  /** Schema 2: recorded by a later process (see {@link SnapshotDone.recovered}). */
  recovered?: boolean;
  /** Schema 2: the drives' snapshots as the recovering process found them (keeps the catalogue true). */
  after?: DriveSnapshots[];
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
  // Schema 2 of the outcomes adds optional fields only (recovered, reason, after on failures):
  // a schema 1 payload reads as is (not recovered).
  "snapshot.created": 2,
  "snapshot.create-failed": 2,
  "snapshot.load-requested": 1,
  "snapshot.loaded": 2,
  "snapshot.load-failed": 2,
  "snapshot.delete-requested": 1,
  "snapshot.deleted": 2,
  "snapshot.delete-failed": 2,
  "snapshot.observed": 1,
};
