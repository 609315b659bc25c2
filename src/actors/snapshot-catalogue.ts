/**
 * The snapshot catalogue of one VM: a pure fold of its stream's snapshot facts, so `snapshot
 * list` can answer without running qemu-img or asking QEMU when nothing changed since maqet last
 * looked.
 *
 * An entry per drive holds the tags last seen and, for a stopped VM, the image's stamp (size,
 * mtime, inode) at that moment. An entry is trusted when:
 * - it is not marked stale (a failed operation, or a raw QMP command that can change snapshots,
 *   e.g. `snapshot-save` or `human-monitor-command` sent with `maqet qmp`, marks it stale);
 * - the VM is stopped and the image's stamp is unchanged (nobody ran qemu-img on it meanwhile), or
 * - the VM is running and the entry was read during this run (while QEMU holds the image's
 *   write lock, snapshots change only through QMP, and those commands are in the stream).
 *
 * @example
 * ```ts
 * const catalogue = foldSnapshotCatalogue(await store.readStream(vmStreamId(vmId)));
 * catalogue.drives.get("hdd")?.snapshots.map((s) => s.name);
 * ```
 */
import type { StoredEvent } from "../events/envelope.ts";
import type { DriveSnapshots, ImageStamp, SnapshotRecord } from "../events/snapshot-events.ts";
import { asVmEvent } from "../events/vm-events.ts";

export interface CatalogueEntry {
  drive: string;
  file: string;
  snapshots: SnapshotRecord[];
  /** The image's stamp when read with the VM stopped. */
  stamp?: ImageStamp;
  /** The stream version of the fact that last set this entry. */
  version: number;
  /** Set by facts that may have changed the image's snapshots without saying how. */
  stale: boolean;
}

export interface SnapshotCatalogue {
  drives: Map<string, CatalogueEntry>;
  /** Stream version of the VM's last `vm.started` (-1: never started). */
  lastStartVersion: number;
  /** Stream version of the last event folded in. */
  version: number;
}

/** QMP commands that can add, remove or revert internal snapshots (or swap the image). */
export const SNAPSHOT_CHANGING_QMP_COMMANDS: readonly string[] = [
  "human-monitor-command",
  "snapshot-save",
  "snapshot-load",
  "snapshot-delete",
  "blockdev-snapshot-internal-sync",
  "blockdev-snapshot-delete-internal-sync",
  "blockdev-snapshot-sync",
  "blockdev-snapshot",
  "transaction",
  "blockdev-change-medium",
  "drive-mirror",
  "blockdev-mirror",
  "block-commit",
  "block-stream",
];

export function emptyCatalogue(): SnapshotCatalogue {
  return { drives: new Map(), lastStartVersion: -1, version: -1 };
}

/**
 * Folds a VM's events (in stream order) into its catalogue.
 *
 * @example
 * ```ts
 * foldSnapshotCatalogue([]).drives.size; // 0
 * ```
 */
export function foldSnapshotCatalogue(events: readonly StoredEvent[]): SnapshotCatalogue {
  const catalogue = emptyCatalogue();
  for (const event of events) applySnapshotFact(catalogue, event);
  return catalogue;
}

/** Applies one event (mutating the catalogue); events that do not concern snapshots only move the version. */
export function applySnapshotFact(catalogue: SnapshotCatalogue, raw: StoredEvent): void {
  catalogue.version = raw.streamVersion;
  const event = asVmEvent(raw);
  if (event === undefined) return;
  const markStale = (drives: readonly string[] | undefined) => {
    for (const entry of catalogue.drives.values())
      if (drives === undefined || drives.includes(entry.drive)) entry.stale = true;
  };
  const setAll = (after: readonly DriveSnapshots[] | undefined) => {
    for (const d of after ?? []) {
      catalogue.drives.set(d.drive, {
        drive: d.drive,
        file: d.file,
        snapshots: [...d.snapshots],
        ...(d.stamp ? { stamp: d.stamp } : {}),
        version: raw.streamVersion,
        stale: false,
      });
    }
  };
  switch (event.type) {
    case "vm.started":
      catalogue.lastStartVersion = raw.streamVersion;
      break;
    case "snapshot.observed":
      setAll(event.data.drives);
      break;
    case "snapshot.created":
    case "snapshot.loaded":
    case "snapshot.deleted":
      // Without the drives' state after the operation, what is known about them is no longer true.
      if (event.data.after === undefined) markStale(event.data.drives);
      else setAll(event.data.after);
      break;
    case "snapshot.create-failed":
    case "snapshot.load-failed":
    case "snapshot.delete-failed":
      // A recovered failure says what the drives held when it was found out; others do not.
      if (event.data.after === undefined) markStale(event.data.drives);
      else setAll(event.data.after);
      break;
    case "qmp.command-executed":
      if (SNAPSHOT_CHANGING_QMP_COMMANDS.includes(event.data.command)) markStale(undefined);
      break;
    default:
      break;
  }
}

/**
 * Whether an entry still describes the image, for a VM that is `running` or not, given the
 * image's stamp now (stopped VMs only; `undefined` when the file is gone).
 *
 * @example
 * ```ts
 * isEntryFresh(entry, catalogue, { running: false, stamp: await files.fingerprint(entry.file) });
 * ```
 */
export function isEntryFresh(
  entry: CatalogueEntry | undefined,
  catalogue: SnapshotCatalogue,
  now: { running: boolean; file: string; stamp?: ImageStamp },
): entry is CatalogueEntry {
  if (entry === undefined || entry.stale || entry.file !== now.file) return false;
  if (now.running) return entry.version > catalogue.lastStartVersion;
  return (
    entry.stamp !== undefined &&
    now.stamp !== undefined &&
    entry.stamp.size === now.stamp.size &&
    entry.stamp.mtimeMs === now.stamp.mtimeMs &&
    entry.stamp.ino === now.stamp.ino
  );
}
