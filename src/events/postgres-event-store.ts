/**
 * The EventStore over PostgreSQL, written against a Kysely instance it is given: the same code
 * serves a PostgreSQL server (`pg` pool) and the embedded PGlite. It imports no driver and no
 * Node module, so it runs unchanged under Deno.
 *
 * @example
 * ```ts
 * const store = new PostgresEventStore(db, { actor: () => currentActor, source: "cli" });
 * await store.append("vm-1", [{ type: "vm.added", schemaVersion: 1, data: {} }], { expectedVersion: "no_stream" });
 * ```
 */

import type { Kysely } from "kysely";
import { filter, merge, NEVER, type Observable, Subject, takeUntil } from "rxjs";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import { appendGroupStatement, type GroupedAppend, type GroupedOutcome } from "./append-group.ts";
import {
  appendStatement,
  checkExpectedVersion,
  conflictError,
  conflictFacts,
  EVENTS_CHANNEL,
  expectedVersionHolds,
  idempotentResult,
  notifyStreams,
  type PreparedEvent,
} from "./append-to-stream.ts";
import { type Checkpoint, isCheckpoint } from "./checkpoint.ts";
import { CommitNotifier } from "./commit-notifier.ts";
import { readDeliveryHold } from "./delivery-hold.ts";
import type { EventActor, EventMetadata, NewEvent, StoredEvent } from "./envelope.ts";
import type {
  AppendOptions,
  AppendResult,
  DeliveryHold,
  EventStore,
  ExpectedVersion,
  ReadAllOptions,
  ReadStreamOptions,
  SubscribeOptions,
  SubscriptionMessage,
} from "./event-store.ts";
import { type GroupCommitOptions, GroupCommitter, type Settled } from "./group-commit.ts";
import { asJsonb } from "./jsonb-order.ts";
import { type NotificationSource, type SleepClock, timerClock } from "./notifications.ts";
import { checkpointAt, EVENT_COLUMNS, readAll, readHead, readPage, toStoredEvent } from "./read-all.ts";
import { type Database, toNumber } from "./schema.ts";
import { isStaleEpochViolation, staleEpochError } from "./stale-epoch.ts";
import { type HandedOverEvents, type Handover, pollingSubscription } from "./subscription.ts";
import { uuidv7 } from "./uuidv7.ts";

/** Recorded when no actor supplier is given (the adapters always give one). */
export const UNKNOWN_ACTOR: EventActor = Object.freeze({ user: "unknown", uid: -1, host: "unknown", pid: -1 });

export interface PostgresEventStoreOptions {
  /** Supplies `metadata.actor` for events that do not carry one (called once per append). */
  actor?: () => EventActor;
  /** Default `metadata.source` ("cli", "library", "agent", "test"...). */
  source?: string;
  /**
   * Runs at the end of {@link PostgresEventStore.close}: an opener that owns the Kysely instance
   * passes its own close here. Without it the caller keeps ownership of the database.
   */
  onClose?: () => Promise<void>;
  /**
   * LISTEN/NOTIFY wake-ups for subscriptions (src/adapters: a dedicated connection on a server,
   * PGlite's `listen` when embedded). Without one, subscriptions wake on this store's own appends
   * and otherwise poll. Closed by {@link PostgresEventStore.close}.
   */
  notifications?: NotificationSource;
  /** Time for subscription polling and back-off (default: `setTimeout`). */
  clock?: SleepClock;
  /** Subscription poll delays: first after activity, and the idle ceiling (defaults 2 and 1000 ms). */
  minPollMs?: number;
  maxPollMs?: number;
  /**
   * Set only when the database is ONE session in this process (PGlite, whose driver runs one
   * statement or transaction at a time; src/adapters gives it). Appends then run holding that
   * session, and their events go straight to this store's live subscriptions at commit, without
   * being read back (see {@link PostgresEventStore.subscribe}). Never set it for a server.
   */
  singleSession?: SingleSession;
  /**
   * Group commit (default on): appends that arrive while others are being written go together in
   * the next transaction (one commit, one WAL flush), each with its own expected-version check
   * and outcome; a lone append goes at once. `false`: every append is its own transaction.
   */
  groupCommit?: GroupCommitOptions | false;
}

/** What the store needs to know about a single-session database. */
export interface SingleSession {
  /** True while the session is inside a transaction block (PGlite: `isInTransaction()`). */
  inTransaction(): boolean;
}

