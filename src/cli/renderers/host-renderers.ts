/**
 * Text output of the cluster host commands (`host ls` as a table; drain's moves; the others one line).
 *
 * @example
 * ```ts
 * HOST_RENDERERS["host ls"](await maqet.hosts());
 * ```
 */
import type { DrainReport, HostListing } from "../../api/ops/host-ops.ts";
import { formatBytes } from "../../util/format-bytes.ts";
import { renderTable } from "../table.ts";
import type { Renderer } from "./renderer.ts";

const oneHost = (result: unknown): string => {
  const h = result as HostListing;
  return `Host '${h.name}': ${h.state}${h.draining ? ", draining" : ""}${h.fenceMethod ? ` (fenced: ${h.fenceMethod})` : ""}, ${h.vms} VM(s).`;
};

export const HOST_RENDERERS: Record<string, Renderer> = {
  "host ls": (result) => {
    const hosts = result as HostListing[];
    if (hosts.length === 0) return "No host has joined. Run `maqet agent --host NAME --db URL` on each host.";
    return renderTable(
      ["NAME", "STATE", "VMS", "CPUS", "MEMORY", "LABELS", "LAST RENEWAL"],
      hosts.map((h) => [
        h.name,
        `${h.state}${h.draining ? " (draining)" : ""}${h.fenceMethod ? ` (${h.fenceMethod})` : ""}`,
        String(h.vms),
        String(h.capacity.cpus),
        formatBytes(h.capacity.memoryBytes),
        Object.entries(h.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(",") || "-",
        h.lastRenewal.replace("T", " ").replace(/\.\d+Z$/, ""),
      ]),
    );
  },
  "host drain": (result) => {
    const r = result as DrainReport;
    const lines = [`Host '${r.host}' drained: no new VMs; ${r.moved.length} VM(s) moved.`];
    for (const m of r.moved) {
      const how = m.live ? ` (live, downtime ${m.downtimeMs} ms)` : m.restarted ? " (restarted)" : "";
      lines.push(`  ${m.vm} -> ${m.to}${how}`);
    }
    for (const s of r.skipped) lines.push(`  ${s.vm} stays: ${s.reason}`);
    return lines.join("\n");
  },
  "host restore": oneHost,
  "host mark-dead": oneHost,
  "host rm": (result) => `Host '${(result as { name: string }).name}' removed.`,
};
