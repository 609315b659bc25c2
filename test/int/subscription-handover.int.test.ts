/**
 * The hand-over on the embedded store (PGlite, one session): a store opened with `singleSession`
 * gives its own committed appends to its live subscriptions at commit, without reading them
 * back; anything it cannot prove is next in read order (another writer's transaction in
 * between, an append left inside a transaction) is read as before. These tests hold it to the
 * guarantees of docs/events.md: nothing uncommitted, nothing twice, nothing missed, one order.
 * The rest of the contract runs with the hand-over on in test/int/event-store-conformance.int.test.ts.
 */
import { type Kysely, sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendToStream, currentVersion } from "../../src/events/append-to-stream.ts";
import type { SubscribeOptions } from "../../src/events/event-store.ts";
import type { PostgresEventStore, PostgresEventStoreOptions } from "../../src/events/postgres-event-store.ts";
import type { Database } from "../../src/events/schema.ts";
import { runWriter, type WrittenEvent } from "../fixtures/event-writer.mjs";
import { FakeClock } from "../support/fake-clock.ts";
import { waitUntil } from "../support/poll.ts";
import { event, prepared } from "../support/store-events.ts";
import { collect } from "../support/subscription-collector.ts";
import { openPgliteTestDatabase } from "../support/test-databases.ts";

