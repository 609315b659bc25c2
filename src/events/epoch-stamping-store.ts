/**
 * An {@link EventStore} view that stamps the owner epoch a cluster agent holds on every event it
 * appends to a VM stream (`metadata.epoch`), so the store's epoch check (migrations/0009-hosts.ts)
 * refuses whatever this agent still tries to write for a VM it lost. Everything else is the
 * underlying store's.
 *
 * @example
 * ```ts
 * const fenced = stampEpochs(store, (streamId) => owned.get(streamId) ?? 0);
 * await fenced.append("vm-1", [event]); // refused with STALE_EPOCH if vm-1 moved on
 * ```
 */
import type { NewEvent } from "./envelope.ts";
import type { EventStore } from "./event-store.ts";

/**
 * `epochOf(streamId)`: the epoch to stamp for that stream, or undefined for none (not a VM stream).
 *
 * @example
 * ```ts
 * stampEpochs(store, (s) => (s.startsWith("vm-") ? 3 : undefined));
 * ```
 */
export function stampEpochs(store: EventStore, epochOf: (streamId: string) => number | undefined): EventStore {
  return {
    append: (streamId, events, options) => {
      const epoch = epochOf(streamId);
      if (epoch === undefined) return store.append(streamId, events, options);
      const stamped: NewEvent[] = events.map((e) =>
        e.metadata?.epoch !== undefined ? e : { ...e, metadata: { ...e.metadata, epoch } },
      );
      return store.append(streamId, stamped, options);
    },
    readStream: (streamId, options) => store.readStream(streamId, options),
    readAll: (options) => store.readAll(options),
    streamVersion: (streamId) => store.streamVersion(streamId),
    subscribe: (options) => store.subscribe(options),
    head: () => store.head(),
    deliveryHold: () => store.deliveryHold(),
    get appended$() {
      return store.appended$;
    },
    close: () => store.close(),
  };
}
