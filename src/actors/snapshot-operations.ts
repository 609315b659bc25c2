/**
 * Internal snapshots of a VM's qcow2 drives: create, load, delete, list. Each runs inside
 * `VmActor.exclusive`, so it never races a start or a stop:
 *
 * - VM stopped → offline, through qemu-img (`snapshot -c/-a/-d`), qcow2 only;
 * - VM running → live, through the QMP jobs `snapshot-save` / `snapshot-load` / `snapshot-delete`
 *   (QEMU ≥ 6) on the drives' block nodes, found with `query-block` (drives are attached with
 *   `-drive id=<name>`, so their nodes carry QEMU's generated names); a live snapshot saves the
 *   VM's RAM and device state into the first drive too.
 *
 * Each operation records `snapshot.<op>-requested`, then `snapshot.<op>d` with the time it took
 * and the drives' snapshots afterwards, or `snapshot.<op>-failed` with the error. Checks that need
 * no image (a valid tag, a known drive, qcow2) fail before anything is recorded.
 *
 * @example
 * ```ts
 * await vm.exclusive((access) => createSnapshot(access, deps, { tag: "before-upgrade" }));
 * ```
 */
import type { DiskDevice } from "../config/vm-config.ts";
import { isValidVmName } from "../config/vm-config.ts";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import type { DriveSnapshots, SnapshotMethod, SnapshotRecord } from "../events/snapshot-events.ts";
import { vmEvent } from "../events/vm-events.ts";
import type { CrashHook } from "../util/crash-points.ts";
import { type DiskImageTool, type ImageFiles, parseImageSnapshot } from "./disk-image-port.ts";
import type { Clock, QmpSession } from "./ports.ts";
import { dismissQmpJob, runQmpJob } from "./qmp-job.ts";
import { isEntryFresh, type SnapshotCatalogue } from "./snapshot-catalogue.ts";
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

export interface SnapshotListing {
  vm: string;
  running: boolean;
  /** Where the answer came from: the catalogue (nothing read), the images (qemu-img) or QEMU. */
  source: "catalogue" | "qemu-img" | "qmp";
  drives: DriveSnapshots[];
}

/** Snapshot tags: the VM-name rule (no leading `-`, no `/`, no `..`), and not only digits (qemu-img reads those as ids). */
export function assertValidTag(tag: string): void {
  if (!isValidVmName(tag) || /^\d+$/.test(tag)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid snapshot name ${JSON.stringify(tag)}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter, digit or '_', not only digits, without '..'.`,
      { details: { tag } },
    );
  }
}

/**
 * The drives an operation covers: the named one (which must be qcow2), or every qcow2 drive.
 *
 * @example
 * ```ts
 * snapshotDrives(view.config, view.name, "hdd").map((d) => d.file);
 * ```
 */
export function snapshotDrives(
  config: { storage: readonly DiskDevice[]; shares?: readonly { name: string }[] },
  vm: string,
  drive: string | undefined,
): DiskDevice[] {
  const describe = () =>
    [
      ...config.storage.map((d) => `${d.name} (${d.type})`),
      ...(config.shares ?? []).map((s) => `${s.name} (virtfs)`),
    ].join(", ") || "none";
  if (drive !== undefined) {
    const disk = config.storage.find((d) => d.name === drive);
    if (disk === undefined) {
      if (config.shares?.some((s) => s.name === drive)) {
        throw new MaqetError(
          "SNAPSHOT_UNSUPPORTED",
          `Cannot snapshot '${drive}' of VM '${vm}': it is a VirtFS share; snapshots need a qcow2 drive. Drives: ${describe()}.`,
          { details: { vm, drive, format: "virtfs" } },
        );
      }
      throw new MaqetError(
        "DRIVE_NOT_FOUND",
        `VM '${vm}' has no drive '${drive}'. Drives: ${describe()}. Only qcow2 drives support snapshots.`,
        { details: { vm, drive, drives: config.storage.map((d) => d.name) } },
      );
    }
    if (disk.type !== "qcow2") {
      throw new MaqetError(
        "SNAPSHOT_UNSUPPORTED",
        `Cannot snapshot drive '${drive}' of VM '${vm}': it is ${disk.type}, and snapshots need qcow2. Convert it (\`maqet disk convert ${disk.file} new.qcow2 --format qcow2\`) and point the config at the copy.`,
        { details: { vm, drive, format: disk.type } },
      );
    }
    return [disk];
  }
  const qcow2 = config.storage.filter((d) => d.type === "qcow2");
  if (qcow2.length === 0) {
    throw new MaqetError(
      "SNAPSHOT_UNSUPPORTED",
      `VM '${vm}' has no qcow2 drive to snapshot (drives: ${describe()}). Snapshots need qcow2.`,
      { details: { vm, drives: config.storage.map((d) => d.name) } },
    );
  }
  return qcow2;
}

