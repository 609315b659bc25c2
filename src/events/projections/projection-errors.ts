/**
 * How a projection run fails, and whose fault it is: the projection's own code throwing
 * ({@link ApplyError}, which stalls the projection at that event: PROJECTION_FAILED), the database
 * failing around it ({@link storeCall}: STORE_ERROR), or rows built by a newer maqet
 * ({@link assertNotNewer}: PROJECTION_FAILED, the database left untouched).
 *
 * @example
 * ```ts
 * const checkpoint = await storeCall("read the checkpoint of projection 'vms'", () => readCheckpoint(db, "vms"));
 * ```
 */
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import type { StoredEvent } from "../envelope.ts";
import type { ProjectionCheckpoint } from "./checkpoint-store.ts";
import type { Projection } from "./projection.ts";

/**
 * The projection's own code threw (as opposed to the database failing around it).
 *
 * @example
 * ```ts
 * try { await projection.apply(trx, events, context); } catch (cause) { throw new ApplyError(cause); }
 * ```
 */
export class ApplyError extends Error {
  constructor(cause: unknown) {
    super(reasonOf(cause), { cause });
  }
}

/**
 * An error's message, or the thrown value as a string.
 *
 * @example
 * ```ts
 * reasonOf(new Error("no such table")); // "no such table"
 * ```
 */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs a database call; anything that is not already a MaqetError becomes STORE_ERROR saying
 * what failed (`what`: "read the checkpoint of projection 'vms'").
 *
 * @example
 * ```ts
 * await storeCall(`prepare projection '${name}'`, () => ensureCheckpoint(db, name));
 * ```
 */
export async function storeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    // A lost server connection is already STORE_ERROR (adapters/pg-connection-loss.ts): said again with what failed.
    const lost = isMaqetError(error, "STORE_ERROR") && error.details.reason === "connection-lost";
    if (isMaqetError(error) && !lost) throw error;
    const root = lost ? (error as Error).cause : error;
    throw new MaqetError(
      "STORE_ERROR",
      `Failed to ${what}: ${reasonOf(root)}. Check that the database is reachable and migrated (\`maqet migrate\`).`,
      { cause: root, ...(lost ? { details: { reason: "connection-lost" } } : {}) },
    );
  }
}

/**
 * Refuses rows built by a newer version of the projection than this maqet knows.
 *
 * @example
 * ```ts
 * assertNotNewer(projection, locked); // PROJECTION_FAILED when locked.version > projection.version
 * ```
 */
export function assertNotNewer(projection: Projection, checkpoint: ProjectionCheckpoint): void {
  if (checkpoint.version <= projection.version) return;
  throw new MaqetError(
    "PROJECTION_FAILED",
    `Projection '${projection.name}' was built by a newer maqet (projection version ${checkpoint.version}; ` +
      `this one knows up to ${projection.version}). Upgrade maqet to read this database; it is left untouched.`,
    { details: { projection: projection.name, builtVersion: checkpoint.version, version: projection.version } },
  );
}

/**
 * PROJECTION_FAILED for a projection stopped at `event` because of `cause` (`reason`: its
 * message without a final period): its rows and checkpoint stay at the event before, nothing
 * was skipped.
 *
 * @example
 * ```ts
 * throw stalledError(projection, event, reasonOf(cause).replace(/\.+$/, ""), cause);
 * ```
 */
export function stalledError(projection: Projection, event: StoredEvent, reason: string, cause: unknown): MaqetError {
  return new MaqetError(
    "PROJECTION_FAILED",
    `Projection '${projection.name}' stopped at event ${event.globalPosition} (${event.type} in ${event.streamId}): ` +
      `${reason}. Its rows and checkpoint stay at the event before; nothing was skipped. ` +
      "Fix the cause and catch up again, or rebuild the projection.",
    {
      cause,
      details: {
        projection: projection.name,
        position: event.globalPosition,
        eventId: event.id,
        type: event.type,
      },
    },
  );
}
