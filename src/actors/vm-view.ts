/**
 * A VM's current state, folded from its event stream. The actor rehydrates from it; `ls` and
 * `status` render it. Pure: no effects, no clock.
 *
 * @example
 * ```ts
 * const view = foldVmEvents(await store.readStream("vm-" + id));
 * console.log(view?.status, view?.pid);
 * ```
 */
import type { PortForward, VmConfig } from "../config/vm-config.ts";
import type { StoredEvent } from "../events/envelope.ts";
import type { MigrationTarget } from "../events/migration-events.ts";
import type { StoppedDetail } from "../events/vm-events.ts";
import { asVmEvent } from "../events/vm-events.ts";
import { pausedDetailOf } from "./paused-detail.ts";

export type VmStatus = "stopped" | "starting" | "running" | "paused" | "stopping" | "removed";

export interface VmView {
  vmId: string;
  name: string;
  streamId: string;
  config: VmConfig;
  configPath?: string;
  status: VmStatus;
  /** Stream version of the last event folded in. */
  version: number;
  pid?: number;
  qmpSocket?: string;
  runtimeDir?: string;
  pidFile?: string;
  qemuVersion?: string;
  /** `ports:` as the current (or last) run forwards them, host ports resolved (`vm.started`). */
  forwards?: PortForward[];
  /** The accelerator QEMU runs (or last ran) with: `kvm` or `tcg` (config `auto` resolved). */
  accelUsed?: string;
  /** Why it last stopped, and how. */
  lastStop?: { detail: StoppedDetail; method?: string; guest?: boolean; reason?: string; at: Date };
  lastError?: { reason: string; message: string; at: Date };
  pausedDetail?: string;
  /** Set when a dangerous QMP command ran during the current (or last) run; cleared by the next start. */
  taint?: { reason: string; command: string; at: Date };
  /**
   * A snapshot operation requested and not yet given its outcome: in flight, or left open by a
   * process that died (the next driver finds out what happened and records it).
   */
  openSnapshot?: OpenSnapshotRequest;
  definedAt: Date;
  startedAt?: Date;
  updatedAt: Date;
  /** The host that owns the VM in a cluster (`vm.placed`); absent on a single host. */
  host?: string;
  /** The owner epoch of the last `vm.placed` (the fencing token); absent before any placement. */
  epoch?: number;
  /**
   * A live migration requested and not yet ended (`vm.migrated`, `-failed`, `-cancelled`): in
   * flight, or left open by a process that died (the next driver finishes or rolls it back).
   */
  migration?: OpenMigration;
  /**
   * A migration moved the VM while the guest ran, but its destination was not resumed (its agent
   * went away before the `cont`): the owner's next load resumes it. The migration's id.
   */
  resumeAfterMigration?: string;
}

/** An open live migration: where it is, and the destination QEMU once it was prepared. */
export interface OpenMigration {
  id: string;
  fromHost: string;
  toHost: string;
  phase: "requested" | "prepared" | "transfer" | "switchover" | "moved";
  target?: MigrationTarget;
  /** The source QEMU (before the commit point it is the VM's). */
  sourcePid?: number;
  sourceQmpSocket?: string;
  timeoutMs: number;
  /** Set by `vm.owner-changed`: whether the destination is to be resumed (the guest ran on the source). */
  resume?: boolean;
  at: Date;
}

/** An open `snapshot.<op>-requested`: what was asked, and when. */
export interface OpenSnapshotRequest {
  operation: "create" | "load" | "delete";
  tag: string;
  drives: string[];
  live: boolean;
  overwrite: boolean;
  /** Its stream version and time. */
  version: number;
  at: Date;
}

/** Folds one stream's events (in version order) into a view; undefined for an empty stream. */
export function foldVmEvents(events: readonly StoredEvent[]): VmView | undefined {
  let view: VmView | undefined;
  for (const raw of events) view = applyVmEvent(view, raw);
  return view;
}

/**
 * Applies one event to a view; unknown event types (newer writers) only bump the version. Reads
 * neither the event's id nor its metadata (a projection rebuild does not read them).
 */
