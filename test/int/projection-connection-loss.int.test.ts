/**
 * A projection whose batch loses its server connection mid-apply (a PostgreSQL restart: the
 * statement fails with STORE_ERROR, reason `connection-lost`, src/adapters/pg-connection-loss.ts)
 * is not stalled at that event: the store failed, not the projection. The catch-up fails with
 * STORE_ERROR, nothing is recorded against the event, and the next catch-up applies everything
 * once. Before, it was stalled there with PROJECTION_FAILED, as for an event it cannot apply.
 */
import { describe, expect, it } from "vitest";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import { countingProjection, createCountsTable, readCounts } from "../fixtures/counting-projection.mjs";
import { failure } from "../support/failure.ts";
import { event } from "../support/store-events.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

// A cluster of its own on the server, as projection-runner.int.test.ts (the watermark is cluster-wide).
describe.each(testDatabases({ ownCluster: true }))("a projection's lost connection on $name", (testDialect) => {
  let t: TestDatabase;
  let store: PostgresEventStore;
  openForSuite(testDialect, (opened) => ({ t, store } = opened));

  it("fails the catch-up with STORE_ERROR, stalls nothing, and the next catch-up applies every event once", async () => {
    const table = "t_counts_lost";
    const category = "lost";
    await createCountsTable(t.db, table);
    for (let i = 0; i < 12; i++) await store.append(`${category}-${i % 3}`, [event("t.happened", { i })]);
    const events = await store.readAll({ category });
    const victim = events[7]!;
    // The server is away until `down` turns false: every statement of a batch holding the
    // victim fails (the batch, and the one-event retry the runner makes for a throwing apply).
    let down = true;
    const projection = countingProjection({
      name: table,
      table,
      category,
      onApply: ({ events: batch }) => {
        if (down && batch.some((e) => e.id === victim.id)) {
          throw new MaqetError(
            "STORE_ERROR",
            "The PostgreSQL server did not answer: Connection terminated unexpectedly.",
            {
              details: { reason: "connection-lost" },
            },
          );
        }
      },
    });
    const runner = new ProjectionRunner({
      db: t.db,
      store,
      batchSize: 5,
      rebuildBatchSize: 5,
      projections: [projection],
    });

    const error = await failure(runner.catchUp(table));
    expect(error).toBeMaqetError("STORE_ERROR");
    expect((error as Error).message).toContain(`commit a batch of projection '${table}'`);
    const lag = await runner.lag(table);
    expect(lag.status).not.toBe("stalled");
    expect(lag.error ?? null).toBeNull();

    down = false;
    await runner.catchUp(table);
    const counts = await readCounts(t.db, table);
    expect(counts.map((c) => c.id)).toEqual(events.map((e) => e.id));
    expect(counts.every((c) => c.n === 1)).toBe(true);
  });
});
