/**
 * Snapshots of a VM's qcow2 drives: offline through qemu-img when the VM is stopped, live
 * through QMP jobs when it runs (see src/actors/snapshot-operations.ts). Mutations run as the
 * VM's one exclusive operation; `listSnapshots` answers from the snapshot catalogue (the
 * `snapshot-catalogue` projection of the VM's snapshot events, migration 0006) without taking
 * the VM's lock or reading an image when nothing changed.
 *
 * @example
 * ```ts
 * await maqet.createSnapshot("web", { tag: "before-upgrade" });
 * (await maqet.listSnapshots("web")).drives[0]?.snapshots.map((s) => s.name); // ["before-upgrade"]
 * await maqet.loadSnapshot("web", { tag: "before-upgrade" });
 * await maqet.deleteSnapshot("web", { tag: "before-upgrade" });
 * ```
 */
import { foldSnapshotCatalogue, type SnapshotCatalogue } from "../../actors/snapshot-catalogue.ts";
import { readSnapshotCatalogue, SNAPSHOT_CATALOGUE_PROJECTION } from "../../actors/snapshot-catalogue-projection.ts";
import {
  createSnapshot,
  deleteSnapshot,
  fromCatalogue,
  loadSnapshot,
  refreshSnapshotListing,
  type SnapshotDeps,
  type SnapshotListing,
  type SnapshotOutcome,
  snapshotDrives,
} from "../../actors/snapshot-operations.ts";
import { vmStreamId } from "../../events/vm-events.ts";
import { diskToolsFor } from "../disk-tools.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { withProgress } from "../progress-hub.ts";
import type { Runtime } from "../runtime.ts";

export type { SnapshotListing, SnapshotOutcome } from "../../actors/snapshot-operations.ts";

export interface SnapshotOptions {
  /** A drive (storage name); default: every qcow2 drive of the VM. */
  drive?: string;
  /** Live jobs: give up after this long (default 300 s). */
  timeoutMs?: number;
  /** 0–100 while it runs (also on `maqet.progress$`). */
  onProgress?: (percent: number) => void;
  signal?: AbortSignal;
}

export interface SnapshotOps {
  /** Takes snapshot `tag` (`overwrite`: replace an existing one of that name). */
  createSnapshot(vm: string, options: SnapshotOptions & { tag: string; overwrite?: boolean }): Promise<SnapshotOutcome>;
  /** Reverts the drives (and, live, the VM's RAM and devices) to snapshot `tag`. */
  loadSnapshot(vm: string, options: SnapshotOptions & { tag: string }): Promise<SnapshotOutcome>;
  deleteSnapshot(vm: string, options: SnapshotOptions & { tag: string }): Promise<SnapshotOutcome>;
  /** The drives' snapshots: from the catalogue when still true, else read (and recorded). */
  listSnapshots(vm: string, options?: { drive?: string; signal?: AbortSignal }): Promise<SnapshotListing>;
}

/**
 * The VM's snapshot catalogue: from the `snapshot-catalogue` projection (caught up inline, one
 * row read) when the store has a database, else folded from the VM's stream (a custom store).
 */
async function loadCatalogue(rt: Runtime, vmId: string): Promise<SnapshotCatalogue> {
  if (rt.projections !== undefined && rt.db !== undefined) {
    await rt.projections.catchUp(SNAPSHOT_CATALOGUE_PROJECTION);
    return readSnapshotCatalogue(rt.db, vmStreamId(vmId));
  }
  return foldSnapshotCatalogue(await rt.store.readStream(vmStreamId(vmId)));
}

export function snapshotOps(ctx: MaqetContext): SnapshotOps {
  const deps = (): SnapshotDeps => {
    const tools = diskToolsFor(ctx.options);
    return { tool: tools.qemuImg, files: tools.files, clock: tools.clock };
  };
  const mutate = (
    operation: "create" | "load" | "delete",
    vm: string,
    options: SnapshotOptions & { tag: string; overwrite?: boolean },
  ): Promise<SnapshotOutcome> =>
    ctx.withVm(vm, (actor) =>
      actor.exclusive((access) =>
        withProgress(
          ctx,
          `snapshot.${operation}`,
          `${access.view.name}:${options.tag}`,
          options.onProgress,
          (onProgress) => {
            const request = { ...options, onProgress };
            if (operation === "create") return createSnapshot(access, deps(), request);
            if (operation === "load") return loadSnapshot(access, deps(), request);
            return deleteSnapshot(access, deps(), request);
          },
        ),
      ),
    );
  return {
    createSnapshot: (vm, options) => mutate("create", vm, options),
    loadSnapshot: (vm, options) => mutate("load", vm, options),
    deleteSnapshot: (vm, options) => mutate("delete", vm, options),
    listSnapshots: (vm, options = {}) =>
      ctx.operation(async (rt, orchestrator) => {
        // Reads never wait behind a running operation: try the catalogue first, without the lock.
        const view = await orchestrator.liveView(vm);
        const running = view.status === "running" || view.status === "paused";
        const settled = running || view.status === "stopped";
        const disks = snapshotDrives(view.config, view.name, options.drive);
        if (settled) {
          const catalogue = await loadCatalogue(rt, view.vmId);
          const cached = await fromCatalogue(deps(), catalogue, disks, running);
          if (cached !== undefined) return { vm: view.name, running, source: "catalogue", drives: cached };
        }
        const actor = await orchestrator.actor(view.vmId);
        return actor.exclusive(async (access) => {
          const catalogue = await loadCatalogue(rt, view.vmId);
          return refreshSnapshotListing(access, deps(), catalogue, options.drive, options.signal);
        });
      }),
  };
}