export function applyVmEvent(view: VmView | undefined, raw: Omit<StoredEvent, "id" | "metadata">): VmView | undefined {
  const event = asVmEvent(raw);
  if (event === undefined) return view === undefined ? view : { ...view, version: raw.streamVersion };
  if (event.type === "vm.defined") {
    return {
      vmId: event.data.vmId,
      name: event.data.name,
      streamId: event.streamId,
      config: event.data.config,
      configPath: event.data.configPath,
      status: "stopped",
      version: event.streamVersion,
      definedAt: event.recordedAt,
      updatedAt: event.recordedAt,
    };
  }
  if (view === undefined) return undefined;
  const next: VmView = { ...view, version: event.streamVersion, updatedAt: event.recordedAt };
  switch (event.type) {
    case "vm.start-requested":
      // A new run: the previous run's ending no longer describes the VM.
      next.status = "starting";
      next.lastError = undefined;
      next.lastStop = undefined;
      next.runtimeDir = event.data.runtimeDir ?? next.runtimeDir;
      next.taint = undefined;
      next.forwards = undefined;
      break;
    case "vm.started":
      next.resumeAfterMigration = undefined;
      next.forwards = event.data.forwards;
      next.status = "running";
      next.pid = event.data.pid;
      next.qmpSocket = event.data.qmpSocket;
      next.runtimeDir = event.data.runtimeDir;
      next.pidFile = event.data.pidFile;
      next.qemuVersion = event.data.qemuVersion;
      next.accelUsed = event.data.accel;
      next.startedAt = event.recordedAt;
      next.pausedDetail = undefined;
      break;
    case "vm.start-failed":
      next.status = "stopped";
      next.lastError = { reason: event.data.reason, message: event.data.message, at: event.recordedAt };
      next.pid = undefined;
      break;
    case "vm.stop-requested":
      next.status = "stopping";
      break;
    case "vm.stopped":
      next.resumeAfterMigration = undefined;
      next.status = "stopped";
      next.lastStop = {
        detail: event.data.detail,
        method: event.data.method,
        guest: event.data.guest,
        reason: event.data.reason,
        at: event.recordedAt,
      };
      next.pid = undefined;
      next.pausedDetail = undefined;
      break;
    case "vm.reattached":
      next.status = event.data.running ? "running" : "paused";
      next.pid = event.data.pid;
      next.pausedDetail = event.data.running ? undefined : pausedDetailOf(event.data.status);
      break;
    case "vm.paused":
      if (next.status === "running") next.status = "paused";
      next.pausedDetail = event.data.detail;
      break;
    case "vm.resumed":
      next.resumeAfterMigration = undefined;
      if (next.status === "paused") next.status = "running";
      next.pausedDetail = undefined;
      break;
    case "vm.removed":
      next.status = "removed";
      break;
    case "vm.reconfigured":
      next.config = event.data.after;
      if (event.data.configPaths?.length) next.configPath = event.data.configPaths[0];
      break;
    case "vm.wait-failed":
    case "vm.reset":
    case "vm.guest-panicked":
    case "vm.stop-step":
      break;
    case "vm.tainted":
      next.taint = { reason: event.data.reason, command: event.data.command, at: event.recordedAt };
      break;
    case "vm.placed":
      next.host = event.data.host;
      next.epoch = event.data.epoch;
      break;
    case "vm.recovering":
      break;
    case "vm.migration-requested":
      next.migration = {
        id: event.data.migrationId,
        fromHost: event.data.fromHost,
        toHost: event.data.toHost,
        phase: "requested",
        sourcePid: next.pid,
        sourceQmpSocket: next.qmpSocket,
        timeoutMs: event.data.timeoutMs,
        at: event.recordedAt,
      };
      break;
    case "vm.migration-target-prepared":
      if (next.migration?.id === event.data.migrationId) {
        const { migrationId: _id, uri: _uri, ...target } = event.data;
        next.migration = { ...next.migration, phase: "prepared", target };
      }
      break;
    case "vm.migration-started":
      if (next.migration?.id === event.data.migrationId) next.migration = { ...next.migration, phase: "transfer" };
      break;
    case "vm.migration-switchover":
      if (next.migration?.id === event.data.migrationId) next.migration = { ...next.migration, phase: "switchover" };
      break;
    case "vm.migration-progress":
      break;
    case "vm.owner-changed": {
      // The commit point: the destination QEMU is the VM from here on.
      const target = event.data.target;
      next.pid = target.pid;
      next.qmpSocket = target.qmpSocket;
      next.runtimeDir = target.runtimeDir;
      next.pidFile = target.pidFile;
      next.accelUsed = target.accel;
      if (target.qemuVersion) next.qemuVersion = target.qemuVersion;
      if (next.host !== undefined || event.data.epoch > 0) next.host = event.data.toHost;
      if (event.data.epoch > 0) next.epoch = event.data.epoch;
      if (next.migration?.id === event.data.migrationId)
        next.migration = { ...next.migration, phase: "moved", target, resume: event.data.resume };
      break;
    }
    case "vm.migrated":
      if (next.migration?.id === event.data.migrationId) {
        if (event.data.resumed === false && next.migration.resume === true)
          next.resumeAfterMigration = event.data.migrationId;
        next.migration = undefined;
      }
      break;
    case "vm.migration-failed":
    case "vm.migration-cancelled":
      if (next.migration?.id === event.data.migrationId) next.migration = undefined;
      break;
    case "disk.created":
    case "qmp.command-executed":
    case "snapshot.observed":
    case "vm.console-attached":
    case "vm.console-detached":
      break;
    case "snapshot.create-requested":
    case "snapshot.load-requested":
    case "snapshot.delete-requested":
      next.openSnapshot = {
        operation:
          event.type === "snapshot.create-requested"
            ? "create"
            : event.type === "snapshot.load-requested"
              ? "load"
              : "delete",
        tag: event.data.tag,
        drives: event.data.drives,
        live: event.data.live,
        overwrite: event.type === "snapshot.create-requested" && event.data.overwrite,
        version: event.streamVersion,
        at: event.recordedAt,
      };
      break;
    case "snapshot.created":
    case "snapshot.create-failed":
    case "snapshot.loaded":
    case "snapshot.load-failed":
    case "snapshot.deleted":
    case "snapshot.delete-failed":
      next.openSnapshot = undefined;
      break;
  }
  return next;
}

/**
 * The one-word detail `ls` and `status` show: why it is paused, or why it last stopped (`failed`
 * after a failed start); null otherwise. The VM list projection stores the same value.
 */
export function statusDetail(view: VmView): string | null {
  if (view.status === "paused") return view.pausedDetail ?? null;
  if (view.status === "stopped") return view.lastStop?.detail ?? (view.lastError ? "failed" : null);
  return null;
}

/** True while the stream says a QEMU process may exist for this VM. */
export function mayHaveProcess(view: VmView): boolean {
  return (
    view.status === "running" || view.status === "paused" || view.status === "stopping" || view.status === "starting"
  );
}