type PgliteTestDatabase = Awaited<ReturnType<typeof openPgliteTestDatabase>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("events handed over at commit on PGlite (singleSession)", () => {
  let clone: PgliteTestDatabase;
  let db: Kysely<Database>;
  let store: PostgresEventStore;
  let category: string;
  let counter = 0;
  /** Watermarked reads (subscription pages, head) sent to the session since the last reset. */
  let reads = 0;

  const openStore = (options: PostgresEventStoreOptions = {}) => clone.openStore(options);

  beforeEach(async () => {
    clone = await openPgliteTestDatabase();
    db = clone.db;
    const query = clone.pglite.query.bind(clone.pglite);
    clone.pglite.query = ((text: string, ...rest: unknown[]) => {
      if (text.includes("pg_snapshot_xmin")) reads++;
      return (query as (...args: unknown[]) => unknown)(text, ...rest);
    }) as typeof clone.pglite.query;
    store = await openStore();
    category = `h${++counter}`;
    // A cursor to follow: on an empty store a subscription has no event for the first one to
    // come right after, and reads instead (tests here would then not exercise the hand-over).
    await store.append("seed-1", [event("seed")]);
  });
  afterEach(async () => {
    await store.close();
    await clone.close();
  });

  it("delivers the store's own appends before the append returns, without reading them back", async () => {
    // Time for the subscription's polls stands still (a FakeClock nobody advances): no poll can
    // fire, however long the appends take, so every read counted below would be one the
    // hand-over should have spared.
    await store.close();
    store = await openStore({ clock: new FakeClock() });
    const sub = collect(store, { from: "end", filter: { category } });
    await sub.waitCaughtUp();
    reads = 0;
    for (let i = 0; i < 40; i++) {
      const result = await store.append(`${category}-${i % 3}`, [event("one"), event("two")]);
      // At commit, before this promise resolved: the subscriber has them already.
      expect(sub.ids().slice(-2)).toEqual(result.events.map((e) => e.id));
    }
    const burst = await Promise.all(
      Array.from({ length: 60 }, (_, i) => store.append(`${category}-${i % 5}`, [event("burst")])),
    );
    expect(sub.ids().slice(80)).toEqual(burst.map((r) => r.events[0]!.id));
    expect(reads).toBe(0); // 140 events handed over, none read back
    expect(sub.ids()).toEqual((await store.readAll({ category })).map((e) => e.id));
    expect(sub.messages.filter((m) => m.kind === "event").map((m) => m.checkpoint)).toEqual(
      (await store.readAll({ category })).map((e) => expect.objectContaining({ position: e.globalPosition })),
    );
    sub.subscription.unsubscribe();
  });

  it("tells appended$ of the store's own appends first, before any subscriber sees them, as a reader gets them", async () => {
    // A cached VM list listens to appended$; a subscriber that acts on an event (asks that list)
    // must find it there already (the supervising instance's "stopped in the list at once").
    const sub = collect(store, { from: "end", filter: { category } });
    await sub.waitCaughtUp();
    const seenBySubscriberFirst: string[] = [];
    const told: string[] = [];
    const watch = store.appended$.subscribe((e) => {
      told.push(e.id);
      if (sub.ids().includes(e.id)) seenBySubscriberFirst.push(e.id);
    });
    const result = await store.append(`${category}-1`, [event("one", { b: 1, a: 2 })]);
    const appended = result.events[0]!;
    expect(told).toEqual([appended.id]); // once, not again when the append returns
    expect(seenBySubscriberFirst).toEqual([]);
    expect(sub.ids()).toEqual([appended.id]);
    // Its data as jsonb gives it back (key order included), like what the subscriber got.
    const [stored] = await store.readStream(`${category}-1`);
    watch.unsubscribe();
    const again: unknown[] = [];
    const second = store.appended$.subscribe((e) => again.push(e.data));
    await store.append(`${category}-1`, [event("two", { b: 1, a: 2 })]);
    second.unsubscribe();
    expect(Object.keys(again[0] as object)).toEqual(Object.keys(stored!.data as object));
    sub.subscription.unsubscribe();
  });

  for (const ending of ["commits", "rolls back"] as const) {
    it(`holds back a caller's open transaction with appendToStream inside until it ${ending}, in order`, async () => {
      const sub = collect(store, { from: "end", filter: { category } });
      await sub.waitCaughtUp();
      const trx = await db.startTransaction().execute();
      const held = await appendToStream(trx, `${category}-held`, [prepared("held")], "any");
      const own = store.append(`${category}-own`, [event("own")]); // waits for the session
      await sleep(100);
      expect(sub.events()).toEqual([]);
      await (ending === "commits" ? trx.commit() : trx.rollback()).execute();
      await own;
      const expected = ending === "commits" ? ["held", "own"] : ["own"];
      await sub.waitEvents(expected.length);
      await sleep(50);
      expect(sub.events().map((e) => e.type)).toEqual(expected);
      expect(sub.ids()).toEqual((await store.readAll({ category })).map((e) => e.id));
      if (ending === "commits") expect(sub.ids()[0]).toBe(held.events[0]!.id);
      sub.subscription.unsubscribe();
    });
  }

  for (const ending of ["commit", "rollback"] as const) {
    it(`does not hand over an append left inside a raw BEGIN on the session; delivers it only after ${ending}`, async () => {
      const sub = collect(store, { from: "end", filter: { category } });
      await sub.waitCaughtUp();
      await sql`begin`.execute(db); // outside the driver's transactions: the store cannot know
      try {
        await store.append(`${category}-1`, [event("inside")]);
        await sleep(100);
        expect(sub.events()).toEqual([]);
      } finally {
        await sql.raw(ending).execute(db);
      }
      await store.append(`${category}-1`, [event("after")]);
      const expected = ending === "commit" ? ["inside", "after"] : ["after"];
      await sub.waitEvents(expected.length);
      await sleep(50);
      expect(sub.events().map((e) => e.type)).toEqual(expected);
      sub.subscription.unsubscribe();
    });
  }

  it("delivers every committed event once, in read order, with the store's appends racing other writers' transactions", async () => {
    const other = await openStore(); // a second store: learns of this one's appends only by NOTIFY
    const plain = await openStore({ singleSession: undefined }); // no hand-over at all
    const filter = { category };
    const early = collect(store, { filter });
    const fromOther = collect(other, { from: "end", filter });
    const fromPlain = collect(plain, { from: "end", filter });
    await Promise.all([early.waitCaughtUp(), fromOther.waitCaughtUp(), fromPlain.waitCaughtUp()]);
    const seed = Date.now() % 100_000;
    console.log(`[handover] writers seed ${seed}`);
    const own: string[] = [];
    const writing = Promise.all([
      ...[0, 1].map((i) =>
        runWriter({
          db,
          appendToStream,
          currentVersion,
          writer: `w${i}`,
          category,
          streams: 4,
          appends: 20,
          seed: seed + i,
        }),
      ),
      (async () => {
        for (let i = 0; i < 40; i++) {
          const burst = Array.from({ length: 1 + (i % 3) }, (_, k) =>
            store.append(`${category}-${(i + k) % 4}`, [event("own", { i, k })]),
          );
          for (const r of await Promise.all(burst)) own.push(...r.events.map((e) => e.id));
          await sleep(i % 4);
        }
        return { committed: [] as WrittenEvent[], rollbacks: 0, conflicts: 0 };
      })(),
    ]);
    await sleep(20);
    const late = collect(store, { filter });
    const restarting = [collect(store, { filter })];
    let resumeFrom: SubscribeOptions["from"] = "start";
    for (let r = 0; r < 3; r++) {
      await sleep(30);
      const previous = restarting.at(-1)!;
      previous.subscription.unsubscribe();
      const last = previous.messages.findLast((m) => m.kind === "event");
      if (last?.kind === "event") resumeFrom = last.checkpoint;
      restarting.push(collect(store, { filter, from: resumeFrom }));
    }
    const results = await writing;
    const committed = new Set([...results.flatMap((r) => r.committed.map((e) => e.id)), ...own]);
    expect(results.reduce((n, r) => n + r.rollbacks, 0)).toBeGreaterThan(0);
    const order = (await store.readAll(filter)).map((e) => e.id);
    expect(new Set(order)).toEqual(committed);
    for (const c of [early, late, fromOther, fromPlain]) await c.waitEvents(order.length, 15_000);
    await sleep(50);
    const restarted = () => restarting.flatMap((c) => c.ids());
    await waitUntil(
      "the restarting subscriber to see every event",
      () => restarted().length,
      (n) => n >= order.length,
      {
        timeoutMs: 15_000,
      },
    );
    for (const ids of [early.ids(), late.ids(), fromOther.ids(), fromPlain.ids(), restarted()]) {
      expect(ids).toEqual(order); // exactly once, one order: the store's read order
    }
    for (const c of [early, late, fromOther, fromPlain, restarting.at(-1)!]) c.subscription.unsubscribe();
    await other.close();
    await plain.close();
  }, 60_000);
});
