/**
 * One batch of a projection: its events applied and its checkpoint moved in ONE transaction, only
 * if the checkpoint (locked for the transaction) is still where the batch was read from. A crash,
 * a kill or a throw therefore leaves rows and checkpoint agreeing. When the projection throws,
 * the batch is retried one event per transaction, so the events before the failing one are kept;
 * then the stall is recorded and PROJECTION_FAILED thrown.
 *
 * @example
 * ```ts
 * const outcome = await commitBatch({ db, projection, context, crash }, checkpoint, events);
 * if (!outcome.committed) checkpoint = outcome.checkpoint; // another runner moved it
 * ```
 */
import type { Kysely } from "kysely";
import { isMaqetError } from "../../errors/maqet-error.ts";
import type { CrashHook } from "../../util/crash-points.ts";
import type { StoredEvent } from "../envelope.ts";
import {
  advanceCheckpoint,
  type ProjectionCheckpoint,
  readEnsuredCheckpoint,
  recordStall,
} from "./checkpoint-store.ts";
import type { Projection, ProjectionContext } from "./projection.ts";
import { ApplyError, reasonOf, stalledError, storeCall } from "./projection-errors.ts";

/** Committed: the checkpoint this runner now holds; not: the checkpoint someone else left. */
export type BatchOutcome = { committed: boolean; checkpoint: ProjectionCheckpoint };

/** What a batch is written for: the database, the projection and its context, the crash hook. */
export interface BatchTarget {
  // biome-ignore lint/suspicious/noExplicitAny: projections bring their own tables
  db: Kysely<any>;
  projection: Projection;
  context: ProjectionContext;
  crash: CrashHook;
}

/**
 * Applies `batch` and moves the checkpoint in one transaction, if the checkpoint is still at
 * `from` (see the file's comment for a projection that throws).
 */
export async function commitBatch(
  target: BatchTarget,
  from: ProjectionCheckpoint,
  batch: readonly StoredEvent[],
): Promise<BatchOutcome> {
  const { db, projection, context } = target;
  try {
    return await applyInTransaction(target, from, batch);
  } catch (error) {
    // Rolled back: whatever apply remembered of this batch never reached the rows.
    context.state.clear();
    if (!(error instanceof ApplyError)) {
      return storeCall(`commit a batch of projection '${projection.name}'`, () => Promise.reject(error));
    }
    if (batch.length === 1) {
      const event = batch[0]!;
      const reason = reasonOf(error.cause).replace(/\.+$/, "");
      const message = `${reason} (applying ${event.type} at position ${event.globalPosition}, stream ${event.streamId})`;
      await recordStall(db, projection.name, event.globalPosition, message).catch(() => {});
      throw stalledError(projection, event, reason, error.cause);
    }
    let at = from;
    for (const event of batch) {
      const outcome = await commitBatch(target, at, [event]);
      if (!outcome.committed) return outcome;
      at = outcome.checkpoint;
    }
    return { committed: true, checkpoint: at };
  }
}

async function applyInTransaction(
  { db, projection, context, crash }: BatchTarget,
  from: ProjectionCheckpoint,
  batch: readonly StoredEvent[],
): Promise<BatchOutcome> {
  return db.transaction().execute(async (trx) => {
    const locked = await readEnsuredCheckpoint(trx, projection.name, { forUpdate: true });
    if (!sameCheckpoint(locked, from)) return { committed: false, checkpoint: locked };
    const wanted = projection.handles ? batch.filter((e) => projection.handles!(e.type)) : batch;
    if (wanted.length > 0) {
      try {
        await projection.apply(trx, wanted, context);
      } catch (cause) {
        // The server went away under it (adapters/pg-connection-loss.ts): the store failed, not
        // the projection; stalled at this event for that, it stayed stalled after a restart.
        if (isMaqetError(cause, "STORE_ERROR") && cause.details.reason === "connection-lost") throw cause;
        throw new ApplyError(cause);
      }
    }
    crash("projection.batch-written");
    const last = batch.at(-1)!.globalPosition;
    await advanceCheckpoint(trx, projection.name, last, batch.length);
    return { committed: true, checkpoint: { ...locked, position: last } };
  });
}

/**
 * The same checkpoint as far as the rows are concerned: nobody applied, rebuilt or upgraded
 * since (the rebuild time tells a rebuild that came back to the same position).
 */
function sameCheckpoint(a: ProjectionCheckpoint, b: ProjectionCheckpoint): boolean {
  return a.position === b.position && a.version === b.version && a.rebuiltAt?.getTime() === b.rebuiltAt?.getTime();
}
