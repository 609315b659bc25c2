/**
 * The one polling helper of the suite: read a value until it satisfies a condition, and when
 * time runs out fail with what was awaited and the last value seen (not "expected false to be
 * true"). For real processes only; unit tests advance a simulated clock instead.
 *
 * @example
 * ```ts
 * const status = await waitUntil("web to stop", () => maqet.status("web"), (s) => s.state === "stopped");
 * ```
 */
import { inspect } from "node:util";

export interface WaitOptions {
  /** How long to keep reading (default 5 s). */
  timeoutMs?: number;
  /** Pause between reads (default 50 ms). */
  everyMs?: number;
}

/** The probe's last value satisfied nothing within the time limit. */
export class WaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly last: unknown,
  ) {
    super(`waited ${timeoutMs} ms for ${what}; last seen: ${describe(last)}`);
    this.name = "WaitTimeoutError";
  }
}

/**
 * Reads `probe` until `until(value)` holds and returns that value; throws a
 * {@link WaitTimeoutError} naming `what` and the last value (or the probe's last error).
 * `until` defaults to "truthy".
 *
 * @example
 * ```ts
 * await waitUntil("the holder to exit", async () => !(await processAlive(pid)));
 * ```
 */
export async function waitUntil<T>(
  what: string,
  probe: () => T | Promise<T>,
  until: (value: T) => boolean = Boolean,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (until(value)) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) throw new WaitTimeoutError(what, timeoutMs, last);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return inspect(value, { depth: 4, breakLength: Number.POSITIVE_INFINITY, maxStringLength: 2_000 });
}

/**
 * Reads until `read` gives something other than undefined and returns it; throws like
 * {@link waitUntil}. For facts real processes produce (a pid file, a socket, a greeting).
 *
 * @example
 * ```ts
 * const pid = await waitForValue("QEMU's pid file", () => pc.readPidFile(pidFile));
 * ```
 */
export async function waitForValue<T>(
  what: string,
  read: () => T | undefined | Promise<T | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  return (await waitUntil(what, read, (value) => value !== undefined, { everyMs: 5, ...options })) as T;
}