// ---------------------------------------------------------------- operations

export function createSnapshot(
  access: VmAccess,
  deps: SnapshotDeps,
  request: SnapshotRequest & { overwrite?: boolean },
): Promise<SnapshotOutcome> {
  const overwrite = request.overwrite === true;
  return runOperation("create", access, deps, request, { overwrite }, async (disks, live, deps) => {
    if (live) {
      const session = liveSession(access);
      const nodes = await liveNodes(session, disks, access.view.name);
      const existing = nodes.filter((n) => n.snapshots.some((s) => s.name === request.tag));
      if (existing.length > 0 && !overwrite)
        throw exists(
          access.view.name,
          request.tag,
          existing.map((n) => n.disk.name),
        );
      if (existing.length > 0) {
        await runQmpJob(
          session,
          "snapshot-delete",
          { tag: request.tag, devices: existing.map((n) => n.node) },
          jobOptions(deps, request, 0, 20),
        );
      }
      await runQmpJob(
        session,
        "snapshot-save",
        { tag: request.tag, vmstate: nodes[0]!.node, devices: nodes.map((n) => n.node) },
        jobOptions(deps, request, existing.length > 0 ? 20 : 0, 100),
      );
      return { replaced: existing.length > 0 };
    }
    const before = await Promise.all(disks.map((d) => deps.tool.snapshotList(d.file, { signal: request.signal })));
    const existing = disks.filter((_, i) => before[i]!.some((s) => s.name === request.tag));
    if (existing.length > 0 && !overwrite)
      throw exists(
        access.view.name,
        request.tag,
        existing.map((d) => d.name),
      );
    let done = 0;
    for (const disk of disks) {
      if (existing.includes(disk)) await deps.tool.snapshotDelete(disk.file, request.tag, { signal: request.signal });
      await deps.tool.snapshotCreate(disk.file, request.tag, { signal: request.signal });
      request.onProgress?.(Math.floor((100 * ++done) / disks.length));
    }
    return { replaced: existing.length > 0 };
  });
}

export function loadSnapshot(access: VmAccess, deps: SnapshotDeps, request: SnapshotRequest): Promise<SnapshotOutcome> {
  return runOperation("load", access, deps, request, {}, async (disks, live, deps) => {
    if (live) {
      const session = liveSession(access);
      const nodes = await liveNodes(session, disks, access.view.name);
      const missing = nodes.filter((n) => !n.snapshots.some((s) => s.name === request.tag));
      if (missing.length > 0)
        throw notFound(
          access.view.name,
          request.tag,
          nodes.map((n) => ({ drive: n.disk.name, snapshots: n.snapshots })),
        );
      const withState = nodes.find((n) => n.snapshots.some((s) => s.name === request.tag && s.vmStateSize > 0));
      if (withState === undefined) {
        throw new MaqetError(
          "SNAPSHOT_UNSUPPORTED",
          `Snapshot '${request.tag}' of VM '${access.view.name}' holds no VM state (it was taken with the VM stopped), so a running VM cannot load it. Stop the VM (\`maqet stop ${access.view.name}\`) and load it offline.`,
          { details: { vm: access.view.name, tag: request.tag } },
        );
      }
      await runQmpJob(
        session,
        "snapshot-load",
        { tag: request.tag, vmstate: withState.node, devices: nodes.map((n) => n.node) },
        jobOptions(deps, request, 0, 100),
      );
      return {};
    }
    const lists = await Promise.all(disks.map((d) => deps.tool.snapshotList(d.file, { signal: request.signal })));
    if (lists.some((l) => !l.some((s) => s.name === request.tag))) {
      throw notFound(
        access.view.name,
        request.tag,
        disks.map((d, i) => ({ drive: d.name, snapshots: lists[i]! })),
      );
    }
    let done = 0;
    for (const disk of disks) {
      await deps.tool.snapshotApply(disk.file, request.tag, { signal: request.signal });
      request.onProgress?.(Math.floor((100 * ++done) / disks.length));
    }
    return {};
  });
}

