/**
 * Runs projections: reads the store's events after each projection's checkpoint with
 * `readAll` (commit-safe order, below the transaction-id watermark) and applies them batch by
 * batch, each batch and its new checkpoint in ONE transaction. A crash, a kill or a throw between
 * or inside batches therefore leaves rows and checkpoint agreeing: nothing is applied twice and
 * nothing is skipped.
 *
 * Two ways to run, both safe at once and across processes (a batch locks the checkpoint row and
 * commits only if the checkpoint is still where it read from):
 * - inline: `await runner.catchUp("vms")` before a read (what `ls` and `status` do);
 * - live: `runner.start()` keeps every projection caught up in a long-lived process, woken by
 *   appends (any Observable) and by polling, which is the truth.
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner({ db, store, projections: [vmListProjection] });
 * await runner.catchUp("vms");
 * console.log(await runner.lag("vms")); // { eventsBehind: 0, ... }
 * await runner.rebuild("vms");          // empty the rows, replay from position 0
 * ```
 */

import type { Kysely } from "kysely";
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import { type CrashHook, noCrash } from "../../util/crash-points.ts";
import type { StoredEvent } from "../envelope.ts";
import type { EventStore } from "../event-store.ts";
import {
  advanceCheckpoint,
  ensureCheckpoint,
  type ProjectionCheckpoint,
  type ProjectionError,
  type ProjectionStatus,
  readCheckpoint,
  recordStall,
  resetCheckpoint,
} from "./checkpoint-store.ts";
import type { Projection, ProjectionContext, ProjectionRebuilder, RebuildEvent } from "./projection.ts";
import { type LagFigures, readLag } from "./projection-lag.ts";
import { LiveLoop, type LiveOptions } from "./projection-live-loop.ts";
import { readRebuildPage } from "./rebuild-read.ts";

export type { LiveOptions } from "./projection-live-loop.ts";

export interface ProjectionRunnerOptions {
  /**
   * The database the store lives in; projections write their rows and checkpoints there. A
   * rebuild's fast path ({@link Projection.rebuilder}) also reads its events from here, straight
   * from `maqet_events` (a narrower read than `readAll`, in the same order).
   */
  // biome-ignore lint/suspicious/noExplicitAny: projections bring their own tables
  db: Kysely<any>;
  /** Where events are read from (its `readAll`): the store over the same database. */
  store: Pick<EventStore, "readAll">;
  projections: readonly Projection[];
  /** Events per batch (one transaction each) when catching up. Default 1000. */
  batchSize?: number;
  /**
   * Events per batch when rebuilding (explicitly, or because the projection's version changed)
   * through `apply`; larger batches write each row fewer times; each batch is still one
   * transaction. Also the page size of a fast rebuild's reads. Default 10000.
   */
  rebuildBatchSize?: number;
  /** Test-only crash points (docs/crash-points.md). */
  crash?: CrashHook;
}

/** What one catch-up did. */
export interface CatchUpResult {
  name: string;
  /** Events read and checkpointed by this call (handled or not). */
  events: number;
  /** Transactions committed by this call. */
  batches: number;
  /** The checkpoint after the call. */
  position: number;
  /** True when the call rebuilt the projection first (its version changed). */
  rebuilt: boolean;
}

/** A projection's progress and health, from {@link ProjectionRunner.lag}. */
export interface ProjectionLag extends LagFigures {
  name: string;
  status: ProjectionStatus;
  /** Why it stalled (the event it could not apply); null while running. */
  error: ProjectionError | null;
  /** Checkpoint: global position of the last event applied. */
  position: number;
  /** Events applied since the last rebuild. */
  eventsApplied: number;
  /** Version of the code that built the rows, and of the code running now. */
  builtVersion: number;
  version: number;
  rebuiltAt: Date | null;
  updatedAt: Date;
}

const DEFAULT_BATCH = 1000;
const DEFAULT_REBUILD_BATCH = 10_000;

