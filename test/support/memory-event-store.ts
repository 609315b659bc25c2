/**
 * An in-memory EventStore with the same semantics as the Postgres one, for unit tests of the
 * actors and as the reference model of the property-based conformance test
 * (test/int/event-store-conformance.int.test.ts). It is deliberately naive: one writer, so read
 * order is append order and a checkpoint's transaction id is simply its position.
 *
 * Data and metadata are kept as PostgreSQL's jsonb keeps them (test/support/jsonb.ts): what is
 * read back has jsonb's key order, a retry is recognised by jsonb equality (key order ignored),
 * and data jsonb refuses throws. Like the real store, append's own answer carries the events as
 * they were sent (JSON round trip, the caller's key order); reads carry them as stored.
 */
import { concat, defer, filter, from, map, type Observable, of, Subject, takeUntil } from "rxjs";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import type { Checkpoint } from "../../src/events/checkpoint.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import { categoryOf } from "../../src/events/envelope.ts";
import type {
  AppendOptions,
  AppendResult,
  DeliveryHold,
  EventFilter,
  EventStore,
  ExpectedVersion,
  ReadAllOptions,
  ReadStreamOptions,
  SubscribeOptions,
  SubscriptionMessage,
} from "../../src/events/event-store.ts";
import { jsonbEqual, toJsonb } from "./jsonb.ts";

export class MemoryEventStore implements EventStore {
  readonly events: StoredEvent[] = [];
  readonly appended$ = new Subject<StoredEvent>();
  /** Make the next append(s) fail with this error (e.g. to simulate a lost database). */
  failNext: Error[] = [];
  /** Metadata filled in for events without an actor (tests of the model compare it). */
  actor = { user: "test", uid: 0, host: "test", pid: 1 };
  #t = Date.parse("2026-01-01T00:00:00Z");
  #closing = new Subject<void>();

  async append(streamId: string, events: readonly NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const failure = this.failNext.shift();
    if (failure) throw failure;
    const expected = options.expectedVersion ?? "any";
    const ids = events.map((e) => e.id ?? crypto.randomUUID());
    const stored = this.events.filter((e) => ids.includes(e.id));
    if (stored.length > 0) return this.#retry(streamId, events, ids, expected, stored);
    const current = await this.streamVersion(streamId);
    if (!holds(expected, current)) {
      throw new MaqetError(
        "CONCURRENCY_CONFLICT",
        `Stream ${streamId}: expected version ${expected}, actual ${current}.`,
        {
          details: { streamId, expected, actual: current },
        },
      );
    }
    if (events.length === 0) {
      const last = this.events.filter((e) => e.streamId === streamId).at(-1);
      return { nextExpectedVersion: current, lastGlobalPosition: last?.globalPosition ?? -1, events: [] };
    }
    const appended = events.map(
      (e, i): StoredEvent => ({
        id: ids[i]!,
        streamId,
        streamVersion: current + 1 + i,
        globalPosition: this.events.length + 1 + i,
        type: e.type,
        schemaVersion: e.schemaVersion,
        data: toJsonb(e.data),
        metadata: toJsonb({ actor: this.actor, ...e.metadata }) as StoredEvent["metadata"],
        recordedAt: new Date(this.#t + 1000 * (i + 1)),
      }),
    );
    this.#t += 1000 * appended.length;
    this.events.push(...appended);
    for (const e of appended) this.appended$.next(e);
    // The answer carries what was sent, as JSON gives it back (the real store does the same).
    const sent = appended.map((e, i) => ({
      ...e,
      data: JSON.parse(JSON.stringify(events[i]!.data ?? null)),
      metadata: JSON.parse(JSON.stringify({ actor: this.actor, ...events[i]!.metadata })),
    }));
    return { nextExpectedVersion: current + appended.length, lastGlobalPosition: this.events.length, events: sent };
  }

  /** The idempotency rule, stated plainly: an exact replay (data equal as jsonb) returns the original events. */
  #retry(
    streamId: string,
    events: readonly NewEvent[],
    ids: string[],
    expected: ExpectedVersion,
    stored: StoredEvent[],
  ): AppendResult {
    const byId = new Map(stored.map((e) => [e.id, e]));
    const original = ids.map((id) => byId.get(id));
    const first = original[0]?.streamVersion ?? -1;
    const faithful =
      original.every(
        (e, i) =>
          e !== undefined &&
          e.streamId === streamId &&
          e.type === events[i]!.type &&
          e.schemaVersion === events[i]!.schemaVersion &&
          jsonbEqual(e.data, events[i]!.data ?? null) &&
          e.streamVersion === first + i,
      ) && holds(expected, first - 1);
    if (!faithful) {
      throw new MaqetError("EVENT_ID_CONFLICT", `Stream ${streamId}: event ids already stored differently.`, {
        details: { streamId, eventIds: stored.map((e) => e.id) },
      });
    }
    const found = original as StoredEvent[];
    const last = found.at(-1)!;
    return { nextExpectedVersion: last.streamVersion, lastGlobalPosition: last.globalPosition, events: found };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    return this.events
      .filter((e) => e.streamId === streamId && e.streamVersion >= (options.fromVersion ?? 0))
      .slice(0, options.limit ?? Number.POSITIVE_INFINITY);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    const after = typeof options.after === "object" ? options.after.position : (options.after ?? 0);
    return this.events
      .filter((e) => e.globalPosition > after && matches(e, options))
      .slice(0, options.limit ?? Number.POSITIVE_INFINITY);
  }

