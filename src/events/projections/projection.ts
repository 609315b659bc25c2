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
  /**
   * Optional fast path for rebuilds (explicit, or because the version changed): a fresh
   * {@link ProjectionRebuilder} that folds the history in memory and writes each row once. The
   * live path (catch-ups) always goes through `apply`. Its rows must equal what `apply` builds
   * from the same events: the runner falls back to `apply` when the fast path fails.
   */
  rebuilder?(): ProjectionRebuilder;
}

/**
 * What a rebuild's fold gets: a stored event without its id and metadata. The rebuild reads only
 * these columns (a narrower read: metadata is a third of what reading an event costs).
 */
export type RebuildEvent = Omit<StoredEvent, "id" | "metadata">;

/**
 * A rebuild in memory (see {@link Projection.rebuilder}). The runner reads the history from
 * position 0 in the store's read order and hands every page to `fold` (only handled types, as
 * {@link RebuildEvent}s; no database, nothing written). Then ONE transaction locks the checkpoint, calls `reset`, then
 * `write`, and moves the checkpoint to the last folded event: rows and checkpoint change
 * together, so a rebuild cut short (crash, kill, error) leaves the previous rows and checkpoint
 * exactly as they were. Events appended meanwhile are applied afterwards through `apply`.
 *
 * Memory is the projection's business: when `full` turns true the runner stops folding, writes
 * what it has (same transaction rules) and replays the rest batch by batch through `apply`.
 *
 * @example
 * ```ts
 * rebuilder() {
 *   const counts = new Map<string, number>();
 *   return {
 *     full: false,
 *     fold(events) { for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1); },
 *     async write(trx) {
 *       const rows = JSON.stringify([...counts].map(([type, n]) => ({ type, n })));
 *       await sql`insert into counts select * from jsonb_to_recordset(${rows}::jsonb) as r(type text, n int)`.execute(trx);
 *     },
 *   };
 * }
 * ```
 */
export interface ProjectionRebuilder {
  /** Folds one page of events (read order, never empty). Synchronous and pure: memory only. */
  fold(events: readonly RebuildEvent[]): void;
  /** True once the memory held reached the projection's bound: the runner writes it and goes on through `apply`. */
  readonly full: boolean;
  /**
   * Writes what was folded into the tables `reset` has just emptied, in the runner's
   * transaction. May fill `context.state` (what `apply` would have cached) for the batches after.
   */
  // biome-ignore lint/suspicious/noExplicitAny: each projection types its own tables
  write(trx: Kysely<any>, context: ProjectionContext): Promise<void>;
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