export function deleteSnapshot(
  access: VmAccess,
  deps: SnapshotDeps,
  request: SnapshotRequest,
): Promise<SnapshotOutcome> {
  return runOperation("delete", access, deps, request, {}, async (disks, live, deps) => {
    if (live) {
      const session = liveSession(access);
      const nodes = await liveNodes(session, disks, access.view.name);
      const having = nodes.filter((n) => n.snapshots.some((s) => s.name === request.tag));
      if (having.length === 0)
        throw notFound(
          access.view.name,
          request.tag,
          nodes.map((n) => ({ drive: n.disk.name, snapshots: n.snapshots })),
        );
      await runQmpJob(
        session,
        "snapshot-delete",
        { tag: request.tag, devices: having.map((n) => n.node) },
        jobOptions(deps, request, 0, 100),
      );
      return {};
    }
    const lists = await Promise.all(disks.map((d) => deps.tool.snapshotList(d.file, { signal: request.signal })));
    const having = disks.filter((_, i) => lists[i]!.some((s) => s.name === request.tag));
    if (having.length === 0) {
      throw notFound(
        access.view.name,
        request.tag,
        disks.map((d, i) => ({ drive: d.name, snapshots: lists[i]! })),
      );
    }
    let done = 0;
    for (const disk of having) {
      await deps.tool.snapshotDelete(disk.file, request.tag, { signal: request.signal });
      request.onProgress?.(Math.floor((100 * ++done) / having.length));
    }
    return {};
  });
}

/**
 * The drives' snapshots, from the catalogue when it is still true (nothing read), else from QEMU
 * (running VM: `query-block`, no image touched) or the images (`qemu-img info`), recording what
 * was read as `snapshot.observed`.
 */
export async function refreshSnapshotListing(
  access: VmAccess,
  deps: SnapshotDeps,
  catalogue: SnapshotCatalogue,
  drive: string | undefined,
  signal?: AbortSignal,
): Promise<SnapshotListing> {
  const disks = snapshotDrives(access.view.config, access.view.name, drive);
  const cached = await fromCatalogue(deps, catalogue, disks, access.running);
  const base = { vm: access.view.name, running: access.running };
  if (cached !== undefined) return { ...base, source: "catalogue", drives: cached };
  const drives = await readDrives(access, deps, disks, signal);
  // An image that does not exist yet has nothing to remember.
  const observed = drives.filter((d) => access.running || d.stamp !== undefined);
  if (observed.length > 0) {
    await access.record([
      vmEvent("snapshot.observed", { source: access.running ? "qmp" : "qemu-img", drives: observed }),
    ]);
  }
  return { ...base, source: access.running ? "qmp" : "qemu-img", drives };
}

/**
 * The catalogue's answer when every drive's entry is still true; undefined when one must be read.
 *
 * @example
 * ```ts
 * const drives = await fromCatalogue(deps, catalogue, disks, view.status === "running");
 * ```
 */
export async function fromCatalogue(
  deps: Pick<SnapshotDeps, "files">,
  catalogue: SnapshotCatalogue,
  disks: readonly DiskDevice[],
  running: boolean,
): Promise<DriveSnapshots[] | undefined> {
  const out: DriveSnapshots[] = [];
  for (const disk of disks) {
    const entry = catalogue.drives.get(disk.name);
    const stamp = running ? undefined : await deps.files.fingerprint(disk.file);
    if (!isEntryFresh(entry, catalogue, { running, file: disk.file, stamp })) return undefined;
    out.push({ drive: entry.drive, file: entry.file, snapshots: entry.snapshots });
  }
  return out;
}

// ---------------------------------------------------------------- plumbing

type OperationKind = "create" | "load" | "delete";

const FACTS = {
  create: ["snapshot.create-requested", "snapshot.created", "snapshot.create-failed"],
  load: ["snapshot.load-requested", "snapshot.loaded", "snapshot.load-failed"],
  delete: ["snapshot.delete-requested", "snapshot.deleted", "snapshot.delete-failed"],
} as const;

