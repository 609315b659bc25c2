/**
 * Where the orchestrator looks VMs up (`ls`, `status`, and every command's name lookup).
 *
 * Two implementations:
 * - the VM list projection (`projectedVmDirectory` in vm-list-projection.ts): reads the
 *   `maqet_vms` table after an inline catch-up; what the runtime uses on PGlite and PostgreSQL;
 * - {@link foldingVmDirectory}: folds the whole `vm` category on every call. For a store with no
 *   database to project into (an in-memory store in unit tests, a custom `EventStore` passed to
 *   `createMaqet({ store })`); cost grows with the number of events, so not for production.
 *
 * Both fold with the same `applyVmEvent`, so they give the same views.
 *
 * @example
 * ```ts
 * const directory = foldingVmDirectory(store);
 * const web = await directory.find("web"); // VmView | undefined
 * ```
 */
import type { EventStore } from "../events/event-store.ts";
import { applyVmEvent, type VmView } from "./vm-view.ts";

/**
 * VM lookups, as of now (every event committed and readable before the call).
 *
 * @example
 * ```ts
 * const names = (await directory.list()).map((v) => v.name);
 * ```
 */
export interface VmDirectory {
  /** Every VM in definition order; removed ones only when asked. */
  list(options?: { includeRemoved?: boolean }): Promise<VmView[]>;
  /** The VM (not removed) with this name, else the one with this id; undefined when none. */
  find(nameOrId: string): Promise<VmView | undefined>;
  /**
   * True when the store itself refuses a second live VM with a name (the claim committed with
   * the append, migrations/0003), so a define need not look the name up first.
   */
  readonly namesClaimedByStore?: boolean;
}

/**
 * A directory that folds the `vm` category of `store` on every call (no projection).
 *
 * @example
 * ```ts
 * const orchestrator = new Orchestrator({ ports, store, directory: foldingVmDirectory(store) });
 * ```
 */
export function foldingVmDirectory(store: Pick<EventStore, "readAll">): VmDirectory {
  const list = async (options: { includeRemoved?: boolean } = {}): Promise<VmView[]> => {
    const byStream = new Map<string, VmView>();
    for (const event of await store.readAll({ category: "vm" })) {
      const next = applyVmEvent(byStream.get(event.streamId), event);
      if (next) byStream.set(event.streamId, next);
    }
    const all = [...byStream.values()];
    return options.includeRemoved ? all : all.filter((v) => v.status !== "removed");
  };
  return {
    list,
    find: async (nameOrId) => {
      const views = await list();
      return views.find((v) => v.name === nameOrId) ?? views.find((v) => v.vmId === nameOrId);
    },
  };
}