/** An append's result, whether it wrote (false: an idempotent retry), and the written events' checkpoints. */
type WrittenAppend = AppendResult & { written: boolean; checkpoints: Checkpoint[] };

/** A conflict is re-checked at most this often when the stream moved into the expected state meanwhile. */
const MAX_APPEND_ATTEMPTS = 5;

/**
 * {@link EventStore} on the `maqet_streams` / `maqet_events` tables (see migrations/).
 *
 * @example
 * ```ts
 * const store = new PostgresEventStore(db);
 * store.appended$.subscribe((e) => console.log(e.streamId, e.type));
 * const { nextExpectedVersion } = await store.append("vm-1", events, { expectedVersion: -1 });
 * ```
 */
export class PostgresEventStore implements EventStore {
  readonly #db: Kysely<Database>;
  readonly #options: PostgresEventStoreOptions;
  readonly #appended = new Subject<StoredEvent>();
  /**
   * Not single-session (a server): wake-ups for other processes. An append that starts while
   * none of this store's appends is in flight notifies inside its own transaction (one statement,
   * nothing of ours to hold up); one that starts while others are in flight does not, and is
   * notified after its commit, coalesced (commit-notifier.ts): PostgreSQL serialises the commits
   * of notifying transactions (a database-wide lock held through the WAL flush). Single session:
   * undefined, every append notifies inside its transaction (nothing can run beside it).
   */
  readonly #notifier: CommitNotifier | undefined;
  /** Appends waiting for, or being written in, a group transaction (src/events/group-commit.ts). */
  readonly #groups: GroupCommitter<GroupedAppend, GroupedOutcome>;
  /** Single session only: each committed group's events, emitted while the session is held. */
  readonly #handovers = new Subject<HandedOverEvents>();
  /** Single session only: the streams an append group of this store is writing right now. */
  readonly #appendingTo = new Set<string>();
  /** Emits once, on close: ends every subscription. */
  readonly #closing = new Subject<void>();
  #closed = false;

  /** Events appended through this store, emitted after their transaction committed. */
  readonly appended$: Observable<StoredEvent> = this.#appended.asObservable();

  constructor(db: Kysely<Database>, options: PostgresEventStoreOptions = {}) {
    this.#db = db;
    this.#options = options;
    this.#notifier =
      options.singleSession === undefined ? new CommitNotifier((ids) => notifyStreams(db, ids)) : undefined;
    const grouping =
      options.groupCommit === false
        ? { maxGroup: 1, maxInFlight: Number.MAX_SAFE_INTEGER }
        : { ...options.groupCommit, ...(options.singleSession ? { maxInFlight: 1 } : {}) };
    this.#groups = new GroupCommitter((batch) => this.#writeGroup(batch), grouping);
  }