async function runOperation(
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
 * What the drives hold now: from QEMU (`query-block`) when the VM runs, else from the images
 * (qemu-img, with each image's stamp).
 *
 * @example
 * ```ts
 * const drives = await readDrives(access, deps, snapshotDrives(access.view.config, access.view.name, undefined));
 * ```
 */
export async function readDrives(
  access: VmAccess,
  deps: SnapshotDeps,
  disks: readonly DiskDevice[],
  signal?: AbortSignal,
): Promise<DriveSnapshots[]> {
  if (access.running) {
    const nodes = await liveNodes(liveSession(access), disks, access.view.name);
    return nodes.map((n) => ({ drive: n.disk.name, file: n.disk.file, snapshots: n.snapshots }));
  }
  const out: DriveSnapshots[] = [];
  for (const disk of disks) {
    const stamp = await deps.files.fingerprint(disk.file);
    if (stamp === undefined) {
      out.push({ drive: disk.name, file: disk.file, snapshots: [] });
      continue;
    }
    const snapshots = await deps.tool.snapshotList(disk.file, { signal });
    // Stamped after the read: qemu-img info does not write, so this is the image as listed.
    const after = (await deps.files.fingerprint(disk.file)) ?? stamp;
    out.push({ drive: disk.name, file: disk.file, snapshots, stamp: after });
  }
  return out;
}

async function assertImagesExist(deps: SnapshotDeps, vm: string, disks: readonly DiskDevice[]): Promise<void> {
  for (const disk of disks) {
    if ((await deps.files.fingerprint(disk.file)) === undefined) {
      throw new MaqetError(
        "PATH_NOT_FOUND",
        `Drive '${disk.name}' of VM '${vm}' has no image yet (${disk.file} does not exist): it is created on the VM's first start. Start the VM once, or create it with \`maqet disk create ${disk.file} --size <size>\`.`,
        { details: { vm, drive: disk.name, file: disk.file } },
      );
    }
  }
}

interface LiveNode {
  disk: DiskDevice;
  node: string;
  snapshots: SnapshotRecord[];
}

interface QueryBlockEntry {
  device: string;
  inserted?: { "node-name"?: string; drv?: string; ro?: boolean; image?: { format?: string; snapshots?: unknown[] } };
}

/** The block node of each drive (QEMU's generated node name) and its snapshots, from `query-block`. */
async function liveNodes(session: QmpSession, disks: readonly DiskDevice[], vm: string): Promise<LiveNode[]> {
  const blocks = await session.execute<QueryBlockEntry[]>("query-block");
  return disks.map((disk) => {
    const inserted = blocks.find((b) => b.device === disk.name)?.inserted;
    const node = inserted?.["node-name"];
    if (inserted === undefined || node === undefined) {
      throw new MaqetError(
        "SNAPSHOT_FAILED",
        `Drive '${disk.name}' of VM '${vm}' is not attached in the running QEMU (query-block has no device '${disk.name}' with a medium). Restart the VM so it runs with its current config.`,
        { details: { vm, drive: disk.name, devices: blocks.map((b) => b.device) } },
      );
    }
    return { disk, node, snapshots: (inserted.image?.snapshots ?? []).map(parseImageSnapshot) };
  });
}

function liveSession(access: VmAccess): QmpSession {
  if (access.session === undefined) {
    throw new MaqetError(
      "VM_INVALID_STATE",
      `VM '${access.view.name}' is running but maqet has no QMP connection to it.`,
    );
  }
  return access.session;
}

function jobOptions(deps: SnapshotDeps, request: SnapshotRequest, from: number, to: number) {
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

function exists(vm: string, tag: string, drives: string[]): MaqetError {
  return new MaqetError(
    "SNAPSHOT_EXISTS",
    `Snapshot '${tag}' already exists on ${drives.map((d) => `drive '${d}'`).join(", ")} of VM '${vm}'. Use --overwrite to replace it, or choose another name.`,
    { details: { vm, tag, drives } },
  );
}

function notFound(
  vm: string,
  tag: string,
  lists: { drive: string; snapshots: readonly SnapshotRecord[] }[],
): MaqetError {
  const tags = [...new Set(lists.flatMap((l) => l.snapshots.map((s) => s.name)))];
  const missingOn = lists.filter((l) => !l.snapshots.some((s) => s.name === tag)).map((l) => l.drive);
  return new MaqetError(
    "SNAPSHOT_NOT_FOUND",
    `Snapshot '${tag}' not found on ${missingOn.map((d) => `drive '${d}'`).join(", ")} of VM '${vm}'. ${tags.length ? `Existing snapshots: ${tags.join(", ")}.` : "The VM has no snapshots."} List them with \`maqet snapshot list ${vm}\`.`,
    { details: { vm, tag, missingOn, existing: tags } },
  );
}
