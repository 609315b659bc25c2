/**
 * Rebuilding a projection from position 0, when asked or when its version changed, and only if
 * still `needed` once the checkpoint row is locked (another runner may have done it first):
 *
 * - with a {@link ProjectionRebuilder} (the fast path): every event folded in memory from a narrow
 *   read of `maqet_events` (rebuild-read.ts), then reset, rows written and checkpoint moved in ONE
 *   transaction; until it commits, readers see the previous rows, and a rebuild cut short leaves
 *   them (and the checkpoint) as they were. Should the fold or the write throw, the batch path
 *   runs instead;
 * - otherwise (the batch path): the tables are emptied and the checkpoint reset in one
 *   transaction; the caller's catch-up then replays batch by batch through `apply`.
 *
 * @example
 * ```ts
 * const done = await rebuildFromStart(db, projection, context, () => true, { limit: 10_000, signal });
 * ```
 */
import type { Kysely } from "kysely";
import {
  advanceCheckpoint,
  type ProjectionCheckpoint,
  readEnsuredCheckpoint,
  resetCheckpoint,
} from "./checkpoint-store.ts";
import type { Projection, ProjectionContext, ProjectionRebuilder, RebuildEvent } from "./projection.ts";
import { ApplyError, assertNotNewer, storeCall } from "./projection-errors.ts";
import { readRebuildPage } from "./rebuild-read.ts";

// biome-ignore lint/suspicious/noExplicitAny: projections bring their own tables
type Db = Kysely<any>;

/** Events checkpointed and transactions committed so far by one call. */
export interface Progress {
  events: number;
  batches: number;
}

export const NOTHING_DONE: Progress = { events: 0, batches: 0 };

/** Whether the rebuild is (still) wanted, judged on the checkpoint as locked for the transaction. */
export type RebuildNeeded = (locked: ProjectionCheckpoint) => boolean;

/** Page size of the fast path's reads (the runner's rebuildBatchSize), and what aborts it. */
export interface RebuildOptions {
  limit: number;
  signal?: AbortSignal;
}

/**
 * Rebuilds from position 0 if `needed(locked checkpoint)`: in memory and swapped in by one
 * transaction when the projection has a rebuilder (the batch path when that fails); otherwise
 * empties the tables, and the caller's catch-up replays batch by batch.
 */
export async function rebuildFromStart(
  db: Db,
  projection: Projection,
  context: ProjectionContext,
  needed: RebuildNeeded,
  options: RebuildOptions,
): Promise<Progress> {
  if (projection.rebuilder) {
    const done = await rebuildInMemory(db, projection, projection.rebuilder(), context, needed, options);
    if (done !== undefined) return done;
  }
  await resetProjection(db, projection, context, needed);
  return NOTHING_DONE;
}

/**
 * The fast path: folds every event from position 0 in memory (reading the next page while
 * this one folds), then in ONE transaction, if still `needed`: reset, write, checkpoint at the
 * last folded event. Undefined when the projection's fold or write threw (nothing changed:
 * the caller falls back to the batch path, which stops at the failing event and records it).
 */
async function rebuildInMemory(
  db: Db,
  projection: Projection,
  rebuilder: ProjectionRebuilder,
  context: ProjectionContext,
  needed: RebuildNeeded,
  { limit, signal }: RebuildOptions,
): Promise<Progress | undefined> {
  context.state.clear();
  let events = 0;
  let last: number | undefined;
  const read = (after: number): Promise<RebuildEvent[]> => {
    signal?.throwIfAborted();
    const page = storeCall(`read events to rebuild projection '${projection.name}'`, () =>
      readRebuildPage(db, { after, limit, category: projection.category }),
    );
    page.catch(() => {}); // a prefetched page may be dropped unread
    return page;
  };
  let next = read(0);
  for (;;) {
    const page = await next;
    if (page.length === 0) break;
    const more = page.length === limit;
    next = more ? read(page.at(-1)!.globalPosition) : Promise.resolve([]);
    const wanted = projection.handles ? page.filter((e) => projection.handles!(e.type)) : page;
    try {
      if (wanted.length > 0) rebuilder.fold(wanted);
    } catch {
      return undefined;
    }
    events += page.length;
    last = page.at(-1)!.globalPosition;
    if (!more || rebuilder.full) break;
  }
  let swapped: boolean;
  try {
    swapped = await db.transaction().execute(async (trx) => {
      const locked = await readEnsuredCheckpoint(trx, projection.name, { forUpdate: true });
      if (!needed(locked)) return false;
      assertNotNewer(projection, locked);
      await projection.reset(trx, context);
      await resetCheckpoint(trx, projection.name, projection.version);
      if (last === undefined) return true;
      try {
        await rebuilder.write(trx, context);
      } catch (cause) {
        throw new ApplyError(cause);
      }
      await advanceCheckpoint(trx, projection.name, last, events);
      return true;
    });
  } catch (error) {
    // Rolled back: the previous rows and checkpoint stand; whatever write cached is void.
    context.state.clear();
    if (error instanceof ApplyError) return undefined;
    return storeCall(`rebuild projection '${projection.name}'`, () => Promise.reject(error));
  }
  if (!swapped) {
    // Another runner rebuilt first: continue from its checkpoint, remembering nothing.
    context.state.clear();
    return NOTHING_DONE;
  }
  return { events, batches: last === undefined ? 0 : 1 };
}

/**
 * Empties the projection and resets its checkpoint, if `needed(locked checkpoint)`. When it
 * was not needed (another runner did it), forgets what `context` remembered.
 */
async function resetProjection(
  db: Db,
  projection: Projection,
  context: ProjectionContext,
  needed: RebuildNeeded,
): Promise<void> {
  context.state.clear();
  await db.transaction().execute(async (trx) => {
    const locked = await readEnsuredCheckpoint(trx, projection.name, { forUpdate: true });
    if (!needed(locked)) return;
    assertNotNewer(projection, locked);
    try {
      await projection.reset(trx, context);
      await resetCheckpoint(trx, projection.name, projection.version);
    } catch (error) {
      context.state.clear();
      throw error;
    }
  });
}
