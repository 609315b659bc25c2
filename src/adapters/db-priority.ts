/**
 * Low-priority database work: what runs inside {@link atLowPriority} waits, on the embedded
 * database's one session (src/adapters/pglite-driver.ts), for every statement or transaction
 * that asked for the session outside it. The agent runs its live projections so: an
 * operation's appends are never queued behind a projection's catch-up, only behind the one
 * statement or transaction already running. A PostgreSQL server has a pool of sessions; there
 * the priority means nothing and is ignored.
 *
 * @example
 * ```ts
 * runner.start({ wakeUps, run: atLowPriority });
 * ```
 */
import { AsyncLocalStorage } from "node:async_hooks";

const lane = new AsyncLocalStorage<true>();

/** Runs `work` with every session it asks for taken after the waiting ordinary ones. */
export function atLowPriority<T>(work: () => Promise<T>): Promise<T> {
  return lane.run(true, work);
}

/** True inside {@link atLowPriority}. */
export function isLowPriority(): boolean {
  return lane.getStore() === true;
}
