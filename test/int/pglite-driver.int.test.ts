/**
 * The in-house PGlite kysely driver: one connection shared safely (transactions never
 * interleave), commit/rollback/savepoints, affected-row counts, and a destroy that waits.
 */
import { type Generated, type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PgliteDatabase } from "../../src/adapters/pglite-database.ts";
import { openTemplateClone } from "../support/pglite-template.ts";

interface Db {
  t: { id: Generated<number>; who: string; step: number };
}

let clone: PgliteDatabase;
let db: Kysely<Db>;
beforeAll(async () => {
  clone = await openTemplateClone(inject("pgliteTemplate"));
  db = clone.db as unknown as Kysely<Db>;
  await sql`create table t (id serial primary key, who text not null, step int not null)`.execute(db);
});
afterAll(async () => {
  await clone?.close();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("PgliteDialect", () => {
  it("serialises concurrent transactions: no statement of one lands inside another", async () => {
    await sql`truncate t`.execute(db);
    const work = (who: string) =>
      db.transaction().execute(async (trx) => {
        for (let step = 0; step < 3; step++) {
          await trx.insertInto("t").values({ who, step }).execute();
          await pause(5); // yield to the event loop: the other transaction must still wait
        }
      });
    await Promise.all([work("a"), work("b"), db.insertInto("t").values({ who: "c", step: 0 }).execute()]);
    const rows = await db.selectFrom("t").select(["who", "step"]).orderBy("id").execute();
    const order = rows.map((r) => r.who).join("");
    expect(order).toMatch(/^(aaa|bbb|c)+$/);
    expect(order.length).toBe(7);
    expect(["aaabbbc", "aaacbbb", "bbbaaac", "bbbcaaa", "caaabbb", "cbbbaaa"]).toContain(order);
  });

  it("rolls back a transaction that throws, and frees the connection", async () => {
    await sql`truncate t`.execute(db);
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("t").values({ who: "x", step: 1 }).execute();
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await db.selectFrom("t").selectAll().execute()).toEqual([]);
  });

  it("supports controlled transactions with savepoints", async () => {
    await sql`truncate t`.execute(db);
    const trx = await db.startTransaction().execute();
    await trx.insertInto("t").values({ who: "kept", step: 1 }).execute();
    const sp = await trx.savepoint("before_drop").execute();
    await sp.insertInto("t").values({ who: "dropped", step: 2 }).execute();
    const back = await sp.rollbackToSavepoint("before_drop").execute();
    await back.commit().execute();
    expect((await db.selectFrom("t").select("who").execute()).map((r) => r.who)).toEqual(["kept"]);
  });

  it("reports affected rows for writes only", async () => {
    await sql`truncate t`.execute(db);
    await db
      .insertInto("t")
      .values([
        { who: "a", step: 1 },
        { who: "b", step: 1 },
      ])
      .execute();
    const updated = await db.updateTable("t").set({ step: 2 }).executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(2n);
    const deleted = await db.deleteFrom("t").where("who", "=", "a").executeTakeFirst();
    expect(deleted.numDeletedRows).toBe(1n);
    const selected = await sql`select 1 as one`.execute(db);
    expect(selected.numAffectedRows).toBeUndefined();
    expect(selected.rows).toEqual([{ one: 1 }]);
  });

  it("streams a result in chunks of the asked size, every row once and in order", async () => {
    await sql`truncate t`.execute(db);
    await db
      .insertInto("t")
      .values([0, 1, 2, 3, 4].map((step) => ({ who: "s", step })))
      .execute();
    const query = db.selectFrom("t").select("step").orderBy("step").compile();
    const chunks = await db.getExecutor().provideConnection(async (connection) => {
      const seen: number[][] = [];
      for await (const chunk of connection.streamQuery<{ step: number }>(query, 2))
        seen.push(chunk.rows.map((r) => r.step));
      return seen;
    });
    expect(chunks).toEqual([[0, 1], [2, 3], [4]]);
    const rows: number[] = [];
    for await (const row of db.selectFrom("t").select("step").orderBy("step").stream(2)) rows.push(row.step);
    expect(rows).toEqual([0, 1, 2, 3, 4]);
  });

  it("waits for an open transaction before closing", async () => {
    const own = await openTemplateClone(inject("pgliteTemplate"));
    const trx = await own.db.startTransaction().execute();
    const order: string[] = [];
    const closing = own.close().then(() => order.push("closed"));
    await pause(20);
    // Still open: close() is waiting for the transaction, which can go on working.
    expect(order).toEqual([]);
    expect(own.pglite.closed).toBe(false);
    expect((await sql<{ one: number }>`select 1 as one`.execute(trx)).rows).toEqual([{ one: 1 }]);
    await trx.commit().execute();
    order.push("committed");
    await closing;
    expect(order).toEqual(["committed", "closed"]);
    expect(own.pglite.closed).toBe(true);
  });
});
