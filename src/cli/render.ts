/**
 * Human-readable output of each command's result (`--json` prints the result itself instead).
 *
 * @example
 * ```ts
 * renderResult("ls", await maqet.list()); // a table
 * ```
 */
import type { HistoryEntry } from "../api/history-entry.ts";
import type { VmStatus } from "../api/vm-status.ts";
import { renderTable } from "./table.ts";

export function renderResult(command: string, result: unknown): string {
  switch (command) {
    case "add": {
      const s = result as VmStatus;
      return `Added VM '${s.name}' (id ${s.id}). Start it with \`maqet start ${s.name}\`.`;
    }
    case "start": {
      const s = result as VmStatus;
      return `Started VM '${s.name}' (pid ${s.pid}, QEMU ${s.qemuVersion ?? "?"}).`;
    }
    case "stop": {
      const s = result as VmStatus & { alreadyStopped?: boolean };
      if (s.alreadyStopped) return `VM '${s.name}' is already stopped.`;
      const how = s.lastStop
        ? `${s.lastStop.detail}${s.lastStop.method ? ` via ${s.lastStop.method}` : ""}`
        : "already stopped";
      return `Stopped VM '${s.name}' (${how}).`;
    }
    case "rm":
    case "remove":
      return `Removed VM '${(result as { name: string }).name}'. Its history stays in the store.`;
    case "ls":
    case "list":
      return renderList(result as VmStatus[]);
    case "status":
      return renderStatus(result as VmStatus);
    case "history":
      return renderHistory(result as HistoryEntry[]);
    case "migrate": {
      const applied = (result as { applied: string[] }).applied;
      return applied.length ? `Applied migrations: ${applied.join(", ")}.` : "The store is up to date.";
    }
    default:
      return JSON.stringify(result, null, 2);
  }
}

function renderList(vms: VmStatus[]): string {
  if (vms.length === 0) return "No VMs. Define one with `maqet add config.yaml`.";
  return renderTable(
    ["NAME", "STATE", "PID", "DETAIL", "MEMORY", "CPU", "ID"],
    vms.map((v) => [
      v.name,
      v.state,
      v.pid?.toString() ?? "-",
      v.detail ?? "-",
      v.memory ?? "-",
      v.cpu?.toString() ?? "-",
      v.id,
    ]),
  );
}

function renderStatus(s: VmStatus): string {
  const rows: Array<[string, string]> = [
    ["name", s.name],
    ["id", s.id],
    ["state", s.detail ? `${s.state} (${s.detail})` : s.state],
    ["pid", s.pid?.toString() ?? "-"],
    ["qmp socket", s.qmpSocket ?? "-"],
    ["qemu", s.qemuVersion ?? "-"],
    ["memory", s.memory ?? "-"],
    ["cpu", s.cpu?.toString() ?? "-"],
    ["accel", s.accel],
    ["disks", s.disks.length ? s.disks.map((d) => `${d.name}=${d.file} (${d.format})`).join(", ") : "-"],
    ["defined", s.definedAt],
    ["started", s.startedAt ?? "-"],
  ];
  if (s.lastStop) {
    const stop = s.lastStop;
    const extra = [
      stop.method && `method ${stop.method}`,
      stop.reason && `reason ${stop.reason}`,
      stop.guest !== null && `guest ${stop.guest}`,
    ]
      .filter(Boolean)
      .join(", ");
    rows.push(["last stop", `${stop.detail}${extra ? ` (${extra})` : ""} at ${stop.at}`]);
  }
  if (s.lastError) rows.push(["last error", `${s.lastError.message} at ${s.lastError.at}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join("\n");
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

function summarize(e: HistoryEntry): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  switch (e.type) {
    case "vm.defined":
      return `name=${d.name}`;
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
    case "qmp.command-executed":
      return `${d.command} ${d.outcome}${d.errorClass ? ` (${d.errorClass})` : ""} in ${d.durationMs}ms`;
    case "disk.created":
      return `${d.drive} ${d.format} ${d.size ?? ""} ${d.file}`.trim();
    default:
      return "";
  }
}
