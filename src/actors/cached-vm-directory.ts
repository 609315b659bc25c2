/**
 * A {@link VmDirectory} kept in memory for a process that is its store's only writer (the
 * embedded PGlite store: one process opens it at a time, so every append goes through that
 * process's store). The VM list is read once and reused until an event of the `vm` category is
 * appended (the store's `appended$` fires before the append resolves), so `ls` and `status`
 * through the agent cost no query while nothing changed. A read that overlapped an append is
 * not kept. A name it does not know is asked of the inner directory (which reads its writes).
 *
 * @example
 * ```ts
 * const directory = cachedVmDirectory(projectedVmDirectory(runner, db, store), store.appended$);
 * await directory.list(); // one query
 * await directory.list(); // none, until a vm.* event is appended
 * ```
 */
import type { Observable } from "rxjs";
import { categoryOf, type StoredEvent } from "../events/envelope.ts";
import type { VmDirectory } from "./vm-directory.ts";
import type { VmView } from "./vm-view.ts";

/** `appended$` completes when the store closes, which ends the watch. */
export function cachedVmDirectory(inner: VmDirectory, appended$: Observable<StoredEvent>): VmDirectory {
  let all: Promise<VmView[]> | undefined;
  let generation = 0;
  appended$.subscribe((event) => {
    if (categoryOf(event.streamId) !== "vm") return;
    generation++;
    all = undefined;
  });
  const everything = (): Promise<VmView[]> => {
    if (all) return all;
    const at = generation;
    const read = inner.list({ includeRemoved: true });
    all = read;
    read.then(
      () => {
        if (generation !== at && all === read) all = undefined; // an append overlapped the read
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
