/**
 * A manual {@link Clock} for unit tests: time moves only when the test calls `advance`, so
 * timeouts, polling and back-off are tested in microseconds of real time.
 */
import type { Clock } from "../../src/actors/ports.ts";

interface Sleeper {
  wakeAt: number;
  /** Insertion order: sleepers due at the same instant wake first-come, first-served. */
  seq: number;
  resolve: () => void;
}

/** Lets every pending promise continuation run (a macrotask turn, not a timer: time stays put). */
function flushContinuations(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock whose `now()` starts at `start` and only moves forward through {@link FakeClock.advance}.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * const done = clock.sleep(100).then(() => clock.now());
 * await clock.advance(100);
 * expect(await done).toBe(100);
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Number of sleeps currently waiting: lets a test wait until the code under test is idle. */
  get pendingSleeps(): number {
    return this.#sleepers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const sleeper: Sleeper = {
        wakeAt: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(sleeper);
    });
  }

  /**
   * Moves time forward by `ms`, waking due sleepers one at a time in deadline order. `now()` reads
   * each sleeper's own deadline when it wakes, and continuations run before the next one wakes, so
   * a sleeper that sleeps again inside the window is woken in the same call.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flushContinuations();
    for (;;) {
      const next = this.#nextDue(target);
      if (next === undefined) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      this.#now = next.wakeAt;
      next.resolve();
      await flushContinuations();
    }
    this.#now = target;
    await flushContinuations();
  }

  /** Waits (in real turns, not time) until at least `count` sleeps are pending. */
  async untilSleeping(count = 1, maxTurns = 1_000): Promise<void> {
    for (let turn = 0; this.#sleepers.length < count; turn++) {
      if (turn >= maxTurns)
        throw new Error(`FakeClock: expected ${count} pending sleep(s), have ${this.#sleepers.length}`);
      await flushContinuations();
    }
  }

  #nextDue(target: number): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.#sleepers) {
      if (s.wakeAt > target) continue;
      if (best === undefined || s.wakeAt < best.wakeAt || (s.wakeAt === best.wakeAt && s.seq < best.seq)) best = s;
    }
    return best;
  }
}
