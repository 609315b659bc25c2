/**
 * The EventStore contract every dialect (PGlite, PostgreSQL server) satisfies.
 *
 * @example
 * ```ts
 * const r = await store.append("vm-1", [event], { expectedVersion: "no_stream" });
 * for await (const e of store.readStream("vm-1")) console.log(e.type);
 * ```
 */
import type { Observable } from "rxjs";
import type { NewEvent, StoredEvent } from "./envelope.ts";

/**
 * - `any`: no check.
 * - `no_stream`: the stream must not exist yet.
 * - `stream_exists`: the stream must have at least one event.
 * - a number: the stream's current version (its last event's 0-based version) must equal it.
 */
export type ExpectedVersion = "any" | "no_stream" | "stream_exists" | number;

export interface AppendOptions {
  expectedVersion?: ExpectedVersion;
  signal?: AbortSignal;
}

export interface AppendResult {
  /** The stream's version after the append (its last event's version). */
  nextExpectedVersion: number;
  /** Global position of the last appended event. */
  lastGlobalPosition: number;
  events: StoredEvent[];
}

export interface ReadStreamOptions {
  /** First stream version to return (inclusive). Default 0. */
  fromVersion?: number;
  limit?: number;
  signal?: AbortSignal;
}

export interface ReadAllOptions {
  /**
   * Resume after the event at this global position (a checkpoint). Events come in commit-safe
   * order (transaction id, then position), so "after" means after that event in this order,
   * not "every larger position". Default: from the start.
   */
  after?: number;
  limit?: number;
  /** Only streams of this category (e.g. "vm"). */
  category?: string;
  signal?: AbortSignal;
}

export interface EventStore {
  /** Appends events atomically; throws `CONCURRENCY_CONFLICT` when `expectedVersion` does not hold. */
  append(streamId: string, events: readonly NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** Events of one stream in version order. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /**
   * Events of all streams in global order, never past a position that a still-open transaction
   * could fill later.
   */
  readAll(options?: ReadAllOptions): Promise<StoredEvent[]>;
  /** The current version of a stream, or -1 when it does not exist. */
  streamVersion(streamId: string): Promise<number>;
  /** Live feed of events appended through this store (after commit), in append order. */
  readonly appended$: Observable<StoredEvent>;
  close(): Promise<void>;
}
