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
import type { Checkpoint } from "./checkpoint.ts";
import type { NewEvent, StoredEvent } from "./envelope.ts";

export type { Checkpoint } from "./checkpoint.ts";

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

/**
 * What an append returns. An idempotent retry (the same event ids, see {@link EventStore.append})
 * returns the original append's result: the same versions, positions and stored metadata.
 */
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

/** Which events a cross-stream read or a subscription returns; all given conditions must hold. */
export interface EventFilter {
  /** Only streams of this category (the stream id's text before the first dash, e.g. "vm"). */
  category?: string;
  /** Only this stream. */
  streamId?: string;
  /** Only these event types. */
  types?: readonly string[];
}

export interface ReadAllOptions extends EventFilter {
  /**
   * Resume after this event: a {@link Checkpoint} (exact, no lookup), or the global position of
   * an event already read (the store looks its transaction id up). Events come in commit-safe
   * order (transaction id, then position), so "after" means after that event in this order,
   * not "every larger position". Default (or 0): from the start.
   */
  after?: number | Checkpoint;
  limit?: number;
  signal?: AbortSignal;
}

/** Where a subscription starts. */
export type SubscribeFrom =
  /** Every stored event. */
  | "start"
  /** Only events not yet readable when the subscription starts. */
  | "end"
  /** After this event (exclusive), as carried by every delivered event. */
  | Checkpoint
  /** After the event at this global position (exclusive); 0 is the start. */
  | number;

export interface SubscribeOptions {
  /** Default "start". */
  from?: SubscribeFrom;
  filter?: EventFilter;
  /** Events per read while catching up (default 500). */
  batchSize?: number;
}

/**
 * What a subscription emits: events in the store's read order, each with the checkpoint to
 * resume after it; and exactly once, the first time the subscription has read everything
 * readable, a `caughtUp` marker (its checkpoint covers every event readable at that moment,
 * also those the filter skipped; null when nothing was ever stored).
 */
export type SubscriptionMessage =
  | { readonly kind: "event"; readonly event: StoredEvent; readonly checkpoint: Checkpoint }
  | { readonly kind: "caughtUp"; readonly checkpoint: Checkpoint | null };

/** The session holding the oldest open transaction id, which readers may not pass. */
export interface DeliveryHolder {
  /** `session`: a connected backend; `prepared`: a two-phase transaction waiting for COMMIT PREPARED. */
  kind: "session" | "prepared";
  /** Backend process id (null for a prepared transaction). */
  pid: number | null;
  /** Its transaction id (32-bit `xid`, as PostgreSQL shows it). */
  xid: string;
  /** `idle in transaction`, `active`...; the gid for a prepared transaction. */
  state: string | null;
  /** Its current or last statement (null when this role may not see it). */
  query: string | null;
  /** When its transaction started (or was prepared). */
  since: Date | null;
  /** How long it has been open, in milliseconds. */
  ageMs: number | null;
  database: string | null;
  user: string | null;
  applicationName: string | null;
}

/** What holds delivery back right now (see docs/events.md "Operational notes"). */
export interface DeliveryHold {
  /**
   * The read watermark: the oldest transaction id still running anywhere in the cluster (`xid8`).
   * Readers return only events written by older transactions. Null when none runs.
   */
  watermark: string | null;
  /** Committed events not yet readable because an older transaction is still open. */
  heldEvents: number;
  /** The oldest open transaction holding an id, when this role can see it; null when none. */
  holder: DeliveryHolder | null;
}

export interface EventStore {
  /**
   * Appends events atomically. Throws `CONCURRENCY_CONFLICT` (details `{streamId, expected,
   * actual}`) when `expectedVersion` does not hold. Idempotent by event id: when every event id is
   * already stored in this stream with the same type, schema version and data, in the same order
   * on consecutive versions, nothing is written and the original result is returned; any other
   * reuse of a stored id throws `EVENT_ID_CONFLICT`.
   */
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
  /**
   * Catch up from `from`, emit one `caughtUp` marker, then follow live: every committed event
   * matching the filter exactly once, in read order. Completes when the store closes.
   */
  subscribe(options?: SubscribeOptions): Observable<SubscriptionMessage>;
  /** The checkpoint of the last readable event (what a reader that has read everything holds), or null. */
  head(): Promise<Checkpoint | null>;
  /** What holds delivery back right now: the read watermark and the oldest open transaction. */
  deliveryHold(): Promise<DeliveryHold>;
  /** Live feed of events appended through this store (after commit), in append order. */
  readonly appended$: Observable<StoredEvent>;
  close(): Promise<void>;
}
