/**
 * How far a projection is behind the store: the head it reads towards, how many committed events
 * it has not applied yet, and how old the oldest of them is.
 *
 * Counted in the store's read order ((transaction id, position) after the checkpoint), so the
 * count includes events that are committed but still held back by an open transaction's
 * watermark: they are behind too, and a lag that stays above zero with nothing being written is
 * the sign of such a transaction.
 *
 * @example
 * ```ts
 * const lag = await readLag(db, checkpoint, { category: "vm" });
 * if (lag.eventsBehind > 0) console.log(`${lag.eventsBehind} events behind, ${lag.ageMs} ms`);
 * ```
 */
import { type Kysely, sql } from "kysely";
import { toNumber } from "../schema.ts";
import type { ProjectionCheckpoint } from "./checkpoint-store.ts";

/** What {@link readLag} measures; the checkpoint's own fields come with it in `ProjectionLag`. */
export interface LagFigures {
  /** Position of the last committed event the projection reads (in read order); 0 for none. */
  headPosition: number;
  /** Committed events after the checkpoint, including any still held back by the watermark. */
  eventsBehind: number;
  /** When the oldest of them was recorded; null when caught up. */
  oldestPendingAt: Date | null;
  /** How long ago that was (database clock), in ms; 0 when caught up. */
  ageMs: number;
}

// biome-ignore lint/suspicious/noExplicitAny: works on any Kysely whose database has the store's tables
type AnyDb = Kysely<any>;

interface LagRow {
  head: string | number | null;
  behind: string | number;
  oldest: Date | string | null;
  age_ms: string | number | null;
}

/**
 * Measures lag for a checkpoint, optionally within one stream category.
 *
 * @example
 * ```ts
 * const { eventsBehind } = await readLag(db, await readCheckpoint(db, "vms"), { category: "vm" });
 * ```
 */
export async function readLag(
  db: AnyDb,
  checkpoint: ProjectionCheckpoint,
  options: { category?: string } = {},
): Promise<LagFigures> {
  const inCategory = options.category === undefined ? sql`true` : sql`e.category = ${options.category}`;
  const after = sql`(e.transaction_id, e.global_position) > (${checkpoint.transactionId}::xid8, ${checkpoint.position}::bigint)`;
  // The head is the last event in read order: one backward step on the (category,) xid, position index.
  const result = await sql<LagRow>`
    select (select e.global_position from maqet_events e where ${inCategory}
             order by e.transaction_id desc, e.global_position desc limit 1) as head,
           pending.behind, pending.oldest,
           (extract(epoch from (now() - pending.oldest)) * 1000)::bigint as age_ms
      from (select count(*) as behind, min(e.recorded_at) as oldest
              from maqet_events e where ${inCategory} and ${after}) pending`.execute(db);
  const row = result.rows[0];
  const oldest = row?.oldest == null ? null : row.oldest instanceof Date ? row.oldest : new Date(row.oldest);
  return {
    headPosition: row?.head == null ? 0 : toNumber(row.head),
    eventsBehind: row === undefined ? 0 : toNumber(row.behind),
    oldestPendingAt: oldest,
    ageMs: row?.age_ms == null ? 0 : Math.max(0, toNumber(row.age_ms)),
  };
}
