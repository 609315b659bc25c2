/**
 * Catching a projection up past every event the test has committed, on a shared PostgreSQL
 * cluster too. `catchUp` applies what lies below the transaction-id watermark, and the watermark
 * is cluster-wide: any session of any database on the cluster (another test file's append, say)
 * with a transaction open when the test's last append committed holds those events back until it
 * ends. This catches up until nothing committed is left behind the checkpoint, and when that does
 * not happen in time, fails naming the transaction that holds delivery back.
 *
 * @example
 * ```ts
 * await catchUpFully(runner, "vms", t.db);
 * ```
 */
import type { Kysely } from "kysely";
import { readDeliveryHold } from "../../src/events/delivery-hold.ts";
import type { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import type { Database } from "../../src/events/schema.ts";
import { WaitTimeoutError, waitUntil } from "./poll.ts";

/**
 * Catches `name` up until its lag is 0 events (default: within 60 s); throws with the lag and the
 * holder of the watermark otherwise.
 */
export async function catchUpFully(
  runner: ProjectionRunner,
  name: string,
  db: Kysely<Database>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  try {
    await waitUntil(
      `projection ${name} to catch up with every committed event`,
      async () => {
        await runner.catchUp(name);
        return (await runner.lag(name)).eventsBehind;
      },
      (behind) => behind === 0,
      { timeoutMs, everyMs: 50 },
    );
  } catch (error) {
    if (!(error instanceof WaitTimeoutError)) throw error;
    const hold = await readDeliveryHold(db).catch((e: unknown) => `unreadable: ${String(e)}`);
    throw new Error(`${error.message}; delivery hold: ${JSON.stringify(hold)}`);
  }
}
