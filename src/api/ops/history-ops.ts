/**
 * A VM's history and the store's event feed.
 *
 * @example
 * ```ts
 * (await historyOps(ctx).history("web")).map((e) => e.type);
 * ```
 */
import { defer, from, mergeMap, Observable } from "rxjs";
import type { StoredEvent } from "../../events/envelope.ts";
import type { EventStore } from "../../events/event-store.ts";
import { vmStreamId } from "../../events/vm-events.ts";
import { type HistoryEntry, toHistoryEntry } from "../history-entry.ts";
import type { MaqetContext } from "../maqet-context.ts";

export interface HistoryOps {
  history(name: string): Promise<HistoryEntry[]>;
  /** Every stored event from the start, then events as this process appends them. */
  readonly events$: Observable<StoredEvent>;
}

export function historyOps(ctx: MaqetContext): HistoryOps {
  return {
    history: (name) =>
      ctx.operation(async (rt, orchestrator) => {
        const view = await orchestrator.find(name);
        return (await rt.store.readStream(vmStreamId(view.vmId))).map(toHistoryEntry);
      }),
    events$: defer(() => from(ctx.open())).pipe(mergeMap((rt) => catchUpThenLive(rt.store))),
  };
}

/**
 * Stored events from the start, then those this process appends. Live events are buffered
 * while the backlog is read, so none falls between the two; event ids dedupe the overlap
 * (positions are not monotonic in read order: the store orders by transaction, then position).
 */
function catchUpThenLive(store: EventStore): Observable<StoredEvent> {
  return new Observable<StoredEvent>((subscriber) => {
    let backlogIds: Set<string> | undefined;
    const buffered: StoredEvent[] = [];
    const live = store.appended$.subscribe({
      next: (event) => {
        if (backlogIds === undefined) buffered.push(event);
        else subscriber.next(event);
      },
      complete: () => subscriber.complete(),
      error: (error) => subscriber.error(error),
    });
    store
      .readAll()
      .then((events) => {
        for (const event of events) subscriber.next(event);
        backlogIds = new Set(events.map((e) => e.id));
        for (const event of buffered.splice(0)) if (!backlogIds.has(event.id)) subscriber.next(event);
      })
      .catch((error) => subscriber.error(error));
    return () => live.unsubscribe();
  });
}