  async streamVersion(streamId: string): Promise<number> {
    return this.events.filter((e) => e.streamId === streamId).length - 1;
  }

  /** Catch-up from the array, the marker, then each append as it happens: one writer, no gaps. */
  subscribe(options: SubscribeOptions = {}): Observable<SubscriptionMessage> {
    const wanted = (e: StoredEvent) => matches(e, options.filter ?? {});
    return defer(() => {
      const start = options.from ?? "start";
      const after =
        start === "start"
          ? 0
          : start === "end"
            ? this.events.length
            : typeof start === "number"
              ? start
              : start.position;
      const backlog = this.events.filter((e) => e.globalPosition > after && wanted(e));
      const head = this.events.length === 0 ? null : checkpointOf(this.events.at(-1)!);
      const cursor = after === 0 ? null : (this.events.find((e) => e.globalPosition === after) ?? null);
      const caughtUp: SubscriptionMessage = {
        kind: "caughtUp",
        checkpoint: head ?? (cursor ? checkpointOf(cursor) : null),
      };
      return concat(
        from(backlog).pipe(map(toMessage)),
        of(caughtUp),
        this.appended$.pipe(filter(wanted), map(toMessage)),
      );
    }).pipe(takeUntil(this.#closing));
  }

  async head(): Promise<Checkpoint | null> {
    const last = this.events.at(-1);
    return last ? checkpointOf(last) : null;
  }

  async deliveryHold(): Promise<DeliveryHold> {
    return { watermark: null, heldEvents: 0, holder: null };
  }

  types(streamId?: string): string[] {
    return this.events.filter((e) => !streamId || e.streamId === streamId).map((e) => e.type);
  }

  async close(): Promise<void> {
    this.#closing.next();
    this.appended$.complete();
  }
}

/**
 * The model's checkpoint of an event: its position doubles as its transaction id.
 *
 * @example
 * ```ts
 * checkpointOf(event); // { transactionId: "3", position: 3 }
 * ```
 */
export function checkpointOf(event: StoredEvent): Checkpoint {
  return { transactionId: String(event.globalPosition), position: event.globalPosition };
}

function toMessage(event: StoredEvent): SubscriptionMessage {
  return { kind: "event", event, checkpoint: checkpointOf(event) };
}

function matches(e: StoredEvent, f: EventFilter): boolean {
  return (
    (f.category === undefined || categoryOf(e.streamId) === f.category) &&
    (f.streamId === undefined || e.streamId === f.streamId) &&
    (f.types === undefined || f.types.includes(e.type))
  );
}

function holds(expected: ExpectedVersion, current: number): boolean {
  return (
    expected === "any" ||
    (expected === "no_stream" && current === -1) ||
    (expected === "stream_exists" && current >= 0) ||
    expected === current
  );
}