  async append(streamId: string, events: readonly NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const expected = options.expectedVersion ?? "any";
    this.#assertUsable("append to", streamId);
    validateExpectedVersion(streamId, expected);
    options.signal?.throwIfAborted();
    const prepared = events.map((e, i) => this.#prepare(streamId, e, i));
    assertUniqueIds(streamId, prepared);

    if (prepared.length === 0) {
      // Nothing to write; the expected version is still checked, so an empty append asserts it.
      const current = await this.streamVersion(streamId);
      checkExpectedVersion(streamId, expected, current);
      return { nextExpectedVersion: current, lastGlobalPosition: await this.#lastPosition(streamId), events: [] };
    }
    const outcome = await this.#run("append to", streamId, () =>
      this.#appendPrepared({ streamId, events: prepared, expected }),
    );
    const { written, checkpoints: _, ...result } = outcome;
    if (written) for (const event of result.events) this.#appended.next(event);
    return result;
  }

  /**
   * Writes one group (src/events/group-commit.ts): alone through `maqet_append`, several through
   * `maqet_append_group`, one transaction either way. On a server, a lone append with nothing
   * else in flight notifies inside its transaction; otherwise the written streams are notified
   * after commit, coalesced (#notifier). On a single-session database the group runs holding the
   * session ({@link #groupHoldingSession}).
   */
  async #writeGroup(batch: readonly GroupedAppend[]): Promise<Array<Settled<GroupedOutcome>>> {
    const session = this.#options.singleSession;
    let outcomes: GroupedOutcome[];
    if (session !== undefined) {
      outcomes = await this.#db.connection().execute((db) => this.#groupHoldingSession(db, session, batch));
    } else {
      const notifyInside = this.#notifier === undefined || (batch.length === 1 && this.#groups.inFlight <= 1);
      outcomes = await writeAppends(this.#db, batch, notifyInside);
      if (!notifyInside) {
        batch.forEach((a, i) => {
          if (outcomes[i]!.kind === "appended") this.#notifier?.poke(a.streamId);
        });
      }
    }
    return outcomes.map((value) => ({ ok: true, value }));
  }

  /**
   * A group on a single-session database, run while holding the session: no other statement
   * can run between the group's commit and the hand-over, so the subscriptions see its events
   * (in position order) before anything that commits after them. The NOTIFYs the group sends
   * arrive during its statement and are dropped (see {@link subscribe}): the hand-over replaces them.
   */
  async #groupHoldingSession(
    db: Kysely<Database>,
    session: SingleSession,
    batch: readonly GroupedAppend[],
  ): Promise<GroupedOutcome[]> {
    for (const a of batch) this.#appendingTo.add(a.streamId);
    let outcomes: GroupedOutcome[];
    try {
      outcomes = await writeAppends(db, batch, true, false);
    } finally {
      this.#appendingTo.clear();
    }
    const written = outcomes.flatMap((o) =>
      o.kind === "appended"
        ? o.result.events.map((event, i) => ({
            // What a reader of this event gets from jsonb (key order included), not what was sent.
            event: { ...event, data: asJsonb(event.data), metadata: asJsonb(event.metadata) } as StoredEvent,
            checkpoint: o.checkpoints[i]!,
          }))
        : [],
    );
    if (written.length > 0 && this.#handovers.observed) {
      // Committed unless someone left the session inside a transaction block (a raw BEGIN
      // outside the driver's transactions): then the events are not handed over but read once
      // committed; the empty batch makes every live subscription read, as a NOTIFY would.
      const committed = !session.inTransaction();
      this.#handovers.next(committed ? written.sort((a, b) => a.event.globalPosition - b.event.globalPosition) : []);
    }
    return outcomes;
  }

