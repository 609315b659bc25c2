/**
 * A {@link VmDirectory} kept in memory for a process that is its store's only writer (the
 * embedded PGlite store: one process opens it at a time, so every append goes through that
 * process's store). The VM list is read once and kept: an event of the `vm` category appended
 * since (the store's `appended$` fires before the append resolves) is folded into its VM's view
 * with the projection's own fold (`applyVmEvent`), so `ls` through the agent costs no query, even
 * after `qmp` or `start` appended to a stream (a catch-up and a read were ~3 ms of each `ls`). A
 * new VM, or an event out of its stream's order, has the list read again; so does a read that
 * overlapped an append. A name it does not know is asked of the inner directory (which reads its writes).
 *
 * @example
 * ```ts
 * const directory = cachedVmDirectory(projectedVmDirectory(runner, db, store), store.appended$);
 * await directory.list(); // one query
 * await directory.list(); // none; a vm.* event appended since is folded in, a new VM read again
 * ```
 */
import type { Observable } from "rxjs";
import { categoryOf, type StoredEvent } from "../events/envelope.ts";
import type { VmDirectory } from "./vm-directory.ts";
import { applyVmEvent, type VmView } from "./vm-view.ts";

/** `appended$` completes when the store closes, which ends the watch. */
export function cachedVmDirectory(inner: VmDirectory, appended$: Observable<StoredEvent>): VmDirectory {
  let all: Promise<VmView[]> | undefined;
  /** The list `all` resolved to, once it did (an event is folded into it in place). */
  let settled: VmView[] | undefined;
  let generation = 0;
  appended$.subscribe((event) => {
    if (categoryOf(event.streamId) !== "vm") return;
    generation++;
    const next = settled === undefined ? undefined : folded(settled, event);
    settled = next;
    all = next === undefined ? undefined : Promise.resolve(next);
  });
  const everything = (): Promise<VmView[]> => {
    if (all) return all;
    const at = generation;
    const read = inner.list({ includeRemoved: true });
    all = read;
    settled = undefined;
    read.then(
      (views) => {
        if (all !== read) return;
        if (generation !== at)
          all = undefined; // an append overlapped the read
        else settled = views;
      },
      () => {
        if (all === read) all = undefined;
      },
    );
    return read;
  };
  return {
    ...(inner.namesClaimedByStore ? { namesClaimedByStore: true } : {}),
    list: async (options = {}) => {
      const views = await everything();
      return options.includeRemoved ? [...views] : views.filter((v) => v.status !== "removed");
    },
    find: async (nameOrId) => {
      const live = (await everything()).filter((v) => v.status !== "removed");
      return live.find((v) => v.name === nameOrId) ?? live.find((v) => v.vmId === nameOrId) ?? inner.find(nameOrId);
    },
  };
}

/**
 * The list with one appended event folded into its VM's view (the projection's own fold), or
 * undefined when it must be read again: a VM the list does not hold (a new one), or an event
 * that is not the next of its stream (one missed). An event the list already holds (a read
 * that finished before its notice) changes nothing.
 */
function folded(views: VmView[], event: StoredEvent): VmView[] | undefined {
  const at = views.findIndex((v) => v.streamId === event.streamId);
  if (at === -1) return undefined;
  const view = views[at]!;
  if (event.streamVersion <= view.version) return views;
  if (event.streamVersion !== view.version + 1) return undefined;
  const next = applyVmEvent(view, event);
  if (next === undefined) return undefined;
  const copy = [...views];
  copy[at] = next;
  return copy;
}
