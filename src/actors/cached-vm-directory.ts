/**
 * A {@link VmDirectory} kept in memory for a process that is its store's only writer (the
 * embedded PGlite store: one process opens it at a time, so every append goes through that
 * process's store). The VM list is read once, then kept up to date by folding each `vm` event
 * appended through the store into it (`appended$` fires before the append resolves; the same
 * fold as the projection's and the actors'), so `ls`, `status` and a name lookup through the
 * agent cost no query, even while VMs start and stop; an event it cannot fold for sure (a
 * version gap) makes it read again. A read that overlapped an append is not kept. A name it
 * does not know is asked of the inner directory (which reads its writes).
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
import { applyVmEvent, type VmView } from "./vm-view.ts";

/** `appended$` completes when the store closes, which ends the watch. */
export function cachedVmDirectory(inner: VmDirectory, appended$: Observable<StoredEvent>): VmDirectory {
  let all: Promise<VmView[]> | undefined;
  /** The list of a read no append overlapped, kept up to date with each vm.* event appended since. */
  let held: VmView[] | undefined;
  let generation = 0;
  appended$.subscribe((event) => {
    if (categoryOf(event.streamId) !== "vm") return;
    generation++;
    if (held !== undefined && foldInto(held, event)) {
      all = Promise.resolve(held);
      return;
    }
    held = undefined;
    all = undefined;
  });
  const everything = (): Promise<VmView[]> => {
    if (all) return all;
    const at = generation;
    const read = inner.list({ includeRemoved: true });
    all = read;
    read.then(
      (views) => {
        if (generation === at && all === read) held = views;
        else if (all === read) all = undefined; // an append overlapped the read
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
 * Applies an appended event to the list in place: the next event of a stream it holds, or the
 * `vm.defined` of a new one (appended last, as its first position is the newest). False when
 * it cannot be sure (a version gap, an event the fold refuses): the list is then read again.
 */
function foldInto(views: VmView[], event: StoredEvent): boolean {
  const at = views.findIndex((v) => v.streamId === event.streamId);
  if (at === -1) {
    if (event.type !== "vm.defined") return false;
    const created = applyVmEvent(undefined, event);
    if (created === undefined) return false;
    views.push(created);
    return true;
  }
  const before = views[at]!;
  if (event.streamVersion !== before.version + 1) return false;
  const after = applyVmEvent(before, event);
  if (after === undefined) return false;
  views[at] = after;
  return true;
}