  /**
   * One append: first in a group (group commit), then, when the outcome asks for it, again on
   * its own. Run again: a part of a group that raised (`error`: alone, the error is met exactly
   * as a lone append meets it); a unique violation on an event id, or a conflict after which our
   * ids turn out stored (an identical append committed after this statement's snapshot: the
   * next run sees it and answers as a retry); and a conflict whose fresh read shows the stream
   * already in the expected state (it moved there after the decision; deciding again is as if
   * this append arrived a moment later).
   */
  async #appendPrepared(append: GroupedAppend): Promise<WrittenAppend> {
    const { streamId, events: prepared, expected } = append;
    for (let attempt = 1; ; attempt++) {
      let outcome: GroupedOutcome;
      try {
        outcome = attempt === 1 ? await this.#groups.submit(append) : await this.#alone(append);
      } catch (error) {
        if (isEventIdViolation(error) && attempt < MAX_APPEND_ATTEMPTS) continue;
        throw error;
      }
      if (outcome.kind === "error") {
        if (attempt < MAX_APPEND_ATTEMPTS) continue;
        throw new Error(`append failed in its group with SQLSTATE ${outcome.sqlState}`);
      }
      if (outcome.kind === "appended") return { ...outcome.result, written: true, checkpoints: outcome.checkpoints };
      if (outcome.kind === "duplicates") {
        return { ...idempotentResult(streamId, prepared, expected, outcome.rows), written: false, checkpoints: [] };
      }
      const { actual, idsStored } = await conflictFacts(
        this.#db,
        streamId,
        prepared.map((e) => e.id),
      );
      if ((!idsStored && !expectedVersionHolds(expected, actual)) || attempt >= MAX_APPEND_ATTEMPTS) {
        throw conflictError(streamId, expected, actual);
      }
    }
  }

  /** One append in a transaction of its own, now (not queued): a retry. */
  async #alone(append: GroupedAppend): Promise<GroupedOutcome> {
    const [settled] = await this.#writeGroup([append]);
    if (!settled!.ok) throw settled!.error;
    return settled!.value;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    this.#assertUsable("read", streamId);
    const fromVersion = options.fromVersion ?? 0;
    assertCount("fromVersion", fromVersion);
    if (options.limit !== undefined) assertCount("limit", options.limit);
    options.signal?.throwIfAborted();
    const rows = await this.#run("read", streamId, () => {
      let query = this.#db
        .selectFrom("maqet_events")
        .select(EVENT_COLUMNS)
        .where("stream_id", "=", streamId)
        .where("stream_version", ">=", fromVersion)
        .orderBy("stream_version");
      if (options.limit !== undefined) query = query.limit(options.limit);
      return query.execute();
    });
    return rows.map(toStoredEvent);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    this.#assertUsable("read", "all streams");
    assertAfter(options.after);
    if (options.limit !== undefined) assertCount("limit", options.limit);
    options.signal?.throwIfAborted();
    return this.#run("read", "all streams", () => readAll(this.#db, options));
  }

  /**
   * See docs/events.md "Subscriptions". On a single-session database (`singleSession`) the
   * appends of this store are handed to live subscriptions at commit instead of waking them to
   * read: with one session, transactions never overlap, so read order is position order and an
   * event whose position is the cursor's plus one is provably the next one (anything else, e.g.
   * a transaction of the caller's that wrote in between, makes the loop read). Wake-ups then come
   * only from others' commits: the NOTIFY of this store's own append, which arrives while that
   * append holds the session, is dropped.
   */
  subscribe(options: SubscribeOptions = {}): Observable<SubscriptionMessage> {
    this.#assertUsable("subscribe to", "all streams");
    const notifications = this.#options.notifications;
    const notified = notifications ? notifications.wakeups(EVENTS_CHANNEL) : NEVER;
    const single = this.#options.singleSession !== undefined;
    const wakeups = single
      ? notified.pipe(
          filter((w) => !(w.reason === "notification" && w.payload !== undefined && this.#appendingTo.has(w.payload))),
        )
      : merge(this.#appended, notified);
    const handover: Handover | undefined = single
      ? { batches: this.#handovers, follows: (cursor, next) => followsInOneSession(cursor, next) }
      : undefined;
    const reader = {
      readPage: (after: Checkpoint | undefined, limit: number, filter: SubscribeOptions["filter"]) =>
        this.#run("read", "all streams", () => readPage(this.#db, { ...filter, after, limit })),
      head: () => this.head(),
      checkpointAt: (position: number) => this.#run("read", "all streams", () => checkpointAt(this.#db, position)),
    };
    return pollingSubscription(reader, options, {
      clock: this.#options.clock ?? timerClock,
      wakeups,
      minPollMs: this.#options.minPollMs,
      maxPollMs: this.#options.maxPollMs,
      isClosed: () => this.#closed,
      handover,
    }).pipe(takeUntil(this.#closing));
  }

  async head(): Promise<Checkpoint | null> {
    this.#assertUsable("read", "all streams");
    return this.#run("read", "all streams", () => readHead(this.#db));
  }

  async deliveryHold(): Promise<DeliveryHold> {
    this.#assertUsable("read", "the delivery hold");
    return this.#run("read", "the delivery hold", () => readDeliveryHold(this.#db));
  }

  async streamVersion(streamId: string): Promise<number> {
    this.#assertUsable("read", streamId);
    const row = await this.#run("read", streamId, () =>
      this.#db.selectFrom("maqet_streams").select("version").where("stream_id", "=", streamId).executeTakeFirst(),
    );
    return row === undefined ? -1 : toNumber(row.version);
  }

  /**
   * Completes `appended$` and every subscription, closes the notification source and, when
   * opened with `onClose`, the database. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.next();
    this.#closing.complete();
    this.#appended.complete();
    this.#handovers.complete();
    try {
      await this.#notifier?.close();
      await this.#options.notifications?.close();
    } finally {
      await this.#options.onClose?.();
    }
  }

  #prepare(streamId: string, event: NewEvent, index: number): PreparedEvent {
    if (typeof event.type !== "string" || event.type === "") {
      throw invalid(streamId, `event #${index} has no type`, "give every event a dotted type such as 'vm.started'");
    }
    if (!Number.isInteger(event.schemaVersion) || event.schemaVersion < 1) {
      throw invalid(
        streamId,
        `event #${index} (${event.type}) has schemaVersion ${String(event.schemaVersion)}`,
        "use an integer >= 1",
      );
    }
    const metadata: EventMetadata = { actor: this.#options.actor?.() ?? UNKNOWN_ACTOR };
    if (this.#options.source !== undefined) metadata.source = this.#options.source;
    for (const [key, value] of Object.entries(event.metadata ?? {})) if (value !== undefined) metadata[key] = value;
    return {
      id: event.id ?? uuidv7(),
      type: event.type,
      schemaVersion: event.schemaVersion,
      data: event.data,
      metadata,
    };
  }

  async #lastPosition(streamId: string): Promise<number> {
    const row = await this.#run("read", streamId, () =>
      this.#db
        .selectFrom("maqet_events")
        .select("global_position")
        .where("stream_id", "=", streamId)
        .orderBy("stream_version", "desc")
        .limit(1)
        .executeTakeFirst(),
    );
    return row === undefined ? -1 : toNumber(row.global_position);
  }

  #assertUsable(verb: string, subject: string): void {
    if (this.#closed) {
      throw new MaqetError("STORE_ERROR", `Cannot ${verb} '${subject}': the event store is closed. Open a new one.`);
    }
  }

  /** Runs a database call; anything that is not already a MaqetError becomes STORE_ERROR. */
  async #run<T>(verb: string, subject: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isMaqetError(error)) throw error;
      if (isStaleEpochViolation(error)) throw staleEpochError(error);
      const reason = error instanceof Error ? error.message : String(error);
      throw new MaqetError(
        "STORE_ERROR",
        `Failed to ${verb} '${subject}' in the event store: ${reason}. ` +
          "Check that the database is reachable and migrated (`maqet migrate`).",
        { cause: error, details: { subject } },
      );
    }
  }
}

/**
 * Adjacency in read order on a single-session database: transactions there run one after the
 * other, so transaction ids and positions grow together and (transaction id, position) order is
 * position order. Positions come from an identity sequence (step 1), so the event right after
 * the cursor has the cursor's position plus one; a gap (a rolled-back insert, a position drawn by
 * a failed statement) only means "not provable", and the loop reads instead.
 */
function followsInOneSession(cursor: Checkpoint, next: Checkpoint): boolean {
  return next.position === cursor.position + 1 && BigInt(next.transactionId) >= BigInt(cursor.transactionId);
}

function validateExpectedVersion(streamId: string, expected: ExpectedVersion): void {
  if (expected === "any" || expected === "no_stream" || expected === "stream_exists") return;
  if (Number.isInteger(expected) && expected >= -1) return;
  throw invalid(
    streamId,
    `expectedVersion ${JSON.stringify(expected)} is not valid`,
    "use 'any', 'no_stream', 'stream_exists' or an integer >= -1",
  );
}

function assertUniqueIds(streamId: string, events: readonly PreparedEvent[]): void {
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.id))
      throw invalid(streamId, `event id ${e.id} appears twice in one append`, "give each event its own id");
    seen.add(e.id);
  }
}

