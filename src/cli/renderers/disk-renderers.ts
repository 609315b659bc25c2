/**
 * Text output of the disk commands.
 *
 * @example
 * ```ts
 * DISK_RENDERERS["disk info"](await maqet.diskInfo("web.qcow2"));
 * ```
 */
import type { ImageCheck, ImageInfo } from "../../actors/disk-image-port.ts";
import type { DiskConverted, DiskCreated } from "../../api/ops/disk-ops.ts";
import { formatBytes } from "../../util/format-bytes.ts";
import type { Renderer } from "./renderer.ts";

function info(result: unknown): string {
  const r = result as ImageInfo;
  const lines = [
    `file:          ${r.file}`,
    `format:        ${r.format}`,
    `virtual size:  ${formatBytes(r.virtualSize)} (${r.virtualSize} bytes)`,
  ];
  if (r.actualSize !== undefined) lines.push(`disk usage:    ${formatBytes(r.actualSize)}`);
  if (r.backingFile !== undefined)
    lines.push(`backing file:  ${r.backingFile}${r.backingFormat ? ` (${r.backingFormat})` : ""}`);
  if (r.inUse) lines.push("in use:        yes (read shared, -U: a running VM holds it)");
  lines.push(`snapshots:     ${r.snapshots.length ? r.snapshots.map((s) => s.name).join(", ") : "none"}`);
  return lines.join("\n");
}

function check(result: unknown): string {
  const r = result as ImageCheck;
  if (r.status === "clean") return `No errors were found on ${r.file}.`;
  if (r.status === "unsupported")
    return `${r.file}: this format has no metadata to check (raw images cannot be checked).`;
  if (r.status === "leaks") return `${r.file}: ${r.leaks} leaked clusters (harmless, space is wasted); no corruption.`;
  return `${r.file}: ${r.corruptions} corruptions, ${r.leaks} leaks. Repair a copy with qemu-img check -r all, keep the original.`;
}

export const DISK_RENDERERS: Record<string, Renderer> = {
  "disk create": (result) => {
    const r = result as DiskCreated;
    return `Created ${r.file} (${r.format}${r.size ? `, ${r.size}` : ""}${r.backingFile ? `, backing ${r.backingFile}` : ""}) in ${r.durationMs} ms.`;
  },
  "disk info": info,
  "disk check": check,
  "disk resize": (result) => {
    const r = result as { file: string; virtualSize: number };
    return `Resized ${r.file}: virtual size now ${formatBytes(r.virtualSize)}.`;
  },
  "disk convert": (result) => {
    const r = result as DiskConverted;
    return `Converted ${r.source} into ${r.target} (${r.format}, ${formatBytes(r.virtualSize)}) in ${r.durationMs} ms.`;
  },
};
