/**
 * Appends a VM's facts in order, with the stream version it knows, one append at a time.
 * The VM actor records every fact through it, so lifecycle facts and asynchronous observations
 * (a QMP STOP event, a crash) never race each other for a stream version.
 *
 * @example
 * ```ts
 * const recorder = new StreamRecorder(store, "vm-1", 0);
 * await recorder.record([vmEvent("vm.start-requested", { timeoutMs: 30000 })], { correlationId: "op-1" });
 * ```
 */
import { isMaqetError } from "../errors/maqet-error.ts";
import type { EventMetadata, NewEvent, StoredEvent } from "../events/envelope.ts";
import type { EventStore } from "../events/event-store.ts";

export class StreamRecorder {
  #tail: Promise<unknown> = Promise.resolve();
  #version: number;
  /** Set when an append hit CONCURRENCY_CONFLICT: the known version is no longer the stream's. */
  conflicted = false;

  constructor(
    private readonly store: EventStore,
    readonly streamId: string,
    version: number,
  ) {
    this.#version = version;
  }

  /** The stream version after the last successful append. */
  get version(): number {
    return this.#version;
  }

  /**
   * Appends events after every earlier record call has settled, expecting the version this
   * recorder last saw. A conflict (another process wrote the stream) rejects and changes nothing.
   * `metadata` is the recording operation's (its correlation id, caller, source): merged under
   * each event's own metadata. Each call brings its own; the recorder keeps none.
   */
  record(events: readonly NewEvent[], metadata: Partial<EventMetadata> = {}): Promise<StoredEvent[]> {
    const run = async (): Promise<StoredEvent[]> => {
      if (events.length === 0) return [];
      const withMetadata = events.map((e) => ({ ...e, metadata: { ...metadata, ...e.metadata } }));
      const result = await this.store
        .append(this.streamId, withMetadata, { expectedVersion: this.#version })
        .catch((error: unknown) => {
          if (isMaqetError(error, "CONCURRENCY_CONFLICT")) this.conflicted = true;
          throw error;
        });
      this.#version = result.nextExpectedVersion;
      return result.events;
    };
    const next = this.#tail.then(run, run);
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /**
   * Takes in events this stream's owner appended through another path in the same operation (a
   * placement's own transaction): the recorder goes on after them instead of conflicting.
   * Ignored unless they follow on directly from the version it knows.
   */
  adopt(events: readonly StoredEvent[]): void {
    const first = events[0];
    if (first === undefined || first.streamVersion !== this.#version + 1) return;
    this.#version = events.at(-1)!.streamVersion;
  }

  /** Resolves once every record call made so far has settled. */
  async flush(): Promise<void> {
    await this.#tail;
  }
}
