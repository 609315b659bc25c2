/**
 * The hand-over on a single-session database (PGlite: one statement or transaction at a time, in
 * this process): an append group runs holding the session, and its committed events go straight
 * to the store's live subscriptions, in position order, before any later statement can run; they
 * are not read back. With one session, transactions never overlap, so read order is position
 * order and adjacency can be proven without a read ({@link followsInOneSession}).
 *
 * The NOTIFYs such a group sends arrive while it holds the session; the subscriptions drop them
 * ({@link SessionHandover.withoutOwnNotifications}): the hand-over replaces them.
 *
 * @example
 * ```ts
 * const handover = new SessionHandover({ inTransaction: () => pglite.isInTransaction() });
 * const outcomes = await db.connection().execute((session) => handover.write(session, batch));
 * ```
 */
import type { Kysely } from "kysely";
import { filter, type Observable, Subject } from "rxjs";
import { type GroupedAppend, type GroupedOutcome, writeAppends } from "./append-group.ts";
import type { Checkpoint } from "./checkpoint.ts";
import type { StoredEvent } from "./envelope.ts";
import { asJsonb } from "./jsonb-order.ts";
import type { Wakeup } from "./notifications.ts";
import type { Database } from "./schema.ts";
import type { HandedOverEvents, Handover } from "./subscription.ts";

/** What the store needs to know about a single-session database. */
export interface SingleSession {
  /** True while the session is inside a transaction block (PGlite: `isInTransaction()`). */
  inTransaction(): boolean;
}

/**
 * Hands each committed append group of one store to its live subscriptions.
 *
 * @example
 * ```ts
 * pollingSubscription(reader, options, { ..., wakeups: handover.withoutOwnNotifications(notified), handover: handover.handover() });
 * ```
 */
export class SessionHandover {
  readonly #session: SingleSession;
  /** Each committed group's events, emitted while the session is held. */
  readonly #batches = new Subject<HandedOverEvents>();
  /** The streams an append group of this store is writing right now. */
  readonly #appendingTo = new Set<string>();

  /** Told of each written group's events first, before any subscription (the store's `appended$`). */
  readonly #onWritten: (events: readonly StoredEvent[]) => void;

  constructor(session: SingleSession, onWritten: (events: readonly StoredEvent[]) => void = () => {}) {
    this.#session = session;
    this.#onWritten = onWritten;
  }

  /**
   * Writes a group on `db`, the held session, in arrival order, and hands its events over: no
   * other statement can run between the group's commit and the hand-over, so the subscriptions
   * see its events (in position order) before anything that commits after them.
   */
  async write(db: Kysely<Database>, batch: readonly GroupedAppend[]): Promise<GroupedOutcome[]> {
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
    // What this process keeps of the store (a cached VM list) learns of the events before a
    // subscriber, which may act on them at once, can ask it.
    if (written.length > 0) this.#onWritten(written.map((w) => w.event));
    if (written.length > 0 && this.#batches.observed) {
      // Committed unless someone left the session inside a transaction block (a raw BEGIN
      // outside the driver's transactions): then the events are not handed over but read once
      // committed; the empty batch makes every live subscription read, as a NOTIFY would.
      const committed = !this.#session.inTransaction();
      this.#batches.next(committed ? written.sort((a, b) => a.event.globalPosition - b.event.globalPosition) : []);
    }
    return outcomes;
  }

  /** `notified` without the NOTIFYs of this store's own appends (they arrive while the append holds the session). */
  withoutOwnNotifications(notified: Observable<Wakeup>): Observable<Wakeup> {
    return notified.pipe(
      filter((w) => !(w.reason === "notification" && w.payload !== undefined && this.#appendingTo.has(w.payload))),
    );
  }

  /** The hand-over a subscription loop takes (src/events/subscription.ts). */
  handover(): Handover {
    return { batches: this.#batches, follows: (cursor, next) => followsInOneSession(cursor, next) };
  }

  /** Completes the hand-over stream (the store is closing). */
  close(): void {
    this.#batches.complete();
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
