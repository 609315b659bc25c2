/**
 * An in-memory EventStore with the same append semantics as the Postgres one, for unit tests
 * of the actors. The real store is proven by test/int/event-store.int.test.ts.
 */
import { Subject } from "rxjs";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import { categoryOf } from "../../src/events/envelope.ts";
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  ReadAllOptions,
  ReadStreamOptions,
} from "../../src/events/event-store.ts";

export class MemoryEventStore implements EventStore {
  readonly events: StoredEvent[] = [];
  readonly appended$ = new Subject<StoredEvent>();
  /** Make the next append(s) fail with this error (e.g. to simulate a lost database). */
  failNext: Error[] = [];
  #t = Date.parse("2026-01-01T00:00:00Z");

  async append(streamId: string, events: readonly NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const failure = this.failNext.shift();
    if (failure) throw failure;
    const current = await this.streamVersion(streamId);
    const expected = options.expectedVersion ?? "any";
    const ok =
      expected === "any" ||
      (expected === "no_stream" && current === -1) ||
      (expected === "stream_exists" && current >= 0) ||
      expected === current;
    if (!ok) {
      throw new MaqetError(
        "CONCURRENCY_CONFLICT",
        `Stream ${streamId}: expected version ${expected}, actual ${current}.`,
        {
          details: { streamId, expected, actual: current },
        },
      );
    }
    const stored = events.map(
      (e, i): StoredEvent => ({
        id: e.id ?? crypto.randomUUID(),
        streamId,
        streamVersion: current + 1 + i,
        globalPosition: this.events.length + 1 + i,
        type: e.type,
        schemaVersion: e.schemaVersion,
        data: structuredClone(e.data),
        metadata: { actor: { user: "test", uid: 0, host: "test", pid: 1 }, ...e.metadata },
        recordedAt: new Date(this.#t + 1000 * (i + 1)),
      }),
    );
    this.#t += 1000 * stored.length;
    this.events.push(...stored);
    for (const e of stored) this.appended$.next(e);
    return { nextExpectedVersion: current + stored.length, lastGlobalPosition: this.events.length, events: stored };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    return this.events
      .filter((e) => e.streamId === streamId && e.streamVersion >= (options.fromVersion ?? 0))
      .slice(0, options.limit ?? Number.POSITIVE_INFINITY);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    return this.events
      .filter(
        (e) =>
          e.globalPosition > (options.after ?? 0) && (!options.category || categoryOf(e.streamId) === options.category),
      )
      .slice(0, options.limit ?? Number.POSITIVE_INFINITY);
  }

  async streamVersion(streamId: string): Promise<number> {
    return this.events.filter((e) => e.streamId === streamId).length - 1;
  }

  types(streamId?: string): string[] {
    return this.events.filter((e) => !streamId || e.streamId === streamId).map((e) => e.type);
  }

  async close(): Promise<void> {
    this.appended$.complete();
  }
}
