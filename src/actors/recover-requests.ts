/**
 * Every request gets its outcome. A process that dies between `snapshot.<op>-requested` and the
 * outcome leaves the request open; the next process to drive the VM (right after reconciling it,
 * before any other operation) finds out what really happened and records it, as libvirt
 * recovers a domain's interrupted job when its daemon restarts (`qemuProcessRecoverJob`):
 *
 * - live (QEMU still runs): QEMU's job list. maqet dismisses its jobs only after recording their
 *   outcome, so a concluded `maqet-snapshot-*` job says how it ended (a running one is waited
 *   for); with no job, the job never started. `query-block` then gives the drives' snapshots;
 * - offline (or QEMU gone): the images, through qemu-img, once any qemu-img the dead process left
 *   running on them has finished (found in /proc by the image's path).
 *
 * The outcome: `snapshot.<op>d` with `recovered: true` when it happened (an offline load, which
 * leaves no trace, is finished: each drive is reverted again; a delete found half done is
 * finished too), else `snapshot.<op>-failed` with `reason: "interrupted"`. Either carries `after`,
 * the drives as found, so the snapshot catalogue matches the disks.
 *
 * @example
 * ```ts
 * await vm.exclusive((access) => recoverOpenRequests(access, deps));
 * ```
 */
import type { DiskDevice } from "../config/vm-config.ts";
import type { NewEvent } from "../events/envelope.ts";
import type { DriveSnapshots } from "../events/snapshot-events.ts";
import { vmEvent } from "../events/vm-events.ts";
import { DEFAULT_JOB_TIMEOUT_MS, dismissQmpJob, type QmpJobInfo, queryQmpJobs } from "./qmp-job.ts";
import { readDrives, type SnapshotDeps } from "./snapshot-operations.ts";
import type { VmAccess } from "./vm-actor.ts";
import type { OpenSnapshotRequest } from "./vm-view.ts";

export interface RecoveryOptions {
  /** How long to wait for a snapshot job still running in QEMU (default: a job's own limit, 300 s). */
  jobWaitMs?: number;
  /** How long to wait for a qemu-img left running by the dead process (default 300 s). */
  toolWaitMs?: number;
}

/** The job id prefix of maqet's snapshot jobs (`maqet-snapshot-save-1a2b3c4d`). */
const JOB_PREFIX = "maqet-snapshot-";
/** A snapshot's qemu-img date has whole seconds, and the request's time comes from the store. */
const CLOCK_SLACK_MS = 5000;

/**
 * Records the true outcome of a snapshot request the VM's stream leaves open, and dismisses
 * maqet's concluded jobs nobody is waiting for. Does nothing when no request is open.
 *
 * @example
 * ```ts
 * if (access.view.openSnapshot) await recoverOpenRequests(access, deps);
 * ```
 */
export async function recoverOpenRequests(
  access: VmAccess,
  deps: SnapshotDeps,
  options: RecoveryOptions = {},
): Promise<void> {
  const open = access.view.openSnapshot;
  const jobs = access.session ? await settledJobs(access, deps, options).catch(() => []) : [];
  if (open !== undefined) await access.record([await outcomeOf(access, deps, open, jobs, options)]);
  // Concluded jobs whose outcome is now recorded (or was, by a process killed before dismissing).
  for (const job of jobs) if (job.status === "concluded") await dismissQmpJob(access.session!, job.id);
}

