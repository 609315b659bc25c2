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
import { merge, NEVER, type Observable, Subject, takeUntil } from "rxjs";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import { type GroupedAppend, type GroupedOutcome, writeAppends } from "./append-group.ts";
import { type AppendWriters, appendUntilDecided } from "./append-retry.ts";
import { checkExpectedVersion, currentVersion, EVENTS_CHANNEL, notifyStreams } from "./append-to-stream.ts";
import type { Checkpoint } from "./checkpoint.ts";
import { CommitNotifier } from "./commit-notifier.ts";
import { readDeliveryHold } from "./delivery-hold.ts";
import type { EventActor, NewEvent, StoredEvent } from "./envelope.ts";
import type {
  AppendOptions,
  AppendResult,
  DeliveryHold,
  EventStore,
  ReadAllOptions,
  ReadStreamOptions,
  SubscribeOptions,
  SubscriptionMessage,
} from "./event-store.ts";
import { type GroupCommitOptions, GroupCommitter, type Settled } from "./group-commit.ts";
import { type NotificationSource, type SleepClock, timerClock } from "./notifications.ts";
import { checkpointAt, EVENT_COLUMNS, readAll, readHead, readPage, toStoredEvent } from "./read-all.ts";
import { type Database, toNumber } from "./schema.ts";
import { SessionHandover, type SingleSession } from "./session-handover.ts";
import { isStaleEpochViolation, staleEpochError } from "./stale-epoch.ts";
import { assertAfter, assertCount, prepareEvents, validateExpectedVersion } from "./store-arguments.ts";
import { pollingSubscription } from "./subscription.ts";

export type { SingleSession } from "./session-handover.ts";
export { UNKNOWN_ACTOR } from "./store-arguments.ts";

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
  /** Where {@link appendUntilDecided} writes: the next group first, alone when it runs again. */
  readonly #writers: AppendWriters;
  /** Single session only: hands each committed group's events to the live subscriptions. */
  readonly #handover: SessionHandover | undefined;
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
    this.#handover =
      options.singleSession === undefined
        ? undefined
        : new SessionHandover(options.singleSession, (events) => {
            for (const event of events) this.#appended.next(event);
          });
    const grouping =
      options.groupCommit === false
        ? { maxGroup: 1, maxInFlight: Number.MAX_SAFE_INTEGER }
        : { ...options.groupCommit, ...(options.singleSession ? { maxInFlight: 1 } : {}) };
    this.#groups = new GroupCommitter((batch) => this.#writeGroup(batch), grouping);
    this.#writers = { db, inGroup: (a) => this.#groups.submit(a), alone: (a) => this.#alone(a) };
  }

  async append(streamId: string, events: readonly NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const expected = options.expectedVersion ?? "any";
    this.#assertUsable("append to", streamId);
    validateExpectedVersion(streamId, expected);
    options.signal?.throwIfAborted();
    const prepared = prepareEvents(streamId, events, this.#options);

    if (prepared.length === 0) {
      // Nothing to write; the expected version is still checked, so an empty append asserts it.
      const current = await this.streamVersion(streamId);
      checkExpectedVersion(streamId, expected, current);
      return { nextExpectedVersion: current, lastGlobalPosition: await this.#lastPosition(streamId), events: [] };
    }
    const outcome = await this.#run("append to", streamId, () =>
      appendUntilDecided({ streamId, events: prepared, expected }, this.#writers),
    );
    const { written, checkpoints: _, ...result } = outcome;
    // On a single session the hand-over told appended$ at commit (SessionHandover's onWritten).
    if (written && this.#handover === undefined) for (const event of result.events) this.#appended.next(event);
    return result;
  }

  /**
   * Writes one group (src/events/group-commit.ts): alone through `maqet_append`, several through
   * `maqet_append_group`, one transaction either way. On a server, a lone append with nothing
   * else in flight notifies inside its transaction; otherwise the written streams are notified
   * after commit, coalesced (#notifier). On a single-session database the group runs holding the
   * session, and its events are handed over ({@link SessionHandover.write}).
   */
  async #writeGroup(batch: readonly GroupedAppend[]): Promise<Array<Settled<GroupedOutcome>>> {
    const handover = this.#handover;
    let outcomes: GroupedOutcome[];
    if (handover !== undefined) {
      outcomes = await this.#db.connection().execute((db) => handover.write(db, batch));
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
    const single = this.#handover;
    const wakeups = single ? single.withoutOwnNotifications(notified) : merge(this.#appended, notified);
    const handover = single?.handover();
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
    return this.#run("read", streamId, () => currentVersion(this.#db, streamId));
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
    this.#handover?.close();
    try {
      await this.#notifier?.close();
      await this.#options.notifications?.close();
    } finally {
      await this.#options.onClose?.();
    }
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
      // A lost server connection is already STORE_ERROR (adapters/pg-connection-loss.ts): said again with what failed.
      const lost = isMaqetError(error, "STORE_ERROR") && error.details.reason === "connection-lost";
      if (isMaqetError(error) && !lost) throw error;
      if (isStaleEpochViolation(error)) throw staleEpochError(error);
      const root = lost ? (error as Error).cause : error;
      const reason = root instanceof Error ? root.message : String(root);
      throw new MaqetError(
        "STORE_ERROR",
        `Failed to ${verb} '${subject}' in the event store: ${reason}. ` +
          "Check that the database is reachable and migrated (`maqet migrate`).",
        { cause: root, details: { subject, ...(lost ? { reason: "connection-lost" } : {}) } },
      );
    }
  }
}
