/**
 * The live side of the projection runner: keeps projections caught up in a long-lived process.
 * Each projection gets a loop that catches up, then waits for a wake-up (any emission of
 * `wakeUps`, e.g. the store's appended$ or a subscription) or the poll interval, whichever
 * comes first. Polling is the truth: a lost wake-up delays an event by one interval at most.
 * After a failure it waits longer each time (the projection stays stalled at its failing event
 * meanwhile, nothing is skipped), then tries again.
 *
 * @example
 * ```ts
 * const live = new LiveLoop((name, signal) => runner.catchUp(name, { signal }), ["vms"], { wakeUps: store.appended$ });
 * await live.stop();
 * ```
 */
import type { Observable, Subscription } from "rxjs";

/** How {@link LiveLoop} (and `ProjectionRunner.start`) run. */
export interface LiveOptions {
  /** Wake-ups: any emission starts a catch-up now (e.g. the store's appended$). */
  wakeUps?: Observable<unknown>;
  /** How often to poll when nothing wakes the loop. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Longest wait between attempts after a failure (doubling from the poll interval). Default 60 s. */
  maxBackoffMs?: number;
  /** Receives each failed attempt (the error is also recorded in the checkpoint row). */
  onError?: (error: unknown, projection: string) => void;
  /**
   * After a wake-up, wait until none has come for this long (default 0: catch up at once), but
   * no longer than {@link maxDelayMs} from the wake-up: a burst of appends (an operation's
   * request and outcome, a stream of QMP calls) is then applied in one batch after it, not one
   * transaction per append queued in front of the burst's next append. Readers that need the
   * rows fresh catch up inline (`ProjectionRunner.catchUp`), so the delay is not theirs.
   */
  quietMs?: number;
  /** The longest a wake-up waits for quiet (default 10 × `quietMs`). */
  maxDelayMs?: number;
  /**
   * How each catch-up runs; e.g. at low priority on the database, behind the operations'
   * statements (src/adapters/db-priority.ts). Default: as it is.
   */
  run?: <T>(work: () => Promise<T>) => Promise<T>;
}

/**
 * One catch-up loop per projection name until {@link LiveLoop.stop}.
 *
 * @example
 * ```ts
 * const live = new LiveLoop(catchUp, ["vms"], { pollIntervalMs: 500 });
 * ```
 */
export class LiveLoop {
  readonly #abort = new AbortController();
  readonly #loops: Promise<void>[];
  readonly #wakeUps: Subscription | undefined;

  constructor(
    catchUp: (name: string, signal: AbortSignal) => Promise<unknown>,
    names: readonly string[],
    options: LiveOptions = {},
  ) {
    const wake = new Wake();
    this.#wakeUps = options.wakeUps?.subscribe({ next: () => wake.ring(), error: () => {} });
    this.#loops = names.map((name) => loop(catchUp, name, options, wake, this.#abort.signal));
  }

  /** Stops every loop; resolves when their current catch-ups are over. */
  async stop(): Promise<void> {
    this.#wakeUps?.unsubscribe();
    this.#abort.abort();
    await Promise.all(this.#loops);
  }
}

async function loop(
  catchUp: (name: string, signal: AbortSignal) => Promise<unknown>,
  name: string,
  options: LiveOptions,
  wake: Wake,
  signal: AbortSignal,
): Promise<void> {
  const poll = options.pollIntervalMs ?? 1000;
  const maxBackoff = options.maxBackoffMs ?? 60_000;
  const quiet = options.quietMs ?? 0;
  let backoff = 0;
  while (!signal.aborted) {
    const rung = wake.count;
    try {
      await (options.run ? options.run(() => catchUp(name, signal)) : catchUp(name, signal));
      backoff = 0;
    } catch (error) {
      if (signal.aborted) break;
      backoff = Math.min(maxBackoff, backoff === 0 ? poll : backoff * 2);
      options.onError?.(error, name);
    }
    // A wake-up during the catch-up means there may be more: go again (unless failing).
    if (backoff !== 0 || wake.count === rung) await wake.wait(backoff || poll, signal);
    if (backoff === 0 && quiet > 0 && wake.count !== rung)
      await wake.quiet(quiet, options.maxDelayMs ?? quiet * 10, signal);
  }
}

/** A wake-up bell: `ring()` ends the current and the next `wait()`. */
class Wake {
  count = 0;
  #waiters: Array<() => void> = [];
  ring(): void {
    this.count++;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#waiters.push(done);
    });
  }
  /** Resolves once no ring came for `quietMs`, or `maxMs` from now, whichever is first. */
  async quiet(quietMs: number, maxMs: number, signal: AbortSignal): Promise<void> {
    const until = performance.now() + maxMs;
    for (;;) {
      const left = until - performance.now();
      if (left <= 0 || signal.aborted) return;
      const rung = this.count;
      await this.wait(Math.min(quietMs, left), signal);
      if (this.count === rung) {
        // The wait ended by its timer (or the abort): quiet for quietMs.
        return;
      }
    }
  }
}
