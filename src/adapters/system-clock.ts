/**
 * The real {@link Clock}: wall-clock milliseconds and an abortable `setTimeout` sleep.
 * Unit tests pass `FakeClock` (test/support/fake-clock.ts) instead, so nothing waits for real.
 */
import type { Clock } from "../actors/ports.ts";

/**
 * Sleeps `ms` milliseconds; rejects with `signal.reason` as soon as the signal aborts (also when
 * it is already aborted), and clears its timer so an aborted sleep holds nothing open.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * setTimeout(() => ac.abort(), 10);
 * await abortableSleep(1_000, ac.signal).catch((e) => e); // the abort reason, after ~10 ms
 * ```
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The process-wide real clock.
 *
 * @example
 * ```ts
 * const started = systemClock.now();
 * await systemClock.sleep(20, signal);
 * console.log(systemClock.now() - started); // >= 20
 * ```
 */
export const systemClock: Clock = Object.freeze({
  now: (): number => Date.now(),
  sleep: abortableSleep,
});
