/**
 * Text output of the lifecycle commands (add, start, stop, rm, ls, status).
 *
 * @example
 * ```ts
 * LIFECYCLE_RENDERERS.ls(await maqet.list());
 * ```
 */
import type { VmInspection } from "../../api/ops/inspect-ops.ts";
import type { VmStatus } from "../../api/vm-status.ts";
import { NO_PAINT, type Paint, paintState } from "../color.ts";
import { renderTable } from "../table.ts";
import type { Renderer } from "./renderer.ts";

export const LIFECYCLE_RENDERERS: Record<string, Renderer> = {
  add: (result) => {
    const s = result as VmStatus;
    return `Added VM '${s.name}' (id ${s.id}). Start it with \`maqet start ${s.name}\`.`;
  },
  start: (result) => {
    if (isInspection(result)) return renderInspection(result); // --dry-run
    const s = result as VmStatus;
    return `Started VM '${s.name}' (pid ${s.pid}, QEMU ${s.qemuVersion ?? "?"}).`;
  },
  stop: (result) => {
    const s = result as VmStatus & { alreadyStopped?: boolean; spooled?: { path: string } };
    if (s.alreadyStopped) return `VM '${s.name}' is already stopped.`;
    if (s.spooled) {
      return `Stopped VM '${s.name}' (destroyed via sigkill). The store is unreachable: the stop is kept in ${s.spooled.path} and will be recorded when the store is back, by the next maqet command.`;
    }
    const how = s.lastStop ? `${s.lastStop.detail}${s.lastStop.method ? ` via ${s.lastStop.method}` : ""}` : "stopped";
    return `Stopped VM '${s.name}' (${how}).`;
  },
  pause: (result) => {
    const s = result as VmStatus & { changed: boolean };
    return s.changed ? `Paused VM '${s.name}'.` : `VM '${s.name}' is already paused.`;
  },
  resume: (result) => {
    const s = result as VmStatus & { changed: boolean };
    return s.changed ? `Resumed VM '${s.name}'.` : `VM '${s.name}' is already running.`;
  },
  reset: (result) => `Reset VM '${(result as VmStatus).name}'.`,
  rm: (result) => `Removed VM '${(result as { name: string }).name}'. Its history stays in the store.`,
  ls: (result, paint) => renderList(result as VmStatus[], paint),
  status: (result, paint) => renderStatus(result as VmStatus, paint),
  inspect: (result) => renderInspection(result as VmInspection),
};

function isInspection(result: unknown): result is VmInspection {
  return typeof result === "object" && result !== null && "command" in result && "argv" in result;
}

/** The shell-quoted command line, after `#` notes a copy-paste into a shell ignores. */
function renderInspection(i: VmInspection): string {
  const what = i.source === "running" ? `running (${i.state})` : "what a start would run now";
  const accel = `accelerator ${i.accel.resolved}${i.accel.chosenBy ? ` (chosen by ${i.accel.chosenBy})` : ` (accel: ${i.accel.config})`}`;
  const notes = [`# VM '${i.name}': ${what}; ${accel}`, ...i.warnings.map((w) => `# warning: ${w}`)];
  return [...notes, i.command].join("\n");
}

function renderList(vms: VmStatus[], paint: Paint = NO_PAINT): string {
  if (vms.length === 0) return "No VMs. Define one with `maqet add config.yaml`.";
  return renderTable(
    ["NAME", "STATE", "PID", "DETAIL", "MEMORY", "CPU", "ID"],
    vms.map((v) => [
      v.name,
      v.state,
      v.pid?.toString() ?? "-",
      [v.detail, v.tainted && "tainted"].filter(Boolean).join(", ") || "-",
      v.memory ?? "-",
      v.cpu?.toString() ?? "-",
      v.id,
    ]),
    (column, cell, padded) => (column === 1 ? paintState(paint, cell) + padded.slice(cell.length) : padded),
  );
}

function renderStatus(s: VmStatus, paint: Paint = NO_PAINT): string {
  const rows: Array<[string, string]> = [
    ["name", s.name],
    ["id", s.id],
    ["state", s.detail ? `${paintState(paint, s.state)} (${s.detail})` : paintState(paint, s.state)],
    ["pid", s.pid?.toString() ?? "-"],
    ["qmp socket", s.qmpSocket ?? "-"],
    ["serial log", s.serialLog ?? "-"],
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
  if (s.lastError) rows.push(["last error", `${paint.red(s.lastError.message)} at ${s.lastError.at}`]);
  if (s.tainted) rows.push(["tainted", `${s.tainted.reason} (${s.tainted.command} at ${s.tainted.at})`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join("\n");
}
