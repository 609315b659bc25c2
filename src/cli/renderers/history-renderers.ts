/**
 * Text output of `history`: one row per event with a one-line summary of its data.
 *
 * @example
 * ```ts
 * HISTORY_RENDERERS.history(await maqet.history("web"));
 * ```
 */
import type { HistoryEntry } from "../../api/history-entry.ts";
import type { HistoryAt } from "../../api/ops/time-travel-ops.ts";
import { renderTable } from "../table.ts";
import type { Renderer } from "./renderer.ts";

export const HISTORY_RENDERERS: Record<string, Renderer> = {
  history: (result) => {
    if (Array.isArray(result)) return renderHistory(result);
    const h = result as HistoryAt;
    // Without --at/--version: the events alone, as ever (the state now is `maqet status`).
    return h.point.at === null && h.point.version === null ? renderHistory(h.events) : renderHistoryAt(h);
  },
};

/** `history --at/--version`: the events up to the point, then the state there. */
function renderHistoryAt(h: HistoryAt): string {
  const s = h.state;
  const where = h.point.at ? `at ${h.point.at}` : `at version ${h.point.version}`;
  const rows: Array<[string, string]> = [
    ["state", s.detail ? `${s.state} (${s.detail})` : s.state],
    ["version", String(h.version)],
    ["pid", s.pid?.toString() ?? "-"],
    ["memory", s.memory ?? "-"],
    ["cpu", s.cpu?.toString() ?? "-"],
    ["disks", s.disks.map((d) => `${d.name}=${d.file}`).join(", ") || "-"],
    ["tainted", s.tainted ? `${s.tainted.reason} (${s.tainted.command})` : "no"],
    ["updated", s.updatedAt],
  ];
  if (s.lastStop)
    rows.push(["last stop", `${s.lastStop.detail}${s.lastStop.method ? ` via ${s.lastStop.method}` : ""}`]);
  if (s.lastError) rows.push(["last error", s.lastError.message]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    renderHistory(h.events),
    "",
    `VM '${h.vm}' ${where}:`,
    ...rows.map(([k, v]) => `  ${`${k}:`.padEnd(width + 2)}${v}`),
  ].join("\n");
}

function renderHistory(entries: HistoryEntry[]): string {
  if (entries.length === 0) return "No events.";
  return renderTable(
    ["VER", "TIME", "EVENT", "DETAILS", "BY"],
    entries.map((e) => [
      String(e.version),
      e.at.replace("T", " ").replace("Z", ""),
      e.type,
      summarize(e),
      e.actor ? `${e.actor.user}@${e.actor.host} pid ${e.actor.pid}${e.source ? ` (${e.source})` : ""}` : "-",
    ]),
  );
}

