/**
 * A subscription as one polling loop over the watermarked read: there is no separate live path,
 * so the catch-up → live hand-off cannot duplicate or drop anything. One cursor (a
 * {@link Checkpoint}) moves forward through the store's read order; every page is read after it.
 *
 * The loop reads pages back to back while they come back full. Once a page comes back short, the
 * subscription has read everything readable: it emits `caughtUp` (the first time only) and
 * waits, either for a wake-up (a NOTIFY, or an append through this store) or for its poll timer,
 * whichever comes first. The timer starts at `minPollMs` and doubles up to `maxPollMs` while
 * nothing happens; any event or wake-up resets it. So notifications only make delivery fast:
 * losing them (a dropped LISTEN connection, a NOTIFY sent while reconnecting) delays delivery by
 * at most `maxPollMs`, and loses nothing.
 *
 * Handed-over events (an embedded single-session store only, {@link Handover}): at commit the
 * store passes its own appends' events to the loop, which delivers them without a read when they
 * directly follow its cursor in read order (the store says so: `follows`), and otherwise treats
 * them as a wake-up and reads. It is the same cursor moving through the same order, so a later
 * read that returns them again skips them (nothing at or before the cursor is delivered twice).
 *
 * Read failures are retried with back-off for `retryReadsForMs`, then the observable errors.
 * Time comes from the injected clock, so tests run the loop in virtual time.
 *
 * @example
 * ```ts
 * const sub$ = pollingSubscription(reader, { from: "start" }, { clock: timerClock, wakeups: NEVER });
 * sub$.subscribe((m) => console.log(m.kind));
 * ```
 */
import { Observable } from "rxjs";
import { MaqetError } from "../errors/maqet-error.ts";
import { type Checkpoint, compareCheckpoints, isCheckpoint } from "./checkpoint.ts";
import { categoryOf, type StoredEvent } from "./envelope.ts";
import type { EventFilter, SubscribeOptions, SubscriptionMessage } from "./event-store.ts";
import type { SleepClock } from "./notifications.ts";
import type { EventPage } from "./read-all.ts";

/** What the loop needs from a store: three reads. */
export interface SubscriptionReader {
  /** Events after `after` (undefined: from the start) in read order, at most `limit`, and the head. */
  readPage(after: Checkpoint | undefined, limit: number, filter: EventFilter): Promise<EventPage>;
  /** The checkpoint of the last readable event, or null. */
  head(): Promise<Checkpoint | null>;
  /** The checkpoint of the event at `position` (or the nearest one below), or null. */
  checkpointAt(position: number): Promise<Checkpoint | null>;
}

export interface PollingOptions {
  clock: SleepClock;
  /** Anything emitted here makes the loop read now (NOTIFY wake-ups, local appends). */
  wakeups: Observable<unknown>;
  /** First poll delay after activity (default 2 ms). */
  minPollMs?: number;
  /** Longest poll delay when idle (default 1000 ms): the most a lost notification delays delivery. */
  maxPollMs?: number;
  /** How long failing reads are retried before the subscription errors (default 30 s). */
  retryReadsForMs?: number;
  /** True once the store is closed: the subscription then completes instead of erroring. */
  isClosed?: () => boolean;
  /** Committed events the store hands over at commit (embedded single-session store only). */
  handover?: Handover;
}

/** One append's committed events, in read order, each with its checkpoint. */
export type HandedOverEvents = ReadonlyArray<{ readonly event: StoredEvent; readonly checkpoint: Checkpoint }>;

/**
 * Events handed to the loop at commit, so that a live subscription delivers them without reading
 * them back. Only sound where the store can prove adjacency in read order without a read: on a
 * database that is one session in this process (PGlite), see PostgresEventStore's
 * `singleSession`.
 */
export interface Handover {
  /** Each emission: one committed append's events, emitted before any later statement runs. */
  readonly batches: Observable<HandedOverEvents>;
  /**
   * True only when `next` comes directly after `cursor` in read order, with no event (of any
   * stream) between them. `cursor` is always the checkpoint of an event (or the head) the loop
   * got from the store.
   */
  follows(cursor: Checkpoint, next: Checkpoint): boolean;
}

export const DEFAULT_BATCH_SIZE = 500;

/**
 * The subscription observable (cold: each subscriber gets its own loop and cursor).
 *
 * @example
 * ```ts
 * pollingSubscription(reader, { from: checkpoint, filter: { category: "vm" } }, { clock, wakeups });
 * ```
 */
