/**
 * The store's event feed as a facade group: subscribe to every stream (or one VM's) from the
 * start, the end, a checkpoint or a position; and what holds delivery back.
 *
 * @example
 * ```ts
 * maqet.subscribe({ vm: "web", from: "end" }).subscribe((m) => {
 *   if (m.kind === "event") console.log(m.event.globalPosition, m.vmName, m.event.type);
 * });
 * ```
 */
import { concatMap, defer, type Observable, switchMap, takeWhile } from "rxjs";
import type { Checkpoint } from "../../events/checkpoint.ts";
import { categoryOf, type StoredEvent } from "../../events/envelope.ts";
import type { DeliveryHold, EventFilter, EventStore, SubscribeFrom } from "../../events/event-store.ts";
import { vmStreamId } from "../../events/vm-events.ts";
import type { MaqetContext } from "../maqet-context.ts";

export interface EventsSubscribeOptions {
  /** Only this VM's events (its name or id). */
  vm?: string;
  /** "start" (default), "end", a checkpoint, or a global position to start after. */
  from?: SubscribeFrom;
  /** Keep following live once caught up (default true); false completes after the `caughtUp` marker. */
  follow?: boolean;
  /** More conditions (category, stream id, types); combined with `vm`. */
  filter?: EventFilter;
  /** Events per read while catching up (default 500). */
  batchSize?: number;
}

/** A subscription message, events carrying the name of their VM (null for other streams). */
export type EventsMessage =
  | {
      readonly kind: "event";
      readonly event: StoredEvent;
      readonly checkpoint: Checkpoint;
      readonly vmName: string | null;
    }
  | { readonly kind: "caughtUp"; readonly checkpoint: Checkpoint | null };

export interface EventsOps {
  /**
   * Every committed event exactly once, in the store's read order: what is stored, one
   * `caughtUp` marker, then (unless `follow: false`) new events as they commit, from any process.
   * Unsubscribing stops it; closing the maqet instance completes it.
   */
  subscribe(options?: EventsSubscribeOptions): Observable<EventsMessage>;
  /** The read watermark and the oldest open transaction holding delivery back (see docs/events.md). */
  deliveryHold(): Promise<DeliveryHold>;
}

export function eventsOps(ctx: MaqetContext): EventsOps {
  return {
    subscribe: (options = {}) =>
      defer(async () => {
        const rt = await ctx.open();
        const streamId =
          options.vm === undefined ? undefined : vmStreamId((await rt.orchestrator.find(options.vm)).vmId);
        return { store: rt.store, streamId };
      }).pipe(
        switchMap(({ store, streamId }) => {
          const filter = { ...options.filter, ...(streamId === undefined ? {} : { streamId }) };
          const names = new VmNames(store);
          return store.subscribe({ from: options.from, filter, batchSize: options.batchSize }).pipe(
            takeWhile((m) => options.follow !== false || m.kind !== "caughtUp", true),
            concatMap(
              async (m): Promise<EventsMessage> => (m.kind === "event" ? { ...m, vmName: await names.of(m.event) } : m),
            ),
          );
        }),
      ),
    deliveryHold: async () => (await ctx.open()).store.deliveryHold(),
  };
}

/** VM names by stream, from each stream's `vm.defined` event (read once per stream). */
class VmNames {
  readonly #names = new Map<string, string | null>();
  constructor(readonly store: EventStore) {}

  async of(event: StoredEvent): Promise<string | null> {
    if (categoryOf(event.streamId) !== "vm") return null;
    const known = this.#names.get(event.streamId);
    if (known !== undefined) return known;
    const defined =
      event.type === "vm.defined" ? event : (await this.store.readStream(event.streamId, { limit: 1 }))[0];
    const name = defined?.type === "vm.defined" ? ((defined.data as { name?: unknown }).name ?? null) : null;
    const result = typeof name === "string" ? name : null;
    this.#names.set(event.streamId, result);
    return result;
  }
}