function assertAfter(after: ReadAllOptions["after"]): void {
  if (after === undefined) return;
  if (typeof after === "number") assertCount("after", after);
  else if (!isCheckpoint(after)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid after: ${JSON.stringify(after)}. Use a position >= 0 or a checkpoint {transactionId, position}.`,
      { details: { after } },
    );
  }
}

/** A unique violation on `event_id`: an append of the same ids committed concurrently. */
function isEventIdViolation(error: unknown): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return e?.code === "23505" && e.constraint === "maqet_events_event_id_key";
}

function assertCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new MaqetError("INVALID_ARGUMENT", `Invalid ${name}: ${String(value)}. Use an integer >= 0.`, {
      details: { [name]: value },
    });
  }
}

function invalid(streamId: string, what: string, fix: string): MaqetError {
  return new MaqetError("INVALID_ARGUMENT", `Append to stream '${streamId}' refused: ${what}; ${fix}.`, {
    details: { streamId },
  });
}

/** One append alone (`maqet_append`, whose errors come through as thrown), several as a group. */
async function writeAppends(
  db: Kysely<Database>,
  batch: readonly GroupedAppend[],
  notify: boolean,
  sortByStream = true,
): Promise<GroupedOutcome[]> {
  if (batch.length === 1) {
    const { streamId, events, expected } = batch[0]!;
    return [await appendStatement(db, streamId, events, expected, notify)];
  }
  return appendGroupStatement(db, batch, notify, sortByStream);
}