export function pollingSubscription(
  reader: SubscriptionReader,
  options: SubscribeOptions,
  polling: PollingOptions,
): Observable<SubscriptionMessage> {
  const from = options.from ?? "start";
  const filter = options.filter ?? {};
  const limit = options.batchSize ?? DEFAULT_BATCH_SIZE;
  validate(from, limit);
  const minPollMs = polling.minPollMs ?? 2;
  const maxPollMs = Math.max(minPollMs, polling.maxPollMs ?? 1000);
  const retryReadsForMs = polling.retryReadsForMs ?? 30_000;
  const isClosed = polling.isClosed ?? (() => false);

  return new Observable<SubscriptionMessage>((subscriber) => {
    const stop = new AbortController();
    /** Set by a wake-up; the loop reads again before it sleeps. */
    let woken = false;
    /** Aborted by a wake-up to cut the current sleep short. */
    let nap: AbortController | undefined;
    const wake = (): void => {
      woken = true;
      nap?.abort();
    };
    const wakeups = polling.wakeups.subscribe({
      next: wake,
      error: () => {}, // a wake-up source that fails leaves polling, which is the truth anyway
    });

    /** Where the loop stands in read order (undefined: before the first event). */
    let cursor: Checkpoint | undefined;
    /** The cursor is a checkpoint the store gave this loop (not one the caller made up). */
    let cursorFromStore = false;
    let caughtUp = false;
    const handover = polling.handover;
    const handovers = handover?.batches.subscribe({
      next: (batch) => {
        if (stop.signal.aborted) return;
        let i = 0;
        // Live only: before caughtUp the loop is reading pages anyway, and a caller's checkpoint
        // proves nothing about what lies between it and the handed-over events.
        if (caughtUp && cursorFromStore && cursor !== undefined) {
          for (; i < batch.length; i++) {
            const { event, checkpoint } = batch[i]!;
            if (compareCheckpoints(checkpoint, cursor) <= 0) continue; // already read
            if (!handover!.follows(cursor, checkpoint)) break;
            cursor = checkpoint;
            if (matches(event, filter)) subscriber.next({ kind: "event", event, checkpoint });
            if (stop.signal.aborted) return;
          }
        }
        if (i < batch.length) wake(); // not provably next: read it
      },
      error: () => {},
    });

    const sleep = async (ms: number, interruptible: boolean): Promise<void> => {
      const controller = new AbortController();
      const onStop = () => controller.abort();
      stop.signal.addEventListener("abort", onStop, { once: true });
      if (interruptible) nap = controller;
      try {
        await polling.clock.sleep(ms, controller.signal);
      } catch {
        // woken or stopped: the loop looks at why
      } finally {
        stop.signal.removeEventListener("abort", onStop);
        if (nap === controller) nap = undefined;
      }
    };

    const run = async (): Promise<void> => {
      cursor = await start(reader, from);
      cursorFromStore = typeof from !== "object";
      let delay = minPollMs;
      let failingFor = 0;
      let retryDelay = 100;
      while (!stop.signal.aborted) {
        woken = false;
        let page: EventPage;
        try {
          page = await reader.readPage(cursor, limit, filter);
          failingFor = 0;
          retryDelay = 100;
        } catch (error) {
          if (stop.signal.aborted || isClosed()) return;
          if (failingFor >= retryReadsForMs) throw error;
          await sleep(retryDelay, false);
          failingFor += retryDelay;
          retryDelay = Math.min(retryDelay * 2, 5_000);
          continue;
        }
        if (stop.signal.aborted) return;
        // Events handed over while this page was being read moved the cursor on from where the
        // read started, and were delivered: they are a prefix of the page (both follow the
        // cursor in read order), skipped here.
        let first = 0;
        const now = cursor;
        if (handover !== undefined && now !== undefined) {
          while (first < page.events.length && compareCheckpoints(page.events[first]!.checkpoint, now) <= 0) first++;
        }
        for (let i = first; i < page.events.length; i++) {
          const { event, checkpoint } = page.events[i]!;
          subscriber.next({ kind: "event", event, checkpoint });
          cursor = checkpoint;
          cursorFromStore = true;
          if (stop.signal.aborted) return;
        }
        if (page.events.length >= limit) {
          delay = minPollMs;
          continue; // more may be readable right now
        }
        // A short page: everything readable in that snapshot has been read, including what the
        // filter skipped, so the cursor may move to the head of the same snapshot.
        if (page.head !== null && (cursor === undefined || compareCheckpoints(page.head, cursor) > 0)) {
          cursor = page.head;
          cursorFromStore = true;
        }
        if (!caughtUp) {
          caughtUp = true;
          subscriber.next({ kind: "caughtUp", checkpoint: cursor ?? null });
          if (stop.signal.aborted) return;
        }
        if (page.events.length > 0) delay = minPollMs;
        if (woken) {
          delay = minPollMs;
          continue;
        }
        await sleep(delay, true);
        if (woken) delay = minPollMs;
        else delay = Math.min(delay * 2, maxPollMs);
      }
    };

    run().then(
      () => {
        if (!stop.signal.aborted) subscriber.complete();
      },
      (error: unknown) => {
        if (stop.signal.aborted) return;
        if (isClosed()) subscriber.complete();
        else subscriber.error(error);
      },
    );

    return () => {
      stop.abort();
      wakeups.unsubscribe();
      handovers?.unsubscribe();
    };
  });
}

async function start(reader: SubscriptionReader, from: SubscribeOptions["from"]): Promise<Checkpoint | undefined> {
  if (from === undefined || from === "start" || from === 0) return undefined;
  if (from === "end") return (await reader.head()) ?? undefined;
  if (typeof from === "number") return (await reader.checkpointAt(from)) ?? undefined;
  return from;
}

/** The subscription filter in JavaScript, as read-all.ts applies it in SQL. */
function matches(event: StoredEvent, filter: EventFilter): boolean {
  if (filter.category !== undefined && categoryOf(event.streamId) !== filter.category) return false;
  if (filter.streamId !== undefined && event.streamId !== filter.streamId) return false;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  return true;
}

function validate(from: SubscribeOptions["from"], limit: number): void {
  const fromOk =
    from === "start" ||
    from === "end" ||
    (typeof from === "number" && Number.isSafeInteger(from) && from >= 0) ||
    isCheckpoint(from);
  if (!fromOk) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid subscription start ${JSON.stringify(from)}: use "start", "end", a position >= 0 or a checkpoint {transactionId, position}.`,
      { details: { from } },
    );
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new MaqetError("INVALID_ARGUMENT", `Invalid batchSize ${String(limit)}: use an integer >= 1.`, {
      details: { batchSize: limit },
    });
  }
}
