/**
 * Text output of MAQET's commands (info, apply, edit, snapshot in MAQET's order, qmp pause/resume,
 * storage orphaned/verify/attach, cleanup, rm --all).
 *
 * @example
 * ```ts
 * MAQET_COMPAT_RENDERERS.info(await maqet.info("web"));
 * ```
 */

import type { CleanupReport, OrphanReport, StorageVerification, VmInfo } from "../../api/maqet.ts";
import type { ReconfigureResult } from "../../api/ops/reconfigure-ops.ts";
import type { VmStatus } from "../../api/vm-status.ts";
import { formatBytes } from "../../util/format-bytes.ts";
import { renderTable } from "../table.ts";
import { LIFECYCLE_RENDERERS } from "./lifecycle-renderers.ts";
import type { Renderer } from "./renderer.ts";
import { SNAPSHOT_RENDERERS } from "./snapshot-renderers.ts";

function info(result: unknown): string {
  const r = result as VmInfo;
  const rows: Array<[string, string]> = [
    ["name", r.name],
    ["id", r.id],
    ["state", r.state],
    ["binary", r.binary],
    ["memory", r.memory ?? "-"],
    ["cpu", r.cpu?.toString() ?? "-"],
    ["accel", r.accel],
    ["machine", r.machine ?? "-"],
    ["display", r.display ?? "-"],
    ["vga", r.vga ?? "-"],
    ["config file", r.configPath ?? "-"],
    ["storage", String(r.storageCount)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`);
  if (r.storage.length > 0) {
    lines.push(
      "",
      renderTable(
        ["DRIVE", "TYPE", "INTERFACE", "SIZE", "FILE"],
        r.storage.map((d) => [d.name, d.type, d.interface, d.size ?? "-", d.file]),
      ),
    );
  }
  if (r.shares.length > 0) {
    lines.push(
      "",
      renderTable(
        ["SHARE", "TAG", "READONLY", "PATH"],
        r.shares.map((s) => [s.name, s.mountTag, s.readonly ? "yes" : "no", s.path]),
      ),
    );
  }
  return lines.join("\n");
}

function reconfigured(result: unknown): string {
  const r = result as ReconfigureResult;
  if (r.created) return `Defined VM '${r.vm.name}' (id ${r.vm.id}): it did not exist.`;
  if (r.changed.length === 0) return `VM '${r.vm.name}': nothing changed, nothing recorded.`;
  const restarted = r.restarted ? ` Restarted it: ${r.vm.state}.` : "";
  return `Reconfigured VM '${r.vm.name}' (id ${r.vm.id}): ${r.changed.join(", ")} changed (vm.reconfigured, version ${r.vm.version}).${restarted}`;
}

function snapshot(result: unknown): string {
  const r = result as { operation?: string; drives?: unknown[] };
  return r.operation === undefined
    ? SNAPSHOT_RENDERERS["snapshot list"]!(result)
    : SNAPSHOT_RENDERERS["snapshot create"]!(result);
}

function orphaned(result: unknown): string {
  const r = result as OrphanReport;
  if (r.orphans.length === 0) return "No orphaned storage found.";
  return [
    `Found ${r.orphans.length} orphaned storage file(s):`,
    "",
    ...r.orphans.map((o) => `  ${o.path} (${formatBytes(o.bytes)})`),
    "",
    `Total: ${formatBytes(r.totalBytes)}`,
    "",
    "To define a VM around one: maqet storage attach <vm-name> <path> <config.yaml>",
  ].join("\n");
}

function verified(result: unknown): string {
  const r = result as StorageVerification;
  if (r.files.length === 0) return `VM '${r.vm}' names no storage files.`;
  return [
    `Storage of VM '${r.vm}':`,
    ...r.files.map(
      (f) =>
        `  ${f.exists ? "ok     " : "MISSING"} ${f.role} ${f.name}: ${f.path}${f.bytes !== undefined ? ` (${formatBytes(f.bytes)})` : ""}`,
    ),
    "",
    r.ok ? "All storage verified." : "Some storage files are missing.",
  ].join("\n");
}

function cleanup(result: unknown): string {
  const r = result as CleanupReport;
  const would = r.dryRun ? "would record" : "recorded";
  const lines = [
    ...r.vms.map((v) => `VM '${v.vm}': QEMU is gone; ${would} it ${v.now} (was ${v.was}).`),
    ...r.sockets.map(
      (s) =>
        `${r.dryRun ? "Would remove" : s.removed ? "Removed" : "Left"} dead QMP socket ${s.path}${s.vm ? ` (VM '${s.vm}')` : ""}.`,
    ),
  ];
  return lines.length === 0 ? "Nothing to clean up." : lines.join("\n");
}

function rm(result: unknown): string {
  const r = result as { name: string; removed: boolean; vms?: string[] };
  if (r.vms === undefined) return LIFECYCLE_RENDERERS.rm!(result);
  if (!r.removed) return "Nothing removed.";
  return r.vms.length === 0
    ? "No VMs to remove."
    : `Removed ${r.vms.length} VM(s): ${r.vms.join(", ")}. Their history stays in the store.`;
}

export const MAQET_COMPAT_RENDERERS: Record<string, Renderer> = {
  info,
  apply: reconfigured,
  edit: reconfigured,
  snapshot,
  "qmp pause": LIFECYCLE_RENDERERS.pause!,
  "qmp resume": LIFECYCLE_RENDERERS.resume!,
  "storage orphaned": orphaned,
  "storage verify": verified,
  "storage attach": (result) =>
    `Defined VM '${(result as VmStatus).name}' around its storage. Start it with \`maqet start ${(result as VmStatus).name}\`.`,
  cleanup,
  rm,
};