/** One line about an event's data (also used by `events`). */
export function summarize(e: Pick<HistoryEntry, "type" | "data">): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  switch (e.type) {
    case "vm.defined":
      return `name=${d.name}`;
    case "vm.reconfigured":
      return `changed=${(d.changed as string[] | undefined)?.join(",")} via=${d.via} reason=${JSON.stringify(d.reason)}`;
    case "vm.start-requested":
      return `timeout=${Number(d.timeoutMs) / 1000}s`;
    case "vm.started":
      return `pid=${d.pid} accel=${d.accel} qemu=${d.qemuVersion} in ${d.durationMs}ms`;
    case "vm.start-failed":
      return `${d.reason}: ${d.message}`;
    case "vm.stop-requested":
      return `force=${d.force} timeout=${Number(d.timeoutMs) / 1000}s`;
    case "vm.stopped":
      return [
        `detail=${d.detail}`,
        d.method && `method=${d.method}`,
        d.reason && `reason=${d.reason}`,
        d.signal && `signal=${d.signal}`,
      ]
        .filter(Boolean)
        .join(" ");
    case "vm.paused":
      return `detail=${d.detail}`;
    case "vm.resumed":
      return d.reason ? `reason=${d.reason}` : "";
    case "vm.stop-step":
      return `step=${d.step}`;
    case "vm.reattached": {
      const previous = d.previousHolder as { pid?: number; host?: string } | undefined;
      return `pid=${d.pid} status=${d.status}${previous ? ` after driver pid ${previous.pid} on ${previous.host} died` : ""}`;
    }
    case "vm.reset":
      return `guest=${d.guest}${d.reason ? ` reason=${d.reason}` : ""}`;
    case "vm.guest-panicked":
      return d.action ? `action=${d.action}` : "";
    case "vm.wait-failed":
      return `${d.condition} not met in ${Number(d.timeoutMs) / 1000}s`;
    case "qmp.command-executed":
      return `${d.command} ${d.outcome}${d.errorClass ? ` (${d.errorClass})` : ""} in ${d.durationMs}ms${d.tier && d.tier !== "safe" ? ` [${d.tier}]` : ""}`;
    case "vm.tainted":
      return `${d.reason} by ${d.command}`;
    case "vm.console-attached": {
      const from = d.takenOverFrom as { user?: string; pid?: number } | undefined;
      const took = d.takeover
        ? ` (${d.takeover} takeover${from ? ` from ${from.user ?? "?"} pid ${from.pid ?? "?"}` : ""})`
        : "";
      return `${d.mode}${took}`;
    }
    case "vm.console-detached":
      return `${d.mode} ${d.reason} after ${(Number(d.durationMs) / 1000).toFixed(1)}s${d.message ? `: ${d.message}` : ""}`;
    case "disk.created":
      return `${d.drive} ${d.format} ${d.size ?? ""} ${d.file}`.trim();
    case "snapshot.create-requested":
    case "snapshot.load-requested":
    case "snapshot.delete-requested":
      return `${d.tag} on ${(d.drives as string[]).join(",")}${d.live ? " live" : ""}${d.overwrite ? " overwrite" : ""}`;
    case "snapshot.created":
    case "snapshot.loaded":
    case "snapshot.deleted":
      return `${d.tag} via ${d.method} in ${d.durationMs}ms${d.replaced ? " (replaced)" : ""}${d.recovered ? " (recovered)" : ""}`;
    case "snapshot.create-failed":
    case "snapshot.load-failed":
    case "snapshot.delete-failed":
      return `${d.tag} ${d.code}${d.reason ? ` (${d.reason})` : ""} in ${d.durationMs}ms`;
    case "snapshot.observed":
      return `${(d.drives as { drive: string; snapshots: unknown[] }[]).map((x) => `${x.drive}:${x.snapshots.length}`).join(" ")} via ${d.source}`;
    case "vm.placed":
      return `on ${d.host} (${d.reason}, epoch ${d.epoch}${d.from ? `, from ${d.from}` : ""})`;
    case "vm.recovering":
      return `from ${d.from} (fenced: ${d.fenceMethod})`;
    case "vm.migration-requested":
      return `${d.fromHost} -> ${d.toHost} downtime<=${d.downtimeLimitMs}ms ${d.bandwidthMiBs}MiB/s`;
    case "vm.migration-target-prepared":
      return `pid=${d.pid} on ${d.host} at ${d.uri}`;
    case "vm.migration-started":
      return `to ${d.uri}`;
    case "vm.migration-progress":
      return `pass ${d.passes}: ${mib(d.transferredBytes)} sent, ${mib(d.remainingBytes)} left, ${Math.round(Number(d.mbps))} Mbit/s`;
    case "vm.migration-switchover":
      return `after ${d.passes} pass(es), ${mib(d.remainingBytes)} left`;
    case "vm.owner-changed":
      return `${d.fromHost} -> ${d.toHost} pid=${(d.target as { pid: number }).pid}${Number(d.epoch) > 0 ? ` epoch ${d.epoch}` : ""}`;
    case "vm.migrated":
      return d.recovered
        ? `to ${d.toHost} (recovered)`
        : `to ${d.toHost}: downtime ${d.downtimeMs}ms, total ${d.totalMs}ms, ${mib(d.transferredBytes)}, ${d.passes} pass(es)${d.resumed === false ? ", not resumed" : ""}`;
    case "vm.migration-failed":
      return `${d.phase}: ${d.reason}${d.recovered ? " (recovered)" : ""}`;
    case "vm.migration-cancelled":
      return `${d.phase} by ${d.by}: ${d.reason}`;
    default:
      return "";
  }
}

function mib(bytes: unknown): string {
  return `${(Number(bytes) / (1024 * 1024)).toFixed(1)}MiB`;
}