/** Committed: the checkpoint this runner now holds; not: the checkpoint someone else left. */
type BatchOutcome = { committed: boolean; checkpoint: ProjectionCheckpoint };

/** Events checkpointed and transactions committed so far by one call. */
interface Progress {
  events: number;
  batches: number;
}

const NOTHING_DONE: Progress = { events: 0, batches: 0 };
const NO_EVENTS: Promise<StoredEvent[]> = Promise.resolve([]);

export class ProjectionRunner {
  readonly #db: ProjectionRunnerOptions["db"];
  readonly #store: ProjectionRunnerOptions["store"];
  readonly #projections = new Map<string, Projection>();
  readonly #batchSize: number;
  readonly #rebuildBatchSize: number;
  readonly #ensured = new Set<string>();
  /** One catch-up or rebuild at a time per projection in this process (others wait their turn). */
  readonly #queues = new Map<string, Promise<unknown>>();
  #live: LiveLoop | undefined;
  readonly #crash: CrashHook;

  constructor(options: ProjectionRunnerOptions) {
    this.#db = options.db;
    this.#crash = options.crash ?? noCrash;
    this.#store = options.store;
    this.#batchSize = batchOption("batchSize", options.batchSize ?? DEFAULT_BATCH);
    this.#rebuildBatchSize = batchOption("rebuildBatchSize", options.rebuildBatchSize ?? DEFAULT_REBUILD_BATCH);
    for (const projection of options.projections) {
      if (this.#projections.has(projection.name)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Two projections are named '${projection.name}'. Give each its own name.`,
        );
      }
      this.#projections.set(projection.name, projection);
    }
  }

  /** Names of the projections this runner runs. */
  get names(): string[] {
    return [...this.#projections.keys()];
  }

  /**
   * Applies every event committed (and below the watermark) after the checkpoint, in batches;
   * resolves when a read comes back short. Rebuilds first when the projection's version changed.
   * Throws PROJECTION_FAILED when the projection throws (the error is recorded; the events
   * before the failing one are applied and checkpointed), STORE_ERROR when the store fails.
   *
   * @example
   * ```ts
   * await runner.catchUp("vms");
   * const rows = await db.selectFrom("maqet_vms").selectAll().execute();
   * ```
   */
  catchUp(name: string, options: { signal?: AbortSignal } = {}): Promise<CatchUpResult> {
    const projection = this.#get(name);
    return this.#queued(name, () => this.#catchUp(projection, newContext(), false, options.signal));
  }

  /**
   * Replays every event from position 0 into emptied tables.
   *
   * With a {@link Projection.rebuilder} (the fast path): folds the history in memory, then empties
   * the tables, writes every row once and moves the checkpoint in ONE transaction; until it
   * commits, readers see the previous rows, and a rebuild cut short leaves them (and the
   * checkpoint) as they were. Events appended meanwhile follow through `apply`. Should the fast
   * path fail (the fold or the write throws), it falls back to the batch path.
   *
   * Without one (the batch path): the reset commits first (rows and checkpoint together), then the
   * replay commits batch by batch through `apply`: a rebuild cut short resumes where it stopped on
   * the next catch-up.
   *
   * @example
   * ```ts
   * const { events } = await runner.rebuild("vms");
   * ```
   */
  rebuild(name: string, options: { signal?: AbortSignal } = {}): Promise<CatchUpResult> {
    const projection = this.#get(name);
    return this.#queued(name, async () => {
      await this.#ensure(projection);
      const context = newContext();
      const done = await this.#rebuildFromStart(projection, context, () => true, options.signal);
      return this.#catchUp(projection, context, true, options.signal, done);
    });
  }

  /**
   * The projection's checkpoint, status and lag behind the store.
   *
   * @example
   * ```ts
   * const { eventsBehind, ageMs, status, error } = await runner.lag("vms");
   * ```
   */
  async lag(name: string): Promise<ProjectionLag> {
    const projection = this.#get(name);
    await this.#ensure(projection);
    const checkpoint = await this.#checkpoint(this.#db, projection);
    const figures = await readLag(this.#db, checkpoint, { category: projection.category });
    return {
      name,
      status: checkpoint.status,
      error: checkpoint.error,
      position: checkpoint.position,
      eventsApplied: checkpoint.eventsApplied,
      builtVersion: checkpoint.version,
      version: projection.version,
      rebuiltAt: checkpoint.rebuiltAt,
      updatedAt: checkpoint.updatedAt,
      ...figures,
    };
  }

  /**
   * Keeps every projection caught up until {@link stop}: a catch-up on each wake-up and at least
   * every `pollIntervalMs`; after a failure, retries with back-off (the projection stays stalled
   * at its failing event meanwhile, visible in {@link lag}). Calling it twice is a no-op.
   *
   * @example
   * ```ts
   * runner.start({ wakeUps: store.appended$, onError: (e, name) => log.warn(name, e) });
   * // ... later
   * await runner.stop();
   * ```
   */
  start(options: LiveOptions = {}): void {
    this.#live ??= new LiveLoop((name, signal) => this.catchUp(name, { signal }), this.names, options);
  }

  /** Stops the live loop; resolves when the current catch-ups are over. */
  async stop(): Promise<void> {
    const live = this.#live;
    this.#live = undefined;
    await live?.stop();
  }

  async #catchUp(
    projection: Projection,
    context: ProjectionContext,
    rebuilt: boolean,
    signal?: AbortSignal,
    done: Progress = NOTHING_DONE,
  ): Promise<CatchUpResult> {
    await this.#ensure(projection);
    let { events, batches } = done;
    let checkpoint = await this.#checkpoint(this.#db, projection);
    if (checkpoint.version !== projection.version) {
      this.#assertNotNewer(projection, checkpoint);
      const built = await this.#rebuildFromStart(
        projection,
        context,
        (locked) => locked.version !== projection.version,
        signal,
      );
      events += built.events;
      batches += built.batches;
      checkpoint = await this.#checkpoint(this.#db, projection);
      rebuilt = true;
    }
    const limit = rebuilt ? this.#rebuildBatchSize : this.#batchSize;
    const read = (after: number): Promise<StoredEvent[]> => this.#read(projection, after, limit, signal);
    let next = read(checkpoint.position);
    for (;;) {
      const batch = await next;
      if (batch.length === 0) break;
      const full = batch.length === limit;
      // Read the following page while this one is applied: reads happen outside the batch's
      // transaction, so on a server they overlap with the writes (PGlite runs them in turn).
      next = full ? read(batch.at(-1)!.globalPosition) : NO_EVENTS;
      const outcome = await this.#commit(projection, context, checkpoint, batch);
      if (!outcome.committed) {
        // Another runner moved the checkpoint (or rebuilt): continue from where it is now, with
        // no memory of rows this runner did not write.
        context.state.clear();
        this.#assertNotNewer(projection, outcome.checkpoint);
        if (outcome.checkpoint.version !== projection.version) {
          return this.#catchUp(projection, context, rebuilt, signal, { events, batches });
        }
        checkpoint = outcome.checkpoint;
        next = read(checkpoint.position);
        continue;
      }
      events += batch.length;
      batches++;
      checkpoint = outcome.checkpoint;
      if (!full) break;
    }
    return { name: projection.name, events, batches, position: checkpoint.position, rebuilt };
  }

  /** One page of the projection's events after `after`, in read order. */
  #read(projection: Projection, after: number, limit: number, signal?: AbortSignal): Promise<StoredEvent[]> {
    signal?.throwIfAborted();
    const page = this.#store.readAll({ after, limit, category: projection.category, signal });
    page.catch(() => {}); // a prefetched page may be dropped unread; its error then goes nowhere
    return page;
  }

  /**
   * Rebuilds from position 0 if `needed(locked checkpoint)`: in memory and swapped in by one
   * transaction when the projection has a rebuilder (the batch path when that fails); otherwise
   * empties the tables, and the caller's catch-up replays batch by batch.
   */
  async #rebuildFromStart(
    projection: Projection,
    context: ProjectionContext,
    needed: (locked: ProjectionCheckpoint) => boolean,
    signal?: AbortSignal,
  ): Promise<Progress> {
    if (projection.rebuilder) {
      const done = await this.#rebuildInMemory(projection, projection.rebuilder(), context, needed, signal);
      if (done !== undefined) return done;
    }
    await this.#reset(projection, context, needed);
    return NOTHING_DONE;
  }

  /**
   * The fast path: folds every event from position 0 in memory (reading the next page while
   * this one folds), then in ONE transaction, if still `needed`: reset, write, checkpoint at the
   * last folded event. Undefined when the projection's fold or write threw (nothing changed:
   * the caller falls back to the batch path, which stops at the failing event and records it).
   */
  async #rebuildInMemory(
    projection: Projection,
    rebuilder: ProjectionRebuilder,
    context: ProjectionContext,
    needed: (locked: ProjectionCheckpoint) => boolean,
    signal?: AbortSignal,
  ): Promise<Progress | undefined> {
    context.state.clear();
    const limit = this.#rebuildBatchSize;
    let events = 0;
    let last: number | undefined;
    const read = (after: number): Promise<RebuildEvent[]> => {
      signal?.throwIfAborted();
      const page = storeCall(`read events to rebuild projection '${projection.name}'`, () =>
        readRebuildPage(this.#db, { after, limit, category: projection.category }),
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
      swapped = await this.#db.transaction().execute(async (trx) => {
        const locked = await this.#checkpoint(trx, projection, true);
        if (!needed(locked)) return false;
        this.#assertNotNewer(projection, locked);
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
   * Applies one batch and moves the checkpoint in one transaction, if the checkpoint is still at
   * `from`. When the projection throws, retries the batch one event per transaction so that the
   * events before the failing one are kept, then records the stall and throws.
   */
  async #commit(
    projection: Projection,
    context: ProjectionContext,
    from: ProjectionCheckpoint,
    batch: readonly StoredEvent[],
  ): Promise<BatchOutcome> {
    try {
      return await this.#transaction(projection, context, from, batch);
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
        await recordStall(this.#db, projection.name, event.globalPosition, message).catch(() => {});
        throw new MaqetError(
          "PROJECTION_FAILED",
          `Projection '${projection.name}' stopped at event ${event.globalPosition} (${event.type} in ${event.streamId}): ` +
            `${reason}. Its rows and checkpoint stay at the event before; nothing was skipped. ` +
            "Fix the cause and catch up again, or rebuild the projection.",
          {
            cause: error.cause,
            details: {
              projection: projection.name,
              position: event.globalPosition,
              eventId: event.id,
              type: event.type,
            },
          },
        );
      }
      let at = from;
      for (const event of batch) {
        const outcome = await this.#commit(projection, context, at, [event]);
        if (!outcome.committed) return outcome;
        at = outcome.checkpoint;
      }
      return { committed: true, checkpoint: at };
    }
  }

  async #transaction(
    projection: Projection,
    context: ProjectionContext,
    from: ProjectionCheckpoint,
    batch: readonly StoredEvent[],
  ): Promise<BatchOutcome> {
    return this.#db.transaction().execute(async (trx) => {
      const locked = await this.#checkpoint(trx, projection, true);
      if (!sameCheckpoint(locked, from)) return { committed: false, checkpoint: locked };
      const wanted = projection.handles ? batch.filter((e) => projection.handles!(e.type)) : batch;
      if (wanted.length > 0) {
        try {
          await projection.apply(trx, wanted, context);
        } catch (cause) {
          throw new ApplyError(cause);
        }
      }
      this.#crash("projection.batch-written");
      const last = batch.at(-1)!.globalPosition;
      await advanceCheckpoint(trx, projection.name, last, batch.length);
      return { committed: true, checkpoint: { ...locked, position: last } };
    });
  }

  /**
   * Empties the projection and resets its checkpoint, if `needed(locked checkpoint)`. When it
   * was not needed (another runner did it), forgets what `context` remembered.
   */
  async #reset(
    projection: Projection,
    context: ProjectionContext,
    needed: (locked: ProjectionCheckpoint) => boolean,
  ): Promise<void> {
    context.state.clear();
    await this.#db.transaction().execute(async (trx) => {
      const locked = await this.#checkpoint(trx, projection, true);
      if (!needed(locked)) return;
      this.#assertNotNewer(projection, locked);
      try {
        await projection.reset(trx, context);
        await resetCheckpoint(trx, projection.name, projection.version);
      } catch (error) {
        context.state.clear();
        throw error;
      }
    });
  }

  #assertNotNewer(projection: Projection, checkpoint: ProjectionCheckpoint): void {
    if (checkpoint.version <= projection.version) return;
    throw new MaqetError(
      "PROJECTION_FAILED",
      `Projection '${projection.name}' was built by a newer maqet (projection version ${checkpoint.version}; ` +
        `this one knows up to ${projection.version}). Upgrade maqet to read this database; it is left untouched.`,
      { details: { projection: projection.name, builtVersion: checkpoint.version, version: projection.version } },
    );
  }

  async #ensure(projection: Projection): Promise<void> {
    if (this.#ensured.has(projection.name)) return;
    await storeCall(`prepare projection '${projection.name}'`, () => ensureCheckpoint(this.#db, projection.name));
    this.#ensured.add(projection.name);
  }

  async #checkpoint(
    db: ProjectionRunnerOptions["db"],
    projection: Projection,
    forUpdate = false,
  ): Promise<ProjectionCheckpoint> {
    const checkpoint = await storeCall(`read the checkpoint of projection '${projection.name}'`, () =>
      readCheckpoint(db, projection.name, { forUpdate }),
    );
    if (checkpoint === undefined) {
      throw new MaqetError("INTERNAL", `The checkpoint row of projection '${projection.name}' disappeared.`);
    }
    return checkpoint;
  }

  #get(name: string): Projection {
    const projection = this.#projections.get(name);
    if (projection) return projection;
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Unknown projection '${name}'. Known projections: ${this.names.join(", ") || "none"}.`,
      { details: { name, known: this.names } },
    );
  }

  #queued<T>(name: string, run: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.then(
      () => {},
      () => {},
    );
    this.#queues.set(name, settled);
    void settled.then(() => {
      if (this.#queues.get(name) === settled) this.#queues.delete(name);
    });
    return next;
  }
}

function newContext(): ProjectionContext {
  return { state: new Map() };
}

/**
 * The same checkpoint as far as the rows are concerned: nobody applied, rebuilt or upgraded
 * since (the rebuild time tells a rebuild that came back to the same position).
 */
function sameCheckpoint(a: ProjectionCheckpoint, b: ProjectionCheckpoint): boolean {
  return a.position === b.position && a.version === b.version && a.rebuiltAt?.getTime() === b.rebuiltAt?.getTime();
}

function batchOption(name: string, value: number): number {
  if (Number.isSafeInteger(value) && value >= 1) return value;
  throw new MaqetError("INVALID_ARGUMENT", `Invalid ${name}: ${String(value)}. Use an integer >= 1.`);
}

/** The projection's own code threw (as opposed to the database failing around it). */
class ApplyError extends Error {
  constructor(cause: unknown) {
    super(reasonOf(cause), { cause });
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function storeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isMaqetError(error)) throw error;
    throw new MaqetError(
      "STORE_ERROR",
      `Failed to ${what}: ${reasonOf(error)}. Check that the database is reachable and migrated (\`maqet migrate\`).`,
      { cause: error },
    );
  }
}
