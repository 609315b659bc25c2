/**
 * What `status`, `ls` and the library report for a VM: a flat, JSON-stable shape derived from
 * the VM's view. Field names are a contract: add to them, never rename.
 *
 * @example
 * ```ts
 * const s = toVmStatus(view); // { name: "web", id: "…", state: "running", pid: 4242, … }
 * ```
 */
import { statusDetail, type VmView } from "../actors/vm-view.ts";
import { serialLogPath } from "./serial-log.ts";

export interface VmStatus {
  name: string;
  id: string;
  /** stopped | starting | running | paused | stopping | removed */
  state: string;
  pid: number | null;
  /** Why it last stopped (shutdown, destroyed, crashed, failed, exited-unsupervised), or why it is paused. */
  detail: string | null;
  qmpSocket: string | null;
  runtimeDir: string | null;
  /** The serial console log of the current or last run (`maqet console`); null before the first run or when the config sets its own -serial. */
  serialLog: string | null;
  qemuVersion: string | null;
  memory: string | null;
  cpu: number | null;
  /** The config's choice: auto, kvm or tcg. */
  accel: string;
  /** What the current (or last) run really used: kvm or tcg; null before the first start. */
  accelInUse: string | null;
  disks: Array<{ name: string; file: string; format: string }>;
  lastStop: { detail: string; method: string | null; guest: boolean | null; reason: string | null; at: string } | null;
  lastError: { reason: string; message: string; at: string } | null;
  definedAt: string;
  startedAt: string | null;
  updatedAt: string;
  /** Stream version of the last event: grows with every recorded fact. */
  version: number;
  /**
   * Set when a dangerous QMP command ran (with `--allow-dangerous`) during the current or last
   * run: QEMU may be in a state maqet does not model. Cleared by the next start.
   */
  tainted: { reason: string; command: string; at: string } | null;
  /** The host that owns the VM (a cluster, docs/cluster.md); null on a single host. */
  host: string | null;
  /** A live migration in flight (or left open by a process that died): its id, phase and hosts; null otherwise. */
  migration: { id: string; phase: string; fromHost: string; toHost: string } | null;
}

export function toVmStatus(view: VmView): VmStatus {
  const alive = view.status === "running" || view.status === "paused" || view.status === "stopping";
  return {
    name: view.name,
    id: view.vmId,
    state: view.status,
    pid: alive ? (view.pid ?? null) : null,
    detail: statusDetail(view),
    qmpSocket: alive ? (view.qmpSocket ?? null) : null,
    runtimeDir: alive ? (view.runtimeDir ?? null) : null,
    serialLog: serialLogPath(view) ?? null,
    qemuVersion: view.qemuVersion ?? null,
    memory: view.config.memory ?? null,
    cpu: view.config.cpu ?? null,
    accel: view.config.accel,
    accelInUse: view.accelUsed ?? null,
    disks: view.config.storage.map((d) => ({ name: d.name, file: d.file, format: d.type })),
    lastStop: view.lastStop
      ? {
          detail: view.lastStop.detail,
          method: view.lastStop.method ?? null,
          guest: view.lastStop.guest ?? null,
          reason: view.lastStop.reason ?? null,
          at: view.lastStop.at.toISOString(),
        }
      : null,
    lastError: view.lastError ? { ...view.lastError, at: view.lastError.at.toISOString() } : null,
    definedAt: view.definedAt.toISOString(),
    startedAt: alive && view.startedAt ? view.startedAt.toISOString() : null,
    updatedAt: view.updatedAt.toISOString(),
    version: view.version,
    tainted: view.taint ? { ...view.taint, at: view.taint.at.toISOString() } : null,
    host: view.host ?? null,
    migration: view.migration
      ? {
          id: view.migration.id,
          phase: view.migration.phase,
          fromHost: view.migration.fromHost,
          toHost: view.migration.toHost,
        }
      : null,
  };
}
