/**
 * A VM's history and the store's event feed.
 *
 * @example
 * ```ts
 * (await historyOps(ctx).history("web")).map((e) => e.type);
 * ```
 */
import { defer, filter, from, map, mergeMap, type Observable } from "rxjs";
import type { StoredEvent } from "../../events/envelope.ts";
import type { EventStore, SubscriptionMessage } from "../../events/event-store.ts";
import { vmStreamId } from "../../events/vm-events.ts";
import { type HistoryEntry, toHistoryEntry } from "../history-entry.ts";
import type { MaqetContext } from "../maqet-context.ts";

export interface HistoryOps {
  history(name: string): Promise<HistoryEntry[]>;
  /**
   * Every stored event from the start, then every event committed later (by any process), each
   * exactly once in the store's read order: `store.subscribe({ from: "start" })` without the
   * markers. Use `subscribe()` for checkpoints, filters and the `caughtUp` marker.
   */
  readonly events$: Observable<StoredEvent>;
}

export function historyOps(ctx: MaqetContext): HistoryOps {
  return {
    history: (name) =>
      ctx.operation(async (rt, orchestrator) => {
        const view = await orchestrator.find(name);
        return (await rt.store.readStream(vmStreamId(view.vmId))).map(toHistoryEntry);
      }),
    events$: defer(() => from(ctx.open())).pipe(mergeMap((rt) => storedThenLive(rt.store))),
  };
}

/** Every event from the start, then live ones, without the subscription's markers. */
function storedThenLive(store: EventStore): Observable<StoredEvent> {
  return store.subscribe({ from: "start" }).pipe(
    filter((m): m is Extract<SubscriptionMessage, { kind: "event" }> => m.kind === "event"),
    map((m) => m.event),
  );
}
