/**
 * Waiting for a process to be gone (ProcessControl's `waitGone`): probes at 1, 2, 4 … ms up to
 * the poll interval, and, for our own child, looks again as soon as its exit event comes.
 *
 * @example
 * ```ts
 * const gone = await waitUntilGone(() => probe(pid, vmId), { clock: systemClock, pollIntervalMs: 20, timeoutMs: 5000, exited: launched.exit });
 * ```
 */
import type { Clock, ProcessState } from "../actors/ports.ts";

export interface WaitGoneOptions {
  clock: Clock;
  /** The longest nap between two probes. */
  pollIntervalMs: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Settles when our own child has exited (a LaunchedProcess's `exit`): ends a nap at once. */
  exited?: Promise<unknown> | undefined;
}

/** True once `probe` is no longer `alive`; false when the timeout passes first. */
export async function waitUntilGone(probe: () => ProcessState, options: WaitGoneOptions): Promise<boolean> {
  const { clock, pollIntervalMs, signal, exited } = options;
  const deadline = clock.now() + Math.max(0, options.timeoutMs);
  // 1, 2, 4 … ms up to pollIntervalMs: a SIGKILLed process is gone within a millisecond or two,
  // and `stop --force` should not pay a whole poll interval for it. Our own child's exit event
  // (`exited`) ends a nap at once: QEMU takes 3-4 ms to die of SIGKILL, which the probes at
  // 1, 3 and 7 ms would see only at 7.
  let step = 1;
  for (;;) {
    signal?.throwIfAborted();
    if (probe() !== "alive") return true;
    const left = deadline - clock.now();
    if (left <= 0) return false;
    await nap(clock, Math.min(step, pollIntervalMs, left), signal, exited);
    step *= 2;
  }
}

/** Sleeps `ms`, or less when `exited` settles first (its timer is then cleared). */
async function nap(
  clock: Clock,
  ms: number,
  signal: AbortSignal | undefined,
  exited: Promise<unknown> | undefined,
): Promise<void> {
  if (exited === undefined) return clock.sleep(ms, signal);
  const wake = new AbortController();
  const forward = (): void => wake.abort(signal?.reason);
  signal?.addEventListener("abort", forward, { once: true });
  const woken = (): void => wake.abort();
  exited.then(woken, woken);
  try {
    await clock.sleep(ms, wake.signal);
  } catch (error) {
    signal?.throwIfAborted();
    if (!wake.signal.aborted) throw error;
  } finally {
    signal?.removeEventListener("abort", forward);
  }
}
