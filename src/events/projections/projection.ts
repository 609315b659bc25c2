/**
 * What a projection is: a named read model built from the store's events, batch by batch, in
 * the same transaction as its checkpoint (so each event changes the read model exactly once).
 *
 * @example
 * ```ts
 * const counts: Projection = {
 *   name: "event-counts",
 *   version: 1,
 *   async apply(trx, events) {
 *     for (const e of events) await sql`insert into counts values (${e.type}, 1)
 *       on conflict (type) do update set n = counts.n + 1`.execute(trx);
 *   },
 *   async reset(trx) { await sql`truncate counts`.execute(trx); },
 * };
 * ```
 */
import type { Kysely } from "kysely";
import type { StoredEvent } from "../envelope.ts";

/**
 * A read model kept by a {@link ProjectionRunner}.
 *
 * Rules for `apply` and `reset`: write only through `trx` (the runner commits it together with
 * the checkpoint; anything written elsewhere is not rolled back with it), be deterministic (a
 * rebuild must give the same rows), and throw on anything unexpected: the runner then stops at
 * that event and records the error rather than skip it.
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner({ db, store, projections: [vmListProjection] });
 * ```
 */
export interface Projection {
  /** Unique, stable: the checkpoint row's key. */
  readonly name: string;
  /**
   * Version of the code that builds the rows. Raise it whenever `apply` would now build
   * different rows from the same events: the runner then rebuilds from position 0 on its next
   * catch-up. A database built by a newer version is refused, not overwritten.
   */
  readonly version: number;
  /** Read only this stream category (e.g. "vm"): fewer events to read. Default: every category. */
  readonly category?: string;
  /** The event types `apply` wants; the others only move the checkpoint. Default: all. */
  handles?(type: string): boolean;
  /** Applies one batch (in the store's read order, never empty) inside the runner's transaction. */
  // biome-ignore lint/suspicious/noExplicitAny: each projection types its own tables
  apply(trx: Kysely<any>, events: readonly StoredEvent[], context: ProjectionContext): Promise<void>;
  /** Empties the projection's tables (before a rebuild), inside the runner's transaction. */
  // biome-ignore lint/suspicious/noExplicitAny: each projection types its own tables
  reset(trx: Kysely<any>, context: ProjectionContext): Promise<void>;
}

/**
 * What the runner hands to every `apply` and `reset` of one catch-up (or rebuild).
 *
 * `state` is memory that lives from one batch to the next while nothing but this runner's own
 * committed batches changed the rows: the runner empties it when a batch fails (its transaction
 * rolled back, so the rows are as before it) and when another runner moved the checkpoint or
 * rebuilt. So a projection may cache what it wrote (e.g. rows by key) and skip reading them
 * back; what is not in the cache it reads from `trx`. Never the truth, only a shortcut.
 *
 * @example
 * ```ts
 * async apply(trx, events, { state }) {
 *   const cached = state.get(key) ?? (await loadRow(trx, key));
 * }
 * ```
 */
export interface ProjectionContext {
  readonly state: Map<unknown, unknown>;
}
