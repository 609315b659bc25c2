/**
 * An abortable sleep on web-standard timers: pure enough for the core (src/events uses it for
 * its polling loop) and the adapters (the real Clock) alike, so there is one implementation.
 */
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
