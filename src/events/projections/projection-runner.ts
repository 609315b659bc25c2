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
 * What to read and when is here; a batch's transaction is projection-batch.ts, a rebuild from
 * position 0 projection-rebuild.ts, and the errors projection-errors.ts.
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
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CrashHook, noCrash } from "../../util/crash-points.ts";
import type { StoredEvent } from "../envelope.ts";
import type { EventStore } from "../event-store.ts";
import {
  ensureCheckpoint,
  type ProjectionCheckpoint,
  type ProjectionError,
  type ProjectionStatus,
  readEnsuredCheckpoint,
} from "./checkpoint-store.ts";
import type { Projection, ProjectionContext } from "./projection.ts";
import { commitBatch } from "./projection-batch.ts";
import { assertNotNewer, storeCall } from "./projection-errors.ts";
import { type LagFigures, readLag } from "./projection-lag.ts";
import { LiveLoop, type LiveOptions } from "./projection-live-loop.ts";
import { NOTHING_DONE, type Progress, type RebuildNeeded, rebuildFromStart } from "./projection-rebuild.ts";

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
    const checkpoint = await this.#checkpoint(projection);
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
    let checkpoint = await this.#checkpoint(projection);
    if (checkpoint.version !== projection.version) {
      assertNotNewer(projection, checkpoint);
      const built = await this.#rebuildFromStart(
        projection,
        context,
        (locked) => locked.version !== projection.version,
        signal,
      );
      events += built.events;
      batches += built.batches;
      checkpoint = await this.#checkpoint(projection);
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
      const outcome = await commitBatch({ db: this.#db, projection, context, crash: this.#crash }, checkpoint, batch);
      if (!outcome.committed) {
        // Another runner moved the checkpoint (or rebuilt): continue from where it is now, with
        // no memory of rows this runner did not write.
        context.state.clear();
        assertNotNewer(projection, outcome.checkpoint);
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

  /** Rebuilds from position 0 if `needed(locked checkpoint)` (projection-rebuild.ts). */
  #rebuildFromStart(
    projection: Projection,
    context: ProjectionContext,
    needed: RebuildNeeded,
    signal?: AbortSignal,
  ): Promise<Progress> {
    return rebuildFromStart(this.#db, projection, context, needed, { limit: this.#rebuildBatchSize, signal });
  }

  async #ensure(projection: Projection): Promise<void> {
    if (this.#ensured.has(projection.name)) return;
    await storeCall(`prepare projection '${projection.name}'`, () => ensureCheckpoint(this.#db, projection.name));
    this.#ensured.add(projection.name);
  }

  #checkpoint(projection: Projection): Promise<ProjectionCheckpoint> {
    return readEnsuredCheckpoint(this.#db, projection.name);
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

function batchOption(name: string, value: number): number {
  if (Number.isSafeInteger(value) && value >= 1) return value;
  throw new MaqetError("INVALID_ARGUMENT", `Invalid ${name}: ${String(value)}. Use an integer >= 1.`);
}