async function outcomeOf(
  access: VmAccess,
  deps: SnapshotDeps,
  open: OpenSnapshotRequest,
  jobs: QmpJobInfo[],
  options: RecoveryOptions,
): Promise<NewEvent> {
  const disks = access.view.config.storage.filter((d) => open.drives.includes(d.name));
  const base = { tag: open.tag, drives: open.drives, live: open.live };
  const method = open.live ? ("qmp-job" as const) : ("qemu-img" as const);
  const fail = (message: string, after?: DriveSnapshots[]) =>
    failed(open, {
      ...base,
      code: "SNAPSHOT_FAILED",
      message,
      durationMs: 0,
      reason: "interrupted",
      recovered: true,
      ...(after ? { after } : {}),
    });
  const done = (after: DriveSnapshots[]) => completed(open, { ...base, method, durationMs: 0, recovered: true, after });
  try {
    const failedJob = jobs.find((j) => j.error !== undefined);
    if (failedJob !== undefined) {
      const after = await readDrives(access, deps, disks).catch(() => undefined);
      return failed(open, {
        ...base,
        code: "SNAPSHOT_FAILED",
        message: `QEMU's ${failedJob.type ?? "snapshot"} job failed: ${failedJob.error}.`,
        durationMs: 0,
        recovered: true,
        ...(after ? { after } : {}),
      });
    }
    if (!access.running) await waitForTools(access, disks, options);
    let after = await readDrives(access, deps, disks);
    const having = after.filter((d) => d.snapshots.some((s) => s.name === open.tag));
    const fresh = after.filter((d) =>
      d.snapshots.some((s) => s.name === open.tag && s.createdAt >= open.at.getTime() - CLOCK_SLACK_MS),
    );
    const interrupted = "The process that requested it died before it completed";
    if (open.operation === "create") {
      if (fresh.length === disks.length) return done(after);
      const partly =
        fresh.length > 0
          ? ` It exists on ${names(fresh)} only: delete it there with \`maqet snapshot delete ${access.view.name} ${open.tag}\`, or create it again.`
          : "";
      return fail(`${interrupted}; snapshot '${open.tag}' was not created.${partly}`, after);
    }
    if (open.operation === "delete") {
      if (having.length === 0) return done(after);
      if (having.length < disks.length && !access.running) {
        // Half done: finish it (what was deleted cannot come back).
        for (const d of disks.filter((x) => having.some((h) => h.drive === x.name))) {
          await deps.tool.snapshotDelete(d.file, open.tag);
        }
        return done(await readDrives(access, deps, disks));
      }
      return fail(`${interrupted}; snapshot '${open.tag}' was not deleted.`, after);
    }
    // load
    if (open.live || access.running) {
      // A concluded job said so above; with no job, the load never started in QEMU.
      if (jobs.some((j) => j.type === "snapshot-load" && j.status === "concluded")) return done(after);
      return fail(`${interrupted}; the VM was not reverted to snapshot '${open.tag}'.`, after);
    }
    if (having.length < disks.length) {
      return fail(
        `${interrupted}, and snapshot '${open.tag}' is missing on ${names(after.filter((d) => !having.includes(d)))}.`,
        after,
      );
    }
    // An offline revert leaves no trace to read: finish it, so the drives are known to be at the snapshot.
    for (const d of disks) await deps.tool.snapshotApply(d.file, open.tag);
    after = await readDrives(access, deps, disks);
    return done(after);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return fail(
      `The process that requested it died, and what happened could not be read (${reason}); \`maqet snapshot list ${access.view.name}\` reads the drives again.`,
    );
  }
}

/** maqet's snapshot jobs in QEMU, once none is still running (waits up to `jobWaitMs`). */
async function settledJobs(access: VmAccess, deps: SnapshotDeps, options: RecoveryOptions): Promise<QmpJobInfo[]> {
  const deadline = deps.clock.now() + (options.jobWaitMs ?? DEFAULT_JOB_TIMEOUT_MS);
  for (;;) {
    const jobs = (await queryQmpJobs(access.session!)).filter((j) => j.id.startsWith(JOB_PREFIX));
    if (jobs.every((j) => j.status === "concluded" || j.status === "null") || deps.clock.now() >= deadline) return jobs;
    await deps.clock.sleep(100);
  }
}

/** Waits for any qemu-img (or other process) a dead driver left working on these images. */
async function waitForTools(access: VmAccess, disks: readonly DiskDevice[], options: RecoveryOptions): Promise<void> {
  const { processes } = access.ports;
  for (const disk of disks) {
    for (const pid of processes.findProcesses(disk.file)) {
      await processes.waitGone(pid, disk.file, options.toolWaitMs ?? 300_000);
    }
  }
}

function names(drives: readonly DriveSnapshots[]): string {
  return drives.map((d) => `drive '${d.drive}'`).join(", ");
}

type Done = Parameters<typeof vmEvent<"snapshot.loaded">>[1];
type Failed = Parameters<typeof vmEvent<"snapshot.load-failed">>[1];

function completed(open: OpenSnapshotRequest, data: Done): NewEvent {
  if (open.operation === "create") return vmEvent("snapshot.created", { ...data, replaced: open.overwrite });
  return vmEvent(open.operation === "load" ? "snapshot.loaded" : "snapshot.deleted", data);
}

function failed(open: OpenSnapshotRequest, data: Failed): NewEvent {
  const type = {
    create: "snapshot.create-failed",
    load: "snapshot.load-failed",
    delete: "snapshot.delete-failed",
  } as const;
  return vmEvent(type[open.operation], data);
}
