/**
 * The projection runner on both dialects: a batch's rows and its checkpoint commit together, so a
 * projection that fails or is killed between (or inside) batches resumes without applying an
 * event twice or losing one (issue 3, conformance item 8); rebuild replays from position 0; lag
 * is reported; a projection's version change rebuilds it.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import type { Projection } from "../../src/events/projections/projection.ts";
import { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import { countingProjection, createCountsTable, readCounts } from "../fixtures/counting-projection.mjs";
import { projectRoot } from "../support/build-dist.ts";
import { failure } from "../support/failure.ts";
import { waitUntil } from "../support/poll.ts";
import { event } from "../support/store-events.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

// Every runner here builds with the same batch size as it catches up (the first catch-up of a
// projection is a build from position 0, which uses rebuildBatchSize).
// Its server cases run on a cluster of their own: a catch-up reads below the transaction-id
// watermark, which is cluster-wide, so another file's open transaction on the shared cluster
// (the cluster tests' claims, the epoch race) held events back (13 of 23 seen, full suite).
describe.each(testDatabases({ ownCluster: true }))("ProjectionRunner on $name", (testDialect) => {
  const dialect = testDialect.name;
  let t: TestDatabase;
  let store: PostgresEventStore;
  let n = 0;
  /** A fresh table and projection name per test; the store is shared, so each test uses its own category. */
  const fresh = () => {
    n++;
    return { table: `t_counts_${n}`, category: `cat${n}` };
  };
  /** Appends `count` events to `streams` streams of `category`, one append per event (many transactions). */
  async function seed(category: string, count: number, streams = 3): Promise<void> {
    for (let i = 0; i < count; i++) await store.append(`${category}-${i % streams}`, [event("t.happened", { i })]);
  }

  /**
   * 12 events of a fresh category; the projection throws on the 8th (batch 2 at batch size 5)
   * until `heal()`; with `foldToo`, its rebuilder's fold throws on that event as well.
   */
  async function poisoned(foldToo = false) {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 12);
    const events = await store.readAll({ category });
    const poison = events[7]!;
    let broken = true;
    const projection = countingProjection({
      name: table,
      table,
      category,
      onApply: ({ events: batch }) => {
        if (broken && batch.some((e) => e.id === poison.id)) throw new Error("cannot apply this one");
      },
      ...(foldToo
        ? {
            rebuilder: {
              onFold: ({ events: page }) => {
                if (broken && page.some((e) => e.globalPosition === poison.globalPosition)) {
                  throw new Error("cannot fold it");
                }
              },
            },
          }
        : {}),
    });
    const runner = runnerOf(projection, 5);
    return { table, events, poison, projection, runner, heal: () => (broken = false) };
  }

  openForSuite(testDialect, (opened) => ({ t, store } = opened));
  /**
   * A runner of one projection, on this file's store or (`db`, another connection) a store of its
   * own; `batchSize` for catch-ups and rebuilds alike.
   */
  const runnerOf = (projection: Projection, batchSize?: number, db = t.db) =>
    new ProjectionRunner({
      db,
      store: db === t.db ? store : new PostgresEventStore(db),
      ...(batchSize === undefined ? {} : { batchSize, rebuildBatchSize: batchSize }),
      projections: [projection],
    });

  it("applies every event once, in batches, and reports the checkpoint", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 23);
    const runner = runnerOf(countingProjection({ name: table, table, category }), 5);
    const result = await runner.catchUp(table);
    expect(result).toMatchObject({ events: 23, batches: 5, rebuilt: true });
    const counts = await readCounts(t.db, table);
    expect(counts).toHaveLength(23);
    expect(counts.every((c) => c.n === 1)).toBe(true);
    expect(result.position).toBe(counts.at(-1)!.position);
    // Nothing new: an empty read, no transaction.
    expect(await runner.catchUp(table)).toMatchObject({ events: 0, batches: 0, rebuilt: false });
    await seed(category, 4);
    expect(await runner.catchUp(table)).toMatchObject({ events: 4, batches: 1 });
    expect((await readCounts(t.db, table)).every((c) => c.n === 1)).toBe(true);
  });

  it("a projection that throws on batch 2 stops at the failing event with its error recorded; resuming applies the rest exactly once", async () => {
    const { table, events, poison, runner, heal } = await poisoned();
    const error = await failure(runner.catchUp(table));
    expect(error).toBeMaqetError("PROJECTION_FAILED");
    expect((error as Error).message).toContain(`stopped at event ${poison.globalPosition}`);
    expect((error as Error).message).toContain("cannot apply this one");

    // Everything before the poison is applied once and checkpointed; nothing at or after it.
    const before = await readCounts(t.db, table);
    expect(before.map((c) => c.id)).toEqual(events.slice(0, 7).map((e) => e.id));
    expect(before.every((c) => c.n === 1)).toBe(true);
    const lag = await runner.lag(table);
    expect(lag).toMatchObject({ status: "stalled", position: events[6]!.globalPosition, eventsBehind: 5 });
    expect(lag.error).toMatchObject({ position: poison.globalPosition });
    expect(lag.error!.message).toContain("cannot apply this one");

    // Still broken: a second attempt stops at the same event, again without side effects.
    await expect(runner.catchUp(table)).rejects.toBeMaqetError("PROJECTION_FAILED");
    expect(await readCounts(t.db, table)).toEqual(before);

    heal();
    expect(await runner.catchUp(table)).toMatchObject({ events: 5 });
    const after = await readCounts(t.db, table);
    expect(after.map((c) => c.id)).toEqual(events.map((e) => e.id));
    expect(after.every((c) => c.n === 1)).toBe(true);
    expect(await runner.lag(table)).toMatchObject({ status: "running", error: null, eventsBehind: 0 });
  });

  it("a batch that fails once (a transient error) is retried event by event: nothing lost, nothing doubled", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 12);
    const projection = countingProjection({
      name: table,
      table,
      category,
      onApply: ({ call }) => {
        if (call === 2) throw new Error("transient");
      },
    });
    const runner = runnerOf(projection, 5);
    expect(await runner.catchUp(table)).toMatchObject({ events: 12 });
    const counts = await readCounts(t.db, table);
    expect(counts).toHaveLength(12);
    expect(counts.every((c) => c.n === 1)).toBe(true);
    expect((await runner.lag(table)).status).toBe("running");
  });

  it("rebuild empties the rows and replays from position 0 to the same rows", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 9);
    const runner = runnerOf(countingProjection({ name: table, table, category }), 4);
    await runner.catchUp(table);
    const first = await readCounts(t.db, table);
    const result = await runner.rebuild(table);
    expect(result).toMatchObject({ events: 9, rebuilt: true });
    expect(await readCounts(t.db, table)).toEqual(first);
    const lag = await runner.lag(table);
    expect(lag.rebuiltAt).toBeInstanceOf(Date);
    expect(lag).toMatchObject({ eventsApplied: 9, eventsBehind: 0 });
  });

  it("lag reports the head, the events behind and their age", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    const runner = runnerOf(countingProjection({ name: table, table, category }));
    expect(await runner.lag(table)).toMatchObject({
      position: 0,
      headPosition: 0,
      eventsBehind: 0,
      ageMs: 0,
      oldestPendingAt: null,
      status: "running",
      builtVersion: 0,
      version: 1,
    });
    await seed(category, 6);
    const events = await store.readAll({ category });
    await new Promise((r) => setTimeout(r, 30));
    const behind = await runner.lag(table);
    expect(behind).toMatchObject({ position: 0, headPosition: events.at(-1)!.globalPosition, eventsBehind: 6 });
    expect(behind.ageMs).toBeGreaterThanOrEqual(20);
    expect(behind.oldestPendingAt).toEqual(events[0]!.recordedAt);
    await runner.catchUp(table);
    expect(await runner.lag(table)).toMatchObject({
      position: events.at(-1)!.globalPosition,
      eventsBehind: 0,
      ageMs: 0,
      eventsApplied: 6,
      builtVersion: 1,
    });
  });

  it("only handled event types reach apply; the checkpoint still passes the others", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    for (let i = 0; i < 6; i++) await store.append(`${category}-1`, [event(i % 2 ? "t.kept" : "t.ignored")]);
    const runner = runnerOf(
      countingProjection({ name: table, table, category, handles: (type: string) => type === "t.kept" }),
      2,
    );
    expect(await runner.catchUp(table)).toMatchObject({ events: 6 });
    expect(await readCounts(t.db, table)).toHaveLength(3);
    expect((await runner.lag(table)).eventsBehind).toBe(0);
  });

  it("a new projection version rebuilds on the next catch-up; an older version refuses a newer build", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 5);
    const v1 = runnerOf(countingProjection({ name: table, table, category, version: 1 }));
    await v1.catchUp(table);
    // Corrupt the rows on purpose: only a rebuild puts them right.
    await sql`update ${sql.table(table)} set n = 7`.execute(t.db);
    const v2 = runnerOf(countingProjection({ name: table, table, category, version: 2 }));
    expect(await v2.catchUp(table)).toMatchObject({ rebuilt: true, events: 5 });
    expect((await readCounts(t.db, table)).every((c) => c.n === 1)).toBe(true);
    const error = await failure(v1.catchUp(table));
    expect(error).toBeMaqetError("PROJECTION_FAILED");
    expect((error as Error).message).toContain("built by a newer maqet");
  });

  it("the live loop follows appends (woken by appended$) and stops cleanly", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    const runner = runnerOf(countingProjection({ name: table, table, category }));
    runner.start({ wakeUps: store.appended$, pollIntervalMs: 60_000 });
    try {
      await seed(category, 5);
      await waitUntil(
        "the running projection to apply 5 events",
        () => readCounts(t.db, table),
        (rows) => rows.length >= 5,
        {
          timeoutMs: 30_000,
          everyMs: 10,
        },
      );
      expect(await readCounts(t.db, table)).toHaveLength(5);
    } finally {
      await runner.stop();
    }
  });

  // The rebuild fast path (Projection.rebuilder): fold in memory, swap rows and checkpoint in one
  // transaction; the live path stays apply.

  it("a rebuilder builds in memory and commits rows and checkpoint in one transaction; later events go through apply", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 9);
    const projection = countingProjection({ name: table, table, category, rebuilder: {} });
    const runner = runnerOf(projection, 4);
    // The first catch-up is a build (version 0 -> 1): the fast path, 3 pages folded, 1 transaction.
    expect(await runner.catchUp(table)).toMatchObject({ events: 9, batches: 1, rebuilt: true });
    expect(projection.stats).toEqual({ applyCalls: 0, folds: 3, writes: 1 });
    const events = await store.readAll({ category });
    expect(await readCounts(t.db, table)).toEqual(events.map((e) => ({ id: e.id, position: e.globalPosition, n: 1 })));
    expect(await runner.lag(table)).toMatchObject({ eventsApplied: 9, eventsBehind: 0, builtVersion: 1 });

    await seed(category, 5);
    expect(await runner.catchUp(table)).toMatchObject({ events: 5, batches: 2, rebuilt: false });
    expect(projection.stats.applyCalls).toBe(2);

    await sql`update ${sql.table(table)} set n = 7`.execute(t.db);
    expect(await runner.rebuild(table)).toMatchObject({ events: 14, batches: 1, rebuilt: true });
    expect(projection.stats).toMatchObject({ applyCalls: 2, writes: 2 });
    const counts = await readCounts(t.db, table);
    expect(counts).toHaveLength(14);
    expect(counts.every((c) => c.n === 1)).toBe(true);
    expect(await runner.lag(table)).toMatchObject({ eventsApplied: 14, eventsBehind: 0 });
  });

  it("a fast rebuild cut short (aborted while folding) leaves the previous rows and checkpoint as they were", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 9);
    const controller = new AbortController();
    const projection = countingProjection({
      name: table,
      table,
      category,
      rebuilder: { onFold: () => (projection.stats.folds === 2 ? controller.abort() : undefined) },
    });
    const runner = runnerOf(projection, 4);
    await runner.catchUp(table);
    await sql`update ${sql.table(table)} set n = 7`.execute(t.db); // marks the rows a rebuild would replace
    const before = await runner.lag(table);
    const error = await failure(runner.rebuild(table, { signal: controller.signal }));
    expect((error as Error).name).toBe("AbortError");
    const counts = await readCounts(t.db, table);
    expect(counts).toHaveLength(9);
    expect(counts.every((c) => c.n === 7)).toBe(true);
    expect(await runner.lag(table)).toMatchObject({
      position: before.position,
      eventsApplied: before.eventsApplied,
      rebuiltAt: before.rebuiltAt,
    });
    expect(await runner.rebuild(table)).toMatchObject({ events: 9, batches: 1 });
    expect((await readCounts(t.db, table)).every((c) => c.n === 1)).toBe(true);
  });

  it("a rebuilder whose write fails rolls the swap back; the batch path rebuilds instead, every event once", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 10);
    const projection = countingProjection({
      name: table,
      table,
      category,
      rebuilder: {
        onWrite: async ({ trx }) => {
          // The rows are in (uncommitted) when this throws: the rollback must take them back.
          expect((await readCounts(trx, table)).length).toBe(10);
          throw new Error("lost the connection (simulated)");
        },
      },
    });
    const runner = runnerOf(projection, 4);
    expect(await runner.catchUp(table)).toMatchObject({ events: 10, batches: 3, rebuilt: true });
    expect(projection.stats).toMatchObject({ writes: 1, applyCalls: 3 });
    const counts = await readCounts(t.db, table);
    expect(counts).toHaveLength(10);
    expect(counts.every((c) => c.n === 1)).toBe(true);
  });

  it("a rebuilder whose fold throws falls back to the batch path, which stops at the failing event as always", async () => {
    const { table, events, poison, projection, runner, heal } = await poisoned(true);
    const error = await failure(runner.catchUp(table));
    expect(error).toBeMaqetError("PROJECTION_FAILED");
    expect((error as Error).message).toContain(`stopped at event ${poison.globalPosition}`);
    expect((await readCounts(t.db, table)).map((c) => c.id)).toEqual(events.slice(0, 7).map((e) => e.id));
    expect(projection.stats.writes).toBe(0);
    heal();
    expect(await runner.catchUp(table)).toMatchObject({ events: 5 });
    expect((await readCounts(t.db, table)).map((c) => [c.id, c.n])).toEqual(events.map((e) => [e.id, 1]));
  });

  it("a rebuilder at its memory bound writes what it folded and applies the rest batch by batch", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 11);
    const projection = countingProjection({ name: table, table, category, rebuilder: { limit: 4 } });
    const runner = runnerOf(projection, 3);
    // Folds 2 pages (6 events, past the bound of 4), swaps them in, then 5 events in 2 batches.
    expect(await runner.rebuild(table)).toMatchObject({ events: 11, batches: 3, rebuilt: true });
    expect(projection.stats).toMatchObject({ folds: 2, writes: 1, applyCalls: 2 });
    const counts = await readCounts(t.db, table);
    expect(counts.map((c) => c.id)).toEqual((await store.readAll({ category })).map((e) => e.id));
    expect(counts.every((c) => c.n === 1)).toBe(true);
    expect(await runner.lag(table)).toMatchObject({ eventsApplied: 11, eventsBehind: 0 });
  });

  it("a new projection version rebuilds through the rebuilder", async () => {
    const { table, category } = fresh();
    await createCountsTable(t.db, table);
    await seed(category, 5);
    const v1 = runnerOf(countingProjection({ name: table, table, category, version: 1 }));
    await v1.catchUp(table);
    await sql`update ${sql.table(table)} set n = 7`.execute(t.db);
    const projection = countingProjection({ name: table, table, category, version: 2, rebuilder: {} });
    const v2 = runnerOf(projection);
    expect(await v2.catchUp(table)).toMatchObject({ rebuilt: true, events: 5, batches: 1 });
    expect(projection.stats).toMatchObject({ writes: 1, applyCalls: 0 });
    expect((await readCounts(t.db, table)).every((c) => c.n === 1)).toBe(true);
  });

  if (dialect !== "pg") {
    console.log(
      `[projection-runner ${dialect}] skipped the cases with two connections or processes: PGlite has one session`,
    );
  }

  it.runIf(dialect === "pg")(
    "two runners on separate connections share a projection without double-applying",
    async () => {
      const { table, category } = fresh();
      await createCountsTable(t.db, table);
      await seed(category, 200, 7);
      const other = await openPgDatabase({ url: t.url! });
      try {
        const runners = [t.db, other.db].map((db) =>
          runnerOf(countingProjection({ name: table, table, category }), 3, db),
        );
        const results = await Promise.all([...runners, ...runners].map((r) => r.catchUp(table)));
        expect(results.reduce((sum, r) => sum + r.events, 0)).toBe(200);
        const counts = await readCounts(t.db, table);
        expect(counts).toHaveLength(200);
        expect(counts.every((c) => c.n === 1)).toBe(true);
      } finally {
        await other.close();
      }
    },
  );

  it.runIf(dialect === "pg")(
    "a runner process SIGKILLed inside batch 2 leaves batch 1 committed; the next runner resumes exactly once",
    async () => {
      const { table, category } = fresh();
      await createCountsTable(t.db, table);
      await seed(category, 10);
      // The child reads every category: give it a store of its own events only.
      await killWhenHanging([t.url!, table, "4", "2"], "hang 2");

      // The child counted every category's events; only its batch 1 (4 events) is committed.
      const all = await store.readAll();
      const afterKill = await readCounts(t.db, table);
      expect(afterKill.map((c) => c.id)).toEqual(all.slice(0, 4).map((e) => e.id));
      expect(afterKill.every((c) => c.n === 1)).toBe(true);

      const runner = runnerOf(countingProjection({ name: table, table }), 4);
      // The killed backend's transaction may take a moment to end; the resume waits on its lock.
      await runner.catchUp(table);
      const counts = await readCounts(t.db, table);
      expect(counts.map((c) => c.id)).toEqual((await store.readAll()).map((e) => e.id));
      expect(counts.every((c) => c.n === 1)).toBe(true);
    },
  );

  it.runIf(dialect === "pg")(
    "two runners building with the fast path at once: one swap wins, the other goes on from its checkpoint; nothing doubled",
    async () => {
      const { table, category } = fresh();
      await createCountsTable(t.db, table);
      await seed(category, 60, 7);
      const other = await openPgDatabase({ url: t.url! });
      try {
        const projections = [0, 1].map(() => countingProjection({ name: table, table, category, rebuilder: {} }));
        const runners = [t.db, other.db].map((db, i) => runnerOf(projections[i]!, 7, db));
        await Promise.all([runners[0]!.catchUp(table), runners[1]!.catchUp(table), runners[1]!.rebuild(table)]);
        await seed(category, 10, 7);
        await Promise.all([runners[0]!.rebuild(table), runners[1]!.catchUp(table)]);
        await runners[1]!.catchUp(table);
        const counts = await readCounts(t.db, table);
        expect(counts.map((c) => c.id)).toEqual((await store.readAll({ category })).map((e) => e.id));
        expect(counts.every((c) => c.n === 1)).toBe(true);
      } finally {
        await other.close();
      }
    },
  );

  it.runIf(dialect === "pg")(
    "a runner process SIGKILLed inside the swap of a fast rebuild (rows inserted, not committed) leaves the previous rows and checkpoint",
    async () => {
      const { table } = fresh();
      await createCountsTable(t.db, table);
      await seed(fresh().category, 6);
      // The child folds every category: so does this runner.
      const runner = runnerOf(countingProjection({ name: table, table }));
      await runner.catchUp(table);
      await sql`update ${sql.table(table)} set n = 7`.execute(t.db);
      const before = await runner.lag(table);
      await killWhenHanging([t.url!, table, "100", "write"], "hang write");
      // The killed backend's transaction may take a moment to end: its lock on the table holds this read.
      const counts = await readCounts(t.db, table);
      expect(counts.length).toBe(before.eventsApplied);
      expect(counts.every((c) => c.n === 7)).toBe(true);
      expect(await runner.lag(table)).toMatchObject({
        position: before.position,
        eventsApplied: before.eventsApplied,
        rebuiltAt: before.rebuiltAt,
      });
    },
  );
});

/**
 * Runs test/fixtures/projection-child.mjs (a runner process on the built dist/) with `args`,
 * waits until it prints `marker` (it hangs there, mid-transaction), and SIGKILLs it.
 */
async function killWhenHanging(args: string[], marker: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [join(projectRoot, "test/fixtures/projection-child.mjs"), join(projectRoot, "dist"), ...args],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(marker)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`child exited ${code} before hanging: ${out}`)));
  });
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
}
