/**
 * The real {@link Clock}: wall-clock milliseconds and an abortable `setTimeout` sleep.
 * Unit tests pass `FakeClock` (test/support/fake-clock.ts) instead, so nothing waits for real.
 */
import type { Clock } from "../actors/ports.ts";
import { abortableSleep } from "../util/abortable-sleep.ts";

export { abortableSleep };

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
