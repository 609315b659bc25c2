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
    const wakeups = polling.wakeups.subscribe({
      next: () => {
        woken = true;
        nap?.abort();
      },
      error: () => {}, // a wake-up source that fails leaves polling, which is the truth anyway
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
      let cursor = await start(reader, from);
      let caughtUp = false;
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
        for (const { event, checkpoint } of page.events) {
          subscriber.next({ kind: "event", event, checkpoint });
          cursor = checkpoint;
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
    };
  });
}

async function start(reader: SubscriptionReader, from: SubscribeOptions["from"]): Promise<Checkpoint | undefined> {
  if (from === undefined || from === "start" || from === 0) return undefined;
  if (from === "end") return (await reader.head()) ?? undefined;
  if (typeof from === "number") return (await reader.checkpointAt(from)) ?? undefined;
  return from;
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
