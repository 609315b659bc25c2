/**
 * The `maqet_projection_checkpoints` table (migrations/0003-projections.ts): one row per
 * projection saying how far its rows go. Every write here that moves the checkpoint runs inside
 * the transaction that writes the projection's rows.
 *
 * The checkpoint is the last applied event's global position and its transaction id: the pair
 * that orders events for `readAll` (which resumes after a position by looking up its xid). The
 * xid is kept too so that lag can be counted in SQL without that lookup.
 *
 * @example
 * ```ts
 * await ensureCheckpoint(db, "vms");
 * const cp = await readCheckpoint(db, "vms");
 * console.log(cp.position, cp.status);
 * ```
 */
import { type Kysely, sql } from "kysely";
import { MaqetError } from "../../errors/maqet-error.ts";
import { toNumber } from "../schema.ts";
import { storeCall } from "./projection-errors.ts";

/** A `bigint` column as read: a string from `pg`, a number from PGlite. */
type Int8 = string | number | bigint;

export interface ProjectionCheckpointsTable {
  name: string;
  position: Int8;
  transaction_id: string;
  version: number;
  events_applied: Int8;
  status: string;
  error: string | null;
  error_position: Int8 | null;
  error_at: Date | null;
  rebuilt_at: Date | null;
  updated_at: Date;
}

/** The checkpoint table as Kysely sees it. */
export interface CheckpointTables {
  maqet_projection_checkpoints: ProjectionCheckpointsTable;
}

/** `running`: applies events as they come; `stalled`: stopped at `error.position`. */
export type ProjectionStatus = "running" | "stalled";

/** Why a projection stopped: the first event it could not apply. */
export interface ProjectionError {
  message: string;
  /** Global position of the event that failed (it is not applied; the checkpoint is before it). */
  position: number | null;
  at: Date;
}

/** A projection's checkpoint row. */
export interface ProjectionCheckpoint {
  name: string;
  /** Global position of the last event applied; 0 before the first. */
  position: number;
  /** That event's transaction id (xid8 as text); "0" before the first. */
  transactionId: string;
  /** The projection version that built the rows; 0 before the first build. */
  version: number;
  /** Events read and checkpointed since the last rebuild (handled or not). */
  eventsApplied: number;
  status: ProjectionStatus;
  error: ProjectionError | null;
  rebuiltAt: Date | null;
  updatedAt: Date;
}

// biome-ignore lint/suspicious/noExplicitAny: works on any Kysely whose database has the table
type Db = Kysely<any>;

const table = (db: Db): Kysely<CheckpointTables> => db as Kysely<CheckpointTables>;

/**
 * Creates the projection's row (at position 0, version 0) unless it exists.
 *
 * @example
 * ```ts
 * await ensureCheckpoint(db, "vms");
 * ```
 */
export async function ensureCheckpoint(db: Db, name: string): Promise<void> {
  await table(db)
    .insertInto("maqet_projection_checkpoints")
    .values({ name } as never)
    .onConflict((c) => c.doNothing())
    .execute();
}

/**
 * Reads a checkpoint; `forUpdate` locks the row until the transaction `db` belongs to ends,
 * which is how two runners (processes) on one projection take turns. Undefined when absent.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   const cp = await readCheckpoint(trx, "vms", { forUpdate: true });
 * });
 * ```
 */
export async function readCheckpoint(
  db: Db,
  name: string,
  options: { forUpdate?: boolean } = {},
): Promise<ProjectionCheckpoint | undefined> {
  let query = table(db)
    .selectFrom("maqet_projection_checkpoints")
    .select([
      "name",
      "position",
      sql<string>`transaction_id::text`.as("transaction_id"),
      "version",
      "events_applied",
      "status",
      "error",
      "error_position",
      "error_at",
      "rebuilt_at",
      "updated_at",
    ])
    .where("name", "=", name);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row === undefined ? undefined : toCheckpoint(row);
}

/**
 * The checkpoint of a projection whose row was ensured ({@link ensureCheckpoint}): STORE_ERROR
 * when the read fails, INTERNAL when the row is gone.
 *
 * @example
 * ```ts
 * const locked = await readEnsuredCheckpoint(trx, "vms", { forUpdate: true });
 * ```
 */
export async function readEnsuredCheckpoint(
  db: Db,
  name: string,
  options: { forUpdate?: boolean } = {},
): Promise<ProjectionCheckpoint> {
  const checkpoint = await storeCall(`read the checkpoint of projection '${name}'`, () =>
    readCheckpoint(db, name, options),
  );
  if (checkpoint === undefined) {
    throw new MaqetError("INTERNAL", `The checkpoint row of projection '${name}' disappeared.`);
  }
  return checkpoint;
}

/**
 * Moves the checkpoint to the event at `position` (its xid looked up in the same statement),
 * counting `count` more events, and clears a previous stall. Call it in the batch's transaction.
 *
 * @example
 * ```ts
 * await advanceCheckpoint(trx, "vms", batch.at(-1)!.globalPosition, batch.length);
 * ```
 */
export async function advanceCheckpoint(db: Db, name: string, position: number, count: number): Promise<void> {
  await sql`
    update maqet_projection_checkpoints
       set position = ${position}::bigint,
           transaction_id = coalesce(
             (select e.transaction_id from maqet_events e where e.global_position = ${position}::bigint), '0'::xid8),
           events_applied = events_applied + ${count}::bigint,
           status = 'running', error = null, error_position = null, error_at = null,
           updated_at = now()
     where name = ${name}`.execute(db);
}

/**
 * Resets the checkpoint to the start for a rebuild by projection `version`. Call it in the
 * transaction that empties the projection's tables.
 *
 * @example
 * ```ts
 * await resetCheckpoint(trx, "vms", 2);
 * ```
 */
export async function resetCheckpoint(db: Db, name: string, version: number): Promise<void> {
  await sql`
    update maqet_projection_checkpoints
       set position = 0, transaction_id = '0'::xid8, version = ${version}::integer, events_applied = 0,
           status = 'running', error = null, error_position = null, error_at = null,
           rebuilt_at = now(), updated_at = now()
     where name = ${name}`.execute(db);
}

/**
 * Marks the projection stalled at the event at `position` with `message`. Its own statement:
 * the failed batch's transaction has been rolled back.
 *
 * @example
 * ```ts
 * await recordStall(db, "vms", 1234, "duplicate key value violates unique constraint");
 * ```
 */
export async function recordStall(db: Db, name: string, position: number | null, message: string): Promise<void> {
  await table(db)
    .updateTable("maqet_projection_checkpoints")
    .set({
      status: "stalled",
      error: message,
      error_position: position,
      error_at: sql<Date>`now()`,
      updated_at: sql<Date>`now()`,
    } as never)
    .where("name", "=", name)
    .execute();
}

function toCheckpoint(row: ProjectionCheckpointsTable): ProjectionCheckpoint {
  return {
    name: row.name,
    position: toNumber(row.position),
    transactionId: String(row.transaction_id),
    version: row.version,
    eventsApplied: toNumber(row.events_applied),
    status: row.status === "stalled" ? "stalled" : "running",
    error:
      row.error === null
        ? null
        : {
            message: row.error,
            position: row.error_position === null ? null : toNumber(row.error_position),
            at: toDate(row.error_at ?? row.updated_at),
          },
    rebuiltAt: row.rebuilt_at === null ? null : toDate(row.rebuilt_at),
    updatedAt: toDate(row.updated_at),
  };
}

function toDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}
