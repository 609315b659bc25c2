/**
 * The recorded run every snapshot operation (create, load, delete) shares: the checks that need
 * no image, then `snapshot.<op>-requested`, the operation's body (offline through qemu-img, live
 * through QMP jobs), and `snapshot.<op>d` with the time it took and the drives' snapshots
 * afterwards, or `snapshot.<op>-failed` with the error. The QMP jobs a live body started are
 * dismissed only once their outcome is in the store, so QEMU's job list tells a later process how
 * they ended if this one dies in between.
 *
 * @example
 * ```ts
 * return runOperation("load", access, deps, request, {}, async (disks, live, deps) => ({}));
 * ```
 */
import type { DiskDevice } from "../config/vm-config.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import type { SnapshotMethod } from "../events/snapshot-events.ts";
import { vmEvent } from "../events/vm-events.ts";
import type { CrashHook } from "../util/crash-points.ts";
import type { DiskImageTool, ImageFiles } from "./disk-image-port.ts";
import type { Clock } from "./ports.ts";
import { dismissQmpJob } from "./qmp-job.ts";
import { assertImagesExist, assertValidTag, snapshotDrives } from "./snapshot-drives.ts";
import { readDrives } from "./snapshot-listing.ts";
import type { VmAccess } from "./vm-actor.ts";

export interface SnapshotDeps {
  tool: DiskImageTool;
  files: ImageFiles;
  clock: Clock;
  /** Test-only crash points (docs/crash-points.md); default: the VM's ports' hook. */
  crash?: CrashHook;
  /**
   * Set by the operation for itself: the QMP jobs it started, dismissed only after its outcome
   * is recorded (so QEMU's job list tells a later process how they ended if this one dies).
   */
  jobs?: string[];
}

export interface SnapshotRequest {
  /** A storage name; absent: every qcow2 drive of the VM. */
  drive?: string;
  tag: string;
  signal?: AbortSignal;
  /** 0–100 while the operation runs (live: from the QMP job; offline: per drive). */
  onProgress?: (percent: number) => void;
  /** Live job time limit (default 300 s). */
  timeoutMs?: number;
}

export interface SnapshotOutcome {
  vm: string;
  operation: "create" | "load" | "delete";
  tag: string;
  drives: string[];
  live: boolean;
  method: SnapshotMethod;
  overwrite?: boolean;
  /** create --overwrite: an existing snapshot of that tag was deleted first. */
  replaced?: boolean;
  durationMs: number;
}

type OperationKind = "create" | "load" | "delete";

const FACTS = {
  create: ["snapshot.create-requested", "snapshot.created", "snapshot.create-failed"],
  load: ["snapshot.load-requested", "snapshot.loaded", "snapshot.load-failed"],
  delete: ["snapshot.delete-requested", "snapshot.deleted", "snapshot.delete-failed"],
} as const;

/**
 * Runs `body` on the operation's drives (`live` when the VM runs) between the requested and the
 * completed (or failed) facts; rethrows what the body threw once the failure is recorded.
 */
export async function runOperation(
  kind: OperationKind,
  access: VmAccess,
  given: SnapshotDeps,
  request: SnapshotRequest,
  extra: { overwrite?: boolean },
  body: (disks: DiskDevice[], live: boolean, deps: SnapshotDeps) => Promise<{ replaced?: boolean }>,
): Promise<SnapshotOutcome> {
  assertValidTag(request.tag);
  const deps: SnapshotDeps = { ...given, crash: given.crash ?? access.ports.crash, jobs: [] };
  const vm = access.view.name;
  const disks = snapshotDrives(access.view.config, vm, request.drive);
  const live = access.running;
  if (!live) await assertImagesExist(deps, vm, disks);
  const drives = disks.map((d) => d.name);
  const [requested, completed, failed] = FACTS[kind];
  const base = { tag: request.tag, drives, live };
  const t0 = deps.clock.now();
  await access.record([
    kind === "create"
      ? vmEvent("snapshot.create-requested", { ...base, overwrite: extra.overwrite === true })
      : vmEvent(requested as "snapshot.load-requested", base),
  ]);
  deps.crash?.("snapshot.requested");
  let result: { replaced?: boolean };
  try {
    result = await body(disks, live, deps);
    deps.crash?.("snapshot.applied");
  } catch (error) {
    const durationMs = deps.clock.now() - t0;
    const code = isMaqetError(error) ? error.code : "INTERNAL";
    const message = error instanceof Error ? error.message : String(error);
    // The jobs are dismissed only once their outcome is in the store.
    await access.record([vmEvent(failed as "snapshot.create-failed", { ...base, code, message, durationMs })]).then(
      () => dismissJobs(access, deps),
      () => undefined,
    );
    throw error;
  }
  const durationMs = deps.clock.now() - t0;
  // What the drives hold now, so the catalogue stays current without another read later.
  const after = await readDrives(access, deps, disks, request.signal).catch(() => undefined);
  const method: SnapshotMethod = live ? "qmp-job" : "qemu-img";
  const done = { ...base, method, durationMs, ...(after ? { after } : {}) };
  await access.record([
    kind === "create"
      ? vmEvent("snapshot.created", { ...done, replaced: result.replaced === true })
      : vmEvent(completed as "snapshot.loaded", done),
  ]);
  await dismissJobs(access, deps);
  return {
    vm,
    operation: kind,
    tag: request.tag,
    drives,
    live,
    method,
    ...(kind === "create" ? { overwrite: extra.overwrite === true, replaced: result.replaced === true } : {}),
    durationMs,
  };
}

async function dismissJobs(access: VmAccess, deps: SnapshotDeps): Promise<void> {
  if (access.session === undefined) return;
  for (const id of deps.jobs ?? []) await dismissQmpJob(access.session, id);
}

/**
 * The options of a live body's QMP job: the request's signal and time limit, its progress mapped
 * onto `from`–`to` of the whole operation, and the job kept (its id in `deps.jobs`) for
 * {@link runOperation} to dismiss once the outcome is recorded.
 *
 * @example
 * ```ts
 * await runQmpJob(session, "snapshot-delete", { tag, devices }, jobOptions(deps, request, 0, 20));
 * ```
 */
export function jobOptions(deps: SnapshotDeps, request: SnapshotRequest, from: number, to: number) {
  return {
    clock: deps.clock,
    signal: request.signal,
    timeoutMs: request.timeoutMs,
    onProgress: (p: number) => request.onProgress?.(Math.floor(from + ((to - from) * p) / 100)),
    keep: deps.jobs !== undefined,
    onStarted: (id: string) => {
      deps.jobs?.push(id);
      deps.crash?.("snapshot.job-started");
    },
  };
}
