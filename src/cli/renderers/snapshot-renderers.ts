/**
 * Text output of the snapshot commands.
 *
 * @example
 * ```ts
 * SNAPSHOT_RENDERERS["snapshot list"](await maqet.listSnapshots("web"));
 * ```
 */
import type { SnapshotListing, SnapshotOutcome } from "../../actors/snapshot-operations.ts";
import { formatBytes } from "../../util/format-bytes.ts";
import { renderTable } from "../table.ts";
import type { Renderer } from "./renderer.ts";

const VERBS = { create: "taken", load: "loaded", delete: "deleted" } as const;

function outcome(result: unknown): string {
  const r = result as SnapshotOutcome;
  const drives = r.drives.length === 1 ? `drive ${r.drives[0]}` : `drives ${r.drives.join(", ")}`;
  const how = r.live ? "live, QMP job" : "offline, qemu-img";
  const replaced = r.replaced ? " (replaced the old one)" : "";
  return `Snapshot '${r.tag}' ${VERBS[r.operation]} on ${drives} of VM '${r.vm}'${replaced} (${how}) in ${r.durationMs} ms.`;
}

function listing(result: unknown): string {
  const r = result as SnapshotListing;
  const rows = r.drives.flatMap((d) =>
    d.snapshots.map((s) => [
      d.drive,
      s.name,
      s.id,
      s.vmStateSize > 0 ? formatBytes(s.vmStateSize) : "-",
      new Date(s.createdAt)
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, ""),
    ]),
  );
  if (rows.length === 0) return `VM '${r.vm}' has no snapshots.`;
  return renderTable(["DRIVE", "NAME", "ID", "VM STATE", "TAKEN (UTC)"], rows);
}

export const SNAPSHOT_RENDERERS: Record<string, Renderer> = {
  "snapshot create": outcome,
  "snapshot load": outcome,
  "snapshot delete": outcome,
  "snapshot list": listing,
};
