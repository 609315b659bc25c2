/**
 * The real crash hook (test only): at the chosen crash point the process SIGKILLs itself, so
 * nothing after it runs, no `finally`, no `exit` listener. The name is checked once, when the hook
 * is made: an unknown point is an error (a typo would silently test nothing). See
 * src/util/crash-points.ts and docs/crash-points.md.
 *
 * @example
 * ```ts
 * const crash = crashHookFor(env.MAQET_CRASH_AT); // noCrash when unset
 * crash("lock.linked");
 * ```
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { MaqetError } from "../errors/maqet-error.ts";
import { CRASH_POINTS, type CrashHook, isCrashPoint, noCrash } from "../util/crash-points.ts";

/**
 * A hook that kills this process at `point` (every time it is reached), or {@link noCrash} when
 * `point` is undefined or empty. Throws INVALID_ARGUMENT for a name the registry does not know.
 *
 * @example
 * ```ts
 * createMaqet({ crashAt: "snapshot.requested" }); // the facade calls crashHookFor for you
 * ```
 */
export function crashHookFor(point: string | undefined): CrashHook {
  if (point === undefined || point === "") return noCrash;
  if (!isCrashPoint(point)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Unknown crash point '${point}' (MAQET_CRASH_AT). Known points: ${Object.keys(CRASH_POINTS).join(", ")}. See docs/crash-points.md.`,
      { details: { point } },
    );
  }
  return (at) => {
    if (at !== point) return;
    try {
      // Says where it died, for whoever reads the test's output; stderr is unbuffered.
      writeSync(2, `maqet: crash point ${at}: killing pid ${process.pid}\n`);
    } catch {
      // A closed stderr must not keep it alive.
    }
    process.kill(process.pid, "SIGKILL");
  };
}
