/**
 * Snapshots of a VM's qcow2 drives: offline through qemu-img when the VM is stopped, live
 * through QMP jobs when it runs (see src/actors/snapshot-operations.ts). Mutations run as the
 * VM's one exclusive operation; `listSnapshots` answers from the snapshot catalogue (a fold of
 * the VM's snapshot events) without taking the VM's lock or reading an image when nothing
 * changed.
 *
 * @example
 * ```ts
 * await maqet.createSnapshot("web", { tag: "before-upgrade" });
 * (await maqet.listSnapshots("web")).drives[0]?.snapshots.map((s) => s.name); // ["before-upgrade"]
 * await maqet.loadSnapshot("web", { tag: "before-upgrade" });
 * await maqet.deleteSnapshot("web", { tag: "before-upgrade" });
 * ```
 */
import { foldSnapshotCatalogue } from "../../actors/snapshot-catalogue.ts";
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
          const catalogue = foldSnapshotCatalogue(await rt.store.readStream(vmStreamId(view.vmId)));
          const cached = await fromCatalogue(deps(), catalogue, disks, running);
          if (cached !== undefined) return { vm: view.name, running, source: "catalogue", drives: cached };
        }
        const actor = await orchestrator.actor(view.vmId);
        return actor.exclusive(async (access) => {
          const catalogue = foldSnapshotCatalogue(await rt.store.readStream(vmStreamId(view.vmId)));
          return refreshSnapshotListing(access, deps(), catalogue, options.drive, options.signal);
        });
      }),
  };
}
