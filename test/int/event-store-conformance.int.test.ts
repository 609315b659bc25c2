/**
 * The event-store conformance suite (issue 3), one file run against PGlite and the PostgreSQL
 * server of this test run, same tests, same expectations:
 *
 * 1. N writers x M streams, random delays inside transactions, random rollbacks (and, on the
 *    server, writers in separate processes): every subscriber sees every committed event exactly
 *    once, per-stream order intact, all subscribers agree on one global order, final checkpoint =
 *    head.
 * 2. The gap case: a transaction holding a lower position stays open while later ones commit.
 * 3. The expected-version matrix {any, no_stream, stream_exists, exact} x {absent, present} x
 *    {alone, racing}.
 * 4. Five writers at one expected version: one wins, four conflict, no position burned.
 * 5. Idempotent retries and conflicting duplicates.
 * 6. The subscriber's LISTEN connection killed with pg_terminate_backend mid-stream.
 * 7. A property-based test (fast-check) of append/read/subscribe/restart interleavings against
 *    the in-memory model (test/support/memory-event-store.ts).
 *
 * PGlite is one session: nothing there can stay open beside another writer, so "racing" means
 * concurrent calls serialised by the driver, and the cases that need two open transactions (2, 6,
 * separate processes) are skipped there with their reason.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import fc from "fast-check";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMaqetError } from "../../src/errors/maqet-error.ts";
import { appendToStream, currentVersion } from "../../src/events/append-to-stream.ts";
import type { Checkpoint } from "../../src/events/checkpoint.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import type { AppendResult, EventStore, ExpectedVersion, SubscribeOptions } from "../../src/events/event-store.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import type { Database } from "../../src/events/schema.ts";
import { runWriter, type WrittenEvent } from "../fixtures/event-writer.mjs";
import { projectRoot } from "../support/build-dist.ts";
import { failure } from "../support/failure.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";
import { raceOnStream } from "../support/pg-locks.ts";
import { waitUntil } from "../support/poll.ts";
import { event, prepared } from "../support/store-events.ts";
import { type Collector, collect } from "../support/subscription-collector.ts";
import { LISTEN_APP, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The backends LISTENing for this database's stores. */
async function listenPids(db: Kysely<Database>): Promise<number[]> {
  const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity
    where datname = current_database() and application_name = ${LISTEN_APP}`.execute(db);
  return rows.map((r) => r.pid);
}

/** The highest position stored, committed or held back alike (the watermark does not apply). */
async function maxPosition(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ p: string | number | null }>`select max(global_position) as p from maqet_events`.execute(
    db,
  );
  return Number(rows[0]?.p ?? 0);
}

/**
 * Waits until `count` events of `category` are readable. On the shared server another test
 * file's open transaction may hold the (cluster-wide) watermark for a moment; tests that compare
 * reads with what they just wrote wait for their writes to become readable first.
 */
async function readable(store: EventStore, category: string, count: number): Promise<void> {
  await waitUntil(
    `${count} events of ${category} readable`,
    async () => (await store.readAll({ category })).length,
    (n) => n >= count,
    { timeoutMs: 10_000 },
  );
}

// This suite holds transactions open on purpose, and the watermark is cluster-wide: its server
// cases run on a cluster of their own, so they hold back no other file's reads (nor theirs).
describe.each(testDatabases({ ownCluster: true }))("event-store conformance on $name", ({ name, open }) => {
  let h: TestDatabase;
  let store: PostgresEventStore;
  let counter = 0;
  /** A fresh category per test (no dash), so filtered reads see only that test's streams. */
  const newCategory = () => `c${name.replace(/\W/g, "")}${++counter}`;
  const newStream = () => `${newCategory()}-s`;
  const needsTwoSessions = (what: string) => {
    const reason = `PGlite has one session, so ${what} cannot happen there`;
    console.log(`[conformance pglite] skipped: ${reason}`);
    it.skip(`skipped: ${reason}`, () => {});
  };

  /**
   * The same database without group commit, for racing calls: one store's group commit sends
   * appends that arrive together one group after another, so they would never meet at the row
   * lock; without it each append is a transaction of its own on its own connection.
   */
  let racer: PostgresEventStore;

  beforeAll(async () => {
    h = await open();
    store = await h.openStore();
    racer = await h.openStore({ groupCommit: false });
  });
  afterAll(async () => {
    await racer?.close();
    await store?.close();
    await h?.close();
  });

  /** Makes the calls race for real on a server: all wait on one lock until released together. */
  const race = <T>(
    streamId: string,
    state: "absent" | "present",
    calls: () => Array<Promise<T>>,
    blocking: boolean,
    waiters?: number,
  ) => raceOnStream(h, streamId, state, calls, { blocking, ...(waiters === undefined ? {} : { waiters }) });

  /** Asserts that the next position drawn follows `last` directly: nothing was burned. */
  async function expectNothingBurnedAfter(last: number): Promise<void> {
    const next = await store.append(newStream(), [event("probe")]);
    expect(next.lastGlobalPosition).toBe(last + 1);
  }

  // ------------------------------------------------------------------ 3. expected-version matrix
  describe("expected-version matrix", () => {
    type Mode = "any" | "no_stream" | "stream_exists" | "exact";
    type Outcome = { ok: number; conflicts: number; actual?: number; versions?: number[] };
    // The documented outcomes (docs/events.md "Expected-version modes"); exact means version 0.
    const table: Array<[Mode, "absent" | "present", "alone" | "racing", Outcome]> = [
      ["any", "absent", "alone", { ok: 1, conflicts: 0, versions: [0] }],
      ["any", "present", "alone", { ok: 1, conflicts: 0, versions: [1] }],
      ["no_stream", "absent", "alone", { ok: 1, conflicts: 0, versions: [0] }],
      ["no_stream", "present", "alone", { ok: 0, conflicts: 1, actual: 0 }],
      ["stream_exists", "absent", "alone", { ok: 0, conflicts: 1, actual: -1 }],
      ["stream_exists", "present", "alone", { ok: 1, conflicts: 0, versions: [1] }],
      ["exact", "absent", "alone", { ok: 0, conflicts: 1, actual: -1 }],
      ["exact", "present", "alone", { ok: 1, conflicts: 0, versions: [1] }],
      ["any", "absent", "racing", { ok: 2, conflicts: 0, versions: [0, 1] }],
      ["any", "present", "racing", { ok: 2, conflicts: 0, versions: [1, 2] }],
      ["no_stream", "absent", "racing", { ok: 1, conflicts: 1, actual: 0, versions: [0] }],
      ["no_stream", "present", "racing", { ok: 0, conflicts: 2, actual: 0 }],
      ["stream_exists", "absent", "racing", { ok: 0, conflicts: 2, actual: -1 }],
      ["stream_exists", "present", "racing", { ok: 2, conflicts: 0, versions: [1, 2] }],
      ["exact", "absent", "racing", { ok: 0, conflicts: 2, actual: -1 }],
      ["exact", "present", "racing", { ok: 1, conflicts: 1, actual: 1, versions: [1] }],
    ];
    it.each(table)("%s on an %s stream, %s", async (mode, state, how, outcome) => {
      const streamId = newStream();
      const seeded = state === "present" ? await store.append(streamId, [event("seed")]) : undefined;
      const expected: ExpectedVersion = mode === "exact" ? 0 : mode;
      const attempt = (via = store) => via.append(streamId, [event("next")], { expectedVersion: expected });
      const results =
        how === "alone"
          ? await Promise.allSettled([attempt()])
          : await race(
              streamId,
              state,
              () => [attempt(racer), attempt(racer)],
              state === "present" || mode === "any" || mode === "no_stream",
            );
      const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
      expect(won.length).toBe(outcome.ok);
      expect(lost.length).toBe(outcome.conflicts);
      for (const error of lost) {
        expect(error).toBeMaqetError("CONCURRENCY_CONFLICT");
        expect((error as { details: unknown }).details).toEqual({ streamId, expected, actual: outcome.actual });
      }
      expect(won.map((r) => r.nextExpectedVersion).sort()).toEqual(outcome.versions ?? []);
      const stream = await store.readStream(streamId);
      expect(stream.map((e) => e.streamVersion)).toEqual(stream.map((_, i) => i));
      expect(stream.length).toBe((seeded ? 1 : 0) + outcome.ok);
      if (stream.length === 0) {
        const rows = await h.db
          .selectFrom("maqet_streams")
          .select("stream_id")
          .where("stream_id", "=", streamId)
          .execute();
        expect(rows).toEqual([]); // a refused append does not create the stream
      }
      if (stream.length > 0) await expectNothingBurnedAfter(stream.at(-1)!.globalPosition);
    });
  });

  // ------------------------------------------------------------------ 4. five writers, one version
  it("lets exactly one of five writers at one expected version win; the four losers burn nothing", async () => {
    const streamId = newStream();
    const seed = await store.append(streamId, [event("seed")]);
    const attempt = (i: number) => racer.append(streamId, [event(`w${i}-a`), event(`w${i}-b`)], { expectedVersion: 0 });
    const results = await race(streamId, "present", () => [0, 1, 2, 3, 4].map(attempt), true);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    expect(won.length).toBe(1);
    expect(lost.length).toBe(4);
    for (const error of lost) {
      expect(error).toBeMaqetError("CONCURRENCY_CONFLICT");
      expect((error as { details: unknown }).details).toEqual({ streamId, expected: 0, actual: 2 });
    }
    const stream = await store.readStream(streamId);
    expect(stream.map((e) => e.globalPosition)).toEqual([0, 1, 2].map((i) => seed.lastGlobalPosition + i));
    await expectNothingBurnedAfter(stream.at(-1)!.globalPosition);
  });

  // ------------------------------------------------------------------ 5. idempotency
  describe("idempotent appends", () => {
    it("returns the original result for a retry with the same ids, and writes nothing", async () => {
      const streamId = newStream();
      const first = [
        event("a", { n: 1, tags: ["x"] }, { id: crypto.randomUUID() }),
        event("b", null, { id: crypto.randomUUID() }),
      ];
      const original = await store.append(streamId, first, { expectedVersion: "no_stream" });
      const later = await store.append(streamId, [event("c", {}, { id: crypto.randomUUID() })], { expectedVersion: 1 });
      const top = await maxPosition(h.db);
      const emitted: StoredEvent[] = [];
      const watching = store.appended$.subscribe((e) => emitted.push(e));
      try {
        // The same call again (a retry after a lost reply), though the stream has moved on.
        expect(await store.append(streamId, first, { expectedVersion: "no_stream" })).toEqual(original);
        expect(await store.append(streamId, first, { expectedVersion: "any" })).toEqual(original);
        // Data compared as JSON values: key order does not matter.
        const reordered = [{ ...first[0]!, data: { tags: ["x"], n: 1 } }, first[1]!];
        expect(await store.append(streamId, reordered, { expectedVersion: -1 })).toEqual(original);
        // Metadata is not part of an event's identity: a retry from another process still matches.
        const otherMeta = first.map((e) => ({ ...e, metadata: { correlationId: "retry" } }));
        expect(await store.append(streamId, otherMeta, { expectedVersion: "no_stream" })).toEqual(original);
        expect(
          await store.append(streamId, [event("c", {}, { id: later.events[0]!.id })], { expectedVersion: 1 }),
        ).toEqual(later);
      } finally {
        watching.unsubscribe();
      }
      expect(emitted).toEqual([]);
      expect(await store.streamVersion(streamId)).toBe(2);
      expect(await maxPosition(h.db)).toBe(top);
    });

    it("refuses the same id with other content, stream, order or expected version as EVENT_ID_CONFLICT, writing nothing", async () => {
      const streamId = newStream();
      const a = event("a", { n: 1 }, { id: crypto.randomUUID() });
      const b = event("b", { n: 2 }, { id: crypto.randomUUID() });
      await store.append(streamId, [a, b], { expectedVersion: "no_stream" });
      const top = await maxPosition(h.db);
      const cases: Array<[string, string, () => Promise<unknown>]> = [
        ["different-content", "data", () => store.append(streamId, [{ ...a, data: { n: 9 } }, b])],
        ["different-content", "type", () => store.append(streamId, [{ ...a, type: "a2" }, b])],
        ["different-content", "schema version", () => store.append(streamId, [{ ...a, schemaVersion: 2 }, b])],
        ["other-stream", "stream", () => store.append(newStream(), [a, b])],
        ["partial", "partial overlap", () => store.append(streamId, [a, b, event("new")])],
        ["order", "order", () => store.append(streamId, [b, a])],
        ["expected-version", "expected version", () => store.append(streamId, [a, b], { expectedVersion: 5 })],
      ];
      for (const [reason, what, attempt] of cases) {
        const error = await failure(attempt());
        expect(error, what).toBeMaqetError("EVENT_ID_CONFLICT");
        expect((error as { details: { reason: string } }).details.reason, what).toBe(reason);
      }
      expect(await store.streamVersion(streamId)).toBe(1);
      expect(await maxPosition(h.db)).toBe(top);
    });

    it("answers racing identical appends with one write and the same result", async () => {
      for (const expectedVersion of ["any", "no_stream", 0] as const) {
        const streamId = newStream();
        const state = expectedVersion === 0 ? "present" : "absent";
        if (state === "present") await store.append(streamId, [event("seed")]);
        const events = [
          event("x", { v: expectedVersion }, { id: crypto.randomUUID() }),
          event("y", {}, { id: crypto.randomUUID() }),
        ];
        const results = await race(
          streamId,
          state,
          () => [
            racer.append(streamId, events, { expectedVersion }),
            racer.append(streamId, events, { expectedVersion }),
          ],
          true,
        );
        const values = results.map((r) => (r.status === "fulfilled" ? r.value : r.reason));
        expect(
          results.map((r) => r.status),
          String(expectedVersion),
        ).toEqual(["fulfilled", "fulfilled"]);
        expect(values[0]).toEqual(values[1]);
        expect((await store.readStream(streamId)).map((e) => e.type)).toEqual([
          ...(state === "present" ? ["seed"] : []),
          "x",
          "y",
        ]);
      }
    });
  });

  // ------------------------------------------------------------------ subscriptions, basics
  describe("subscriptions", () => {
    it("catch up, emit one caughtUp, go live, and resume exactly from a checkpoint or a position", async () => {
      const category = newCategory();
      const s1 = `${category}-1`;
      const s2 = `${category}-2`;
      await store.append(s1, [event("one"), event("two")]);
      await store.append(s2, [event("three")]);
      await readable(store, category, 3);
      const sub = collect(store, { filter: { category }, batchSize: 2 });
      await sub.waitCaughtUp();
      expect(sub.events().map((e) => e.type)).toEqual(["one", "two", "three"]);
      expect(sub.messages.at(-1)?.kind).toBe("caughtUp");
      await store.append(s1, [event("four")]);
      await store.append(s2, [event("five")]);
      await sub.waitEvents(5);
      expect(sub.events().map((e) => e.type)).toEqual(["one", "two", "three", "four", "five"]);
      expect(sub.caughtUps().length).toBe(1);
      const third = sub.messages.find((m) => m.kind === "event" && m.event.type === "three");
      sub.subscription.unsubscribe();
      if (third?.kind !== "event") throw new Error("no third event");

      await readable(store, category, 5);
      for (const from of [third.checkpoint, third.event.globalPosition]) {
        const resumed = collect(store, { from, filter: { category } });
        await resumed.waitCaughtUp();
        expect(
          resumed.events().map((e) => e.type),
          JSON.stringify(from),
        ).toEqual(["four", "five"]);
        resumed.subscription.unsubscribe();
      }
      const fromEnd = collect(store, { from: "end", filter: { category } });
      await fromEnd.waitCaughtUp();
      expect(fromEnd.events()).toEqual([]);
      await store.append(s2, [event("six")]);
      await fromEnd.waitEvents(1);
      expect(fromEnd.events().map((e) => e.type)).toEqual(["six"]);
      fromEnd.subscription.unsubscribe();

      await readable(store, category, 6);
      const byStream = collect(store, { filter: { streamId: s2 } });
      const byType = collect(store, { filter: { category, types: ["two", "six"] } });
      await byStream.waitCaughtUp();
      await byType.waitCaughtUp();
      expect(byStream.events().map((e) => e.type)).toEqual(["three", "five", "six"]);
      expect(byType.events().map((e) => e.type)).toEqual(["two", "six"]);
      // The marker covers what the filter skipped: it is the head, not the last "two" or "six".
      const six = byType.events().at(-1)!;
      expect(byType.caughtUps()[0]!.position).toBeGreaterThanOrEqual(six.globalPosition);
      byStream.subscription.unsubscribe();
      byType.subscription.unsubscribe();
    });

    it("complete when their store closes, and reject bad starts", async () => {
      const own = await h.openStore();
      const sub = collect(own, { from: "end" });
      await sub.waitCaughtUp();
      await own.close();
      await sub.waitCompleted();
      expect(sub.error).toBeUndefined();
      for (const from of [-1, 1.5, { transactionId: "x", position: 1 }, "later"]) {
        expect(() => store.subscribe({ from: from as never }), JSON.stringify(from)).toThrow(
          /Invalid subscription start/,
        );
      }
      await expect(store.readAll({ after: { transactionId: "1" } as never })).rejects.toBeMaqetError(
        "INVALID_ARGUMENT",
      );
    });

    if (name === "pg") {
      it("share one LISTEN connection per store and close it with the last subscriber", async () => {
        const own = await h.openStore();
        try {
          const a = collect(own, { from: "end" });
          const b = collect(own, { from: "end" });
          await a.waitCaughtUp();
          await b.waitCaughtUp();
          await waitUntil(
            "one LISTEN connection",
            () => listenPids(h.db),
            (p) => p.length === 1,
            { timeoutMs: 10_000 },
          );
          a.subscription.unsubscribe();
          await sleep(100);
          expect((await listenPids(h.db)).length).toBe(1);
          b.subscription.unsubscribe();
          await waitUntil(
            "no LISTEN connection",
            () => listenPids(h.db),
            (p) => p.length === 0,
            { timeoutMs: 10_000 },
          );
        } finally {
          await own.close();
        }
      });
    }
  });

  // ------------------------------------------------------------------ 2. the gap case + delivery hold
  describe("the gap case", () => {
    if (name === "pglite") {
      needsTwoSessions("a transaction stay open while others commit");
      return;
    }
    for (const ending of ["commits", "rolls back"] as const) {
      it(`holds readers at an open lower position until T1 ${ending}, then delivers in order`, async () => {
        const category = newCategory();
        const sub = collect(store, { from: "end", filter: { category } });
        await sub.waitCaughtUp();
        const t1 = await h.db.startTransaction().execute();
        try {
          const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(t1)).rows[0]!.pid;
          const held = await appendToStream(t1, `${category}-t1`, [prepared("t1")], "no_stream");
          const later: AppendResult[] = [];
          for (let i = 2; i <= 5; i++) later.push(await store.append(`${category}-t${i}`, [event(`t${i}`)]));
          expect(later[0]!.lastGlobalPosition).toBeGreaterThan(held.lastGlobalPosition);
          // Committed, notified, and still not delivered: T1 could commit below them.
          await sleep(300);
          expect(sub.events()).toEqual([]);
          expect((await store.readAll({ category })).length).toBe(0);
          const hold = await store.deliveryHold();
          expect(hold.holder).toMatchObject({ kind: "session", pid, state: "idle in transaction" });
          expect(hold.holder?.ageMs).toBeGreaterThanOrEqual(250);
          expect(hold.holder?.query).toMatch(/maqet_append/);
          expect(hold.heldEvents).toBeGreaterThanOrEqual(4);
          expect(hold.watermark).toMatch(/^\d+$/);
          await (ending === "commits" ? t1.commit() : t1.rollback()).execute();
          const expected = [...(ending === "commits" ? ["t1"] : []), "t2", "t3", "t4", "t5"];
          await sub.waitEvents(expected.length, 5_000);
          await sleep(50);
          expect(sub.events().map((e) => e.type)).toEqual(expected);
          expect((await store.deliveryHold()).holder?.pid).not.toBe(pid);
        } finally {
          sub.subscription.unsubscribe();
          await t1
            .rollback()
            .execute()
            .catch(() => {});
        }
      });
    }

    it("hides rows committed after an open transaction's lower position until it commits", async () => {
      const category = newCategory();
      const trx = await h.db.startTransaction().execute();
      try {
        const held = await appendToStream(trx, `${category}-slow`, [prepared("slow")], "no_stream");
        const committed = await store.append(`${category}-fast`, [event("fast")]);
        expect(committed.lastGlobalPosition).toBeGreaterThan(held.lastGlobalPosition);
        // The open transaction's xid is below the later one's, so the watermark holds both back.
        expect(await store.readAll({ category })).toEqual([]);
        await trx.commit().execute();
        await readable(store, category, 2);
        expect((await store.readAll({ category })).map((e) => e.type)).toEqual(["slow", "fast"]);
      } finally {
        await trx
          .rollback()
          .execute()
          .catch(() => {});
      }
    });

    it("never skips a lower position committed by a later transaction id", async () => {
      // Y takes its xid first but draws its position last; X draws a lower position and commits
      // after Y. A reader ordered by position alone would pass X's event for good.
      const category = newCategory();
      const y = await h.db.startTransaction().execute();
      const x = await h.db.startTransaction().execute();
      try {
        await sql`select pg_current_xact_id()`.execute(y);
        const xEvent = (await appendToStream(x, `${category}-x`, [prepared("x")], "no_stream")).events[0]!;
        const yEvent = (await appendToStream(y, `${category}-y`, [prepared("y")], "no_stream")).events[0]!;
        expect(xEvent.globalPosition).toBeLessThan(yEvent.globalPosition);
        await y.commit().execute();
        // Y is below the watermark (its xid precedes X's, the oldest open one): readable now.
        await readable(store, category, 1);
        const first = await store.readAll({ category });
        expect(first.map((e) => e.id)).toEqual([yEvent.id]);
        await x.commit().execute();
        await readable(store, category, 2);
        expect((await store.readAll({ category, after: first[0]!.globalPosition })).map((e) => e.id)).toEqual([
          xEvent.id,
        ]);
      } finally {
        for (const t of [x, y]) {
          await t
            .rollback()
            .execute()
            .catch(() => {});
        }
      }
    });
  });

  it("reports no delivery hold when no transaction is open", async () => {
    const hold = await store.deliveryHold();
    if (name === "pglite") expect(hold).toEqual({ watermark: null, heldEvents: 0, holder: null });
    // The server is shared with other test files, whose transactions may hold the (cluster-wide)
    // watermark at any moment; only the shape can be asserted here.
    else expect(hold).toMatchObject({ heldEvents: expect.any(Number) });
  });

  // ------------------------------------------------------------------ 1. N writers x M streams
  it("delivers every committed event of N writers x M streams exactly once, in one global order, to every subscriber", async () => {
    const category = newCategory();
    const filter = { category };
    const startHead = await store.head();
    const other = await h.openStore(); // a second store: its subscribers learn of appends only by NOTIFY or polling
    const early = collect(store, { filter });
    const fromEnd = collect(other, { from: "end", filter });
    await early.waitCaughtUp();
    await fromEnd.waitCaughtUp();
    const plan = h.concurrent
      ? { writers: 4, appends: 30, streams: 6, processes: 2 }
      : { writers: 3, appends: 20, streams: 4, processes: 0 };
    const seed = Date.now() % 100_000;
    console.log(`[conformance ${name}] writers seed ${seed}`);
    const writer = (i: number) =>
      runWriter({
        db: h.db,
        appendToStream,
        currentVersion,
        writer: `in-${i}`,
        category,
        streams: plan.streams,
        appends: plan.appends,
        seed: seed + i,
      });
    const child = (i: number) =>
      runChildWriter({
        url: h.url!,
        writer: `proc-${i}`,
        category,
        streams: plan.streams,
        appends: plan.appends,
        seed: seed + 100 + i,
      });
    const writing = Promise.all([
      ...Array.from({ length: plan.writers }, (_, i) => writer(i)),
      ...Array.from({ length: plan.processes }, (_, i) => child(i)),
    ]);
    // Meanwhile: a subscriber that starts late, and one that restarts from its checkpoint.
    await sleep(30);
    const late = collect(other, { filter });
    const restarting: Collector[] = [collect(store, { filter })];
    for (let r = 0; r < 3; r++) {
      await sleep(40);
      const previous = restarting.at(-1)!;
      previous.subscription.unsubscribe();
      restarting.push(collect(store, { from: previous.resumeFrom(), filter }));
    }
    const results = await writing;
    const committed: WrittenEvent[] = results.flatMap((r) => r.committed);
    const rollbacks = results.reduce((n, r) => n + r.rollbacks, 0);
    const conflicts = results.reduce((n, r) => n + r.conflicts, 0);
    console.log(
      `[conformance ${name}] ${committed.length} events committed, ${rollbacks} transactions rolled back, ${conflicts} conflicts`,
    );
    expect(rollbacks).toBeGreaterThan(0);
    expect(committed.length).toBeGreaterThan(20);

    const all = [early, fromEnd, late, restarting.at(-1)!];
    for (const c of all) await c.waitEvents(c === restarting.at(-1) ? 0 : committed.length, 15_000);
    const restartedIds = () => restarting.flatMap((c) => c.ids());
    await waitUntil(
      "the restarting subscriber to see every event",
      () => restartedIds().length,
      (n) => n >= committed.length,
      {
        timeoutMs: 15_000,
      },
    );
    const head = await store.head();

    const expectedIds = new Set(committed.map((e) => e.id));
    const orders = [...[early, fromEnd, late].map((c) => c.ids()), restartedIds()];
    for (const order of orders) {
      expect(order.length).toBe(expectedIds.size); // exactly once: no duplicate, no extra
      expect(new Set(order)).toEqual(expectedIds);
      expect(order).toEqual(orders[0]); // one global order
    }
    // Per-stream order: each stream's versions arrive as 0, 1, 2, ...
    const byStream = new Map<string, number[]>();
    for (const e of early.events()) byStream.set(e.streamId, [...(byStream.get(e.streamId) ?? []), e.streamVersion]);
    for (const versions of byStream.values()) expect(versions).toEqual(versions.map((_, i) => i));
    // The same order as a plain read, and every subscriber ends at the head.
    expect((await store.readAll(filter)).map((e) => e.id)).toEqual(orders[0]);
    expect(head).not.toEqual(startHead);
    expect(early.checkpoint()).toEqual(head);
    for (const c of restarting) expect(c.caughtUps().length).toBeLessThanOrEqual(1);
    for (const c of all) {
      expect(c.caughtUps().length).toBe(1);
      c.subscription.unsubscribe();
    }
    await other.close();
  }, 60_000);

  // ------------------------------------------------------------------ 6. LISTEN connection killed
  describe("a killed LISTEN connection", () => {
    if (name === "pglite") {
      needsTwoSessions("a LISTEN connection be killed apart from the store");
      return;
    }
    it("is re-established; events keep arriving exactly once", async () => {
      const category = newCategory();
      // Polling every second at the fastest (and backing off to 60 s when idle) leaves the
      // re-established LISTEN connection to deliver most of this; the new backend proves it.
      const reader = await h.openStore({ minPollMs: 1_000, maxPollMs: 60_000 });
      const writer = await h.openStore();
      const sub = collect(reader, { from: "end", filter: { category } });
      try {
        await sub.waitCaughtUp();
        await waitUntil(
          "one LISTEN connection",
          () => listenPids(h.db),
          (p) => p.length === 1,
          { timeoutMs: 10_000 },
        );
        const [before] = await listenPids(h.db);
        const appendSome = async (n: number, tag: string) => {
          for (let i = 0; i < n; i++) await writer.append(`${category}-${i % 2}`, [event(`${tag}${i}`)]);
        };
        await appendSome(5, "a");
        await sub.waitEvents(5, 5_000);
        await sql`select pg_terminate_backend(${before})`.execute(h.db);
        await appendSome(5, "b"); // some land while nobody listens
        await waitUntil(
          "a new LISTEN connection",
          () => listenPids(h.db),
          (p) => p.some((pid) => pid !== before),
          {
            timeoutMs: 10_000,
          },
        );
        await sub.waitEvents(10, 5_000);
        await appendSome(5, "c");
        await sub.waitEvents(15, 5_000);
        await sleep(50);
        const types = sub.events().map((e) => e.type);
        expect(types).toEqual([..."abc"].flatMap((t) => [0, 1, 2, 3, 4].map((i) => `${t}${i}`)));
        expect(sub.error).toBeUndefined();
      } finally {
        sub.subscription.unsubscribe();
        await reader.close();
        await writer.close();
      }
    });
  });

  // ------------------------------------------------------------------ 7. property-based, against the model
  it("agrees with the in-memory model under random append/read/subscribe/restart interleavings", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 24 }), async (ops) => {
        await checkAgainstModel(h, `${name.replace(/\W/g, "")}pbt${++run}x${counter}`, ops);
      }),
      // No time limit counted as a failure (a slow machine is not a non-conformance); the runs
      // are few enough to finish, and a failure is reported with its seed and shrunk case.
      { numRuns: h.concurrent ? 25 : 20, seed: Date.now() % 1_000_000 },
    );
  }, 600_000);
});

/** Runs runWriter in a separate Node process against the built dist/. */
function runChildWriter(
  options: Record<string, unknown>,
): Promise<{ committed: WrittenEvent[]; conflicts: number; rollbacks: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(projectRoot, "test/fixtures/event-writer-child.mjs"), join(projectRoot, "dist"), JSON.stringify(options)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`writer process exited ${code}: ${err}`));
    });
  });
}

// ---------------------------------------------------------------------- the model test

type Op =
  | {
      kind: "append";
      stream: number;
      count: number;
      mode: "any" | "no_stream" | "stream_exists" | "exact" | "stale" | "ahead";
      payload: Record<string, unknown>;
    }
  | { kind: "retry"; pick: number }
  | { kind: "reorder"; pick: number }
  | { kind: "dup"; pick: number; change: "data" | "type" | "stream" | "partial" }
  | { kind: "readAll"; pick: number; limit: number | null; byPosition: boolean }
  | { kind: "readStream"; stream: number }
  | {
      kind: "subscribe";
      from: "start" | "end" | "checkpoint" | "position";
      pick: number;
      filter: "none" | "stream" | "types";
    }
  | { kind: "restart"; pick: number }
  | { kind: "restartStore" }
  | { kind: "check" };

/**
 * Event data whose meaning depends on jsonb: keys jsonb orders otherwise than JavaScript does
 * (by UTF-8 length then bytes: "é" is two bytes, "\u{1F600}" four; integer-like keys), nested.
 */
const jsonbKey = fc.constantFrom("b", "a", "aa", "ab", "zz", "10", "2", "é", "ét", "\u{1F600}", "\uff61", "x y");
const jsonbSensitive: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  jsonbKey,
  fc.oneof(
    fc.integer({ min: -5, max: 5 }),
    fc.constantFrom("x", "é", null, true),
    fc.dictionary(jsonbKey, fc.nat(9), { maxKeys: 4 }),
    fc.array(fc.dictionary(jsonbKey, fc.nat(9), { maxKeys: 3 }), { maxLength: 2 }),
  ),
  { maxKeys: 6 },
);

/** The same value with every object's keys in reverse insertion order: equal as jsonb. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reversedKeys(v)]),
  );
}

/** An event as a caller sees it: id and data exactly as JSON text (key order included). */
const seen = (e: StoredEvent) => [e.id, JSON.stringify(e.data)];

const operation: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      stream: fc.nat(2),
      count: fc.integer({ min: 1, max: 3 }),
      mode: fc.constantFrom(
        "any" as const,
        "no_stream" as const,
        "stream_exists" as const,
        "exact" as const,
        "stale" as const,
        "ahead" as const,
      ),
      payload: jsonbSensitive,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("retry" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reorder" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("dup" as const),
      pick: fc.nat(),
      change: fc.constantFrom("data" as const, "type" as const, "stream" as const, "partial" as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("readAll" as const),
      pick: fc.nat(),
      limit: fc.option(fc.integer({ min: 1, max: 4 })),
      byPosition: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("readStream" as const), stream: fc.nat(2) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("subscribe" as const),
      from: fc.constantFrom("start" as const, "end" as const, "checkpoint" as const, "position" as const),
      pick: fc.nat(),
      filter: fc.constantFrom("none" as const, "stream" as const, "types" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "restartStore" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "check" as const }) },
);

interface ModelSub {
  options: SubscribeOptions; // filter shared by both sides
  real: Collector[]; // one per segment (restarts)
  model: Collector[];
}

/**
 * Applies `ops` to a real store and to the model and compares every answer. Positions are
 * compared as offsets: the model numbers from 1, the real store from wherever this database is;
 * since nothing in a sequential run burns a position, real = base + model throughout.
 */
async function checkAgainstModel(h: TestDatabase, category: string, ops: readonly Op[]): Promise<void> {
  let real = await h.openStore();
  const model = new MemoryEventStore();
  const streams = [0, 1, 2].map((i) => `${category}-${i}`);
  const appends: Array<{ streamId: string; events: NewEvent[]; expected: ExpectedVersion }> = [];
  const known: Array<{ real: Checkpoint; model: Checkpoint }> = [];
  const subs: ModelSub[] = [];
  let base: number | undefined;
  let n = 0;
  const toReal = (modelPosition: number) => {
    if (base === undefined) throw new Error("no base yet");
    return base + modelPosition;
  };

  const compareAppend = async (streamId: string, events: NewEvent[], expected: ExpectedVersion) => {
    const [r, m] = [
      await real.append(streamId, events, { expectedVersion: expected }).then(ok, ko),
      await model.append(streamId, events, { expectedVersion: expected }).then(ok, ko),
    ];
    const where = `append ${streamId} ${JSON.stringify(expected)} x${events.length}`;
    if (r.error || m.error) {
      expect(errorShape(r.error), where).toEqual(errorShape(m.error));
      return;
    }
    const rv = r.value!;
    const mv = m.value!;
    if (base === undefined && rv.events.length > 0) base = rv.events[0]!.globalPosition - mv.events[0]!.globalPosition;
    expect(
      rv.events.map((e) => [e.id, e.streamVersion, e.type, JSON.stringify(e.data)]),
      where,
    ).toEqual(mv.events.map((e) => [e.id, e.streamVersion, e.type, JSON.stringify(e.data)]));
    expect(rv.nextExpectedVersion, where).toBe(mv.nextExpectedVersion);
    expect(
      rv.events.map((e) => e.globalPosition),
      where,
    ).toEqual(mv.events.map((e) => toReal(e.globalPosition)));
  };

  const subscribeBoth = (sub: ModelSub, from: { real: SubscribeOptions["from"]; model: SubscribeOptions["from"] }) => {
    sub.real.push(collect(real, { ...sub.options, from: from.real }));
    sub.model.push(collect(model, { ...sub.options, from: from.model }));
  };
  /** Waits until this run's last write is readable (another test file may hold the watermark). */
  const settle = async () => {
    const last = known.at(-1)?.real;
    if (last === undefined) return;
    const ok = await waitUntil(
      "this run's last write to be readable",
      () => real.head(),
      (head) => head !== null && BigInt(head.transactionId) >= BigInt(last.transactionId),
      { timeoutMs: 10_000, everyMs: 10 },
    ).then(
      () => true,
      () => false,
    );
    if (!ok) {
      throw new Error(
        `this run's writes did not become readable within 10 s; hold: ${JSON.stringify(await real.deliveryHold())}; ` +
          `head ${JSON.stringify(await real.head())}, last ${JSON.stringify(last)}, snapshot ${JSON.stringify(
            (
              await sql`select pg_current_snapshot()::text as s, (select count(*) from maqet_events) as n,
              (select max(transaction_id::text::numeric) from maqet_events) as mx`.execute(h.db)
            ).rows,
          )}`,
      );
    }
  };
  const drain = async () => {
    for (const sub of subs) {
      const want = sub.model.flatMap((c) => c.ids());
      await waitUntil(
        `${want.length} events on ${JSON.stringify(sub.options)}`,
        () => sub.real.flatMap((c) => c.ids()),
        (got) => got.length >= want.length,
        { timeoutMs: 10_000, everyMs: 2 },
      );
      expect(
        sub.real.flatMap((c) => c.ids()),
        JSON.stringify(sub.options),
      ).toEqual(want);
      expect(
        sub.real.flatMap((c) => c.events().map(seen)),
        "subscription data",
      ).toEqual(sub.model.flatMap((c) => c.events().map(seen)));
      for (const c of sub.real) expect(c.caughtUps().length).toBe(1);
      for (const c of sub.real) expect(c.error).toBeUndefined();
    }
  };

  try {
    for (const op of ops) {
      switch (op.kind) {
        case "append": {
          const streamId = streams[op.stream]!;
          const current = await model.streamVersion(streamId);
          const expected: ExpectedVersion =
            op.mode === "exact"
              ? current
              : op.mode === "stale"
                ? current >= 1
                  ? current - 1
                  : 3
                : op.mode === "ahead"
                  ? current + 1
                  : op.mode;
          const events = Array.from({ length: op.count }, () =>
            event(`t${n % 2}`, { n: n++, s: "x", ...op.payload }, { id: crypto.randomUUID() }),
          );
          appends.push({ streamId, events, expected });
          await compareAppend(streamId, events, expected);
          break;
        }
        case "retry": {
          const a = appends[op.pick % Math.max(1, appends.length)];
          if (a) await compareAppend(a.streamId, a.events, a.expected);
          break;
        }
        case "reorder": {
          // A retry whose data has its keys in another order: the same events as jsonb.
          const a = appends[op.pick % Math.max(1, appends.length)];
          if (a) {
            const reordered = a.events.map((e) => ({ ...e, data: reversedKeys(e.data) }));
            await compareAppend(a.streamId, reordered, a.expected);
          }
          break;
        }
        case "dup": {
          const a = appends[op.pick % Math.max(1, appends.length)];
          if (!a) break;
          const changed =
            op.change === "data"
              ? a.events.map((e, i) => (i === 0 ? { ...e, data: { other: true } } : e))
              : op.change === "type"
                ? a.events.map((e, i) => (i === 0 ? { ...e, type: "changed" } : e))
                : op.change === "partial"
                  ? [a.events[0]!, event("t0", { n: n++ }, { id: crypto.randomUUID() })]
                  : a.events;
          const streamId = op.change === "stream" ? streams[(streams.indexOf(a.streamId) + 1) % 3]! : a.streamId;
          await compareAppend(streamId, changed, "any");
          break;
        }
        case "readAll": {
          await settle();
          const k = known[op.pick % Math.max(1, known.length + 1)];
          const limit = op.limit ?? undefined;
          const r = await real.readAll({
            category,
            limit,
            after: k === undefined ? undefined : op.byPosition ? k.real.position : k.real,
          });
          const m = await model.readAll({ category, limit, after: k?.model });
          expect(r.map(seen), "readAll").toEqual(m.map(seen));
          break;
        }
        case "readStream": {
          const streamId = streams[op.stream]!;
          expect((await real.readStream(streamId)).map(seen), "readStream").toEqual(
            (await model.readStream(streamId)).map(seen),
          );
          break;
        }
        case "subscribe": {
          await settle();
          const filter =
            op.filter === "stream"
              ? { category, streamId: streams[0] }
              : op.filter === "types"
                ? { category, types: ["t1"] }
                : { category };
          const k = known[op.pick % Math.max(1, known.length)];
          const from =
            op.from === "start" || op.from === "end" || k === undefined
              ? { real: op.from === "end" ? "end" : "start", model: op.from === "end" ? "end" : "start" }
              : op.from === "checkpoint"
                ? { real: k.real, model: k.model }
                : { real: k.real.position, model: k.model.position };
          const sub: ModelSub = { options: { filter, batchSize: 2 }, real: [], model: [] };
          subscribeBoth(sub, from as { real: SubscribeOptions["from"]; model: SubscribeOptions["from"] });
          subs.push(sub);
          await sub.real.at(-1)!.waitCaughtUp(5_000);
          break;
        }
        case "restart": {
          const sub = subs[op.pick % Math.max(1, subs.length)];
          if (!sub) break;
          await drain();
          const r = sub.real.at(-1)!;
          const m = sub.model.at(-1)!;
          r.subscription.unsubscribe();
          m.subscription.unsubscribe();
          subscribeBoth(sub, { real: r.resumeFrom(), model: m.resumeFrom() });
          await sub.real.at(-1)!.waitCaughtUp(5_000);
          break;
        }
        case "restartStore": {
          await drain();
          await real.close();
          for (const sub of subs) {
            expect(sub.real.at(-1)!.completed, "a subscription completes when its store closes").toBe(true);
            sub.model.at(-1)!.subscription.unsubscribe();
          }
          real = await h.openStore();
          for (const sub of subs) {
            subscribeBoth(sub, { real: sub.real.at(-1)!.resumeFrom(), model: sub.model.at(-1)!.resumeFrom() });
            await sub.real.at(-1)!.waitCaughtUp(5_000);
          }
          break;
        }
        case "check":
          await drain();
          break;
      }
      // Remember every stored event's checkpoints on both sides, to start reads and subscriptions
      // from. Read straight from the table: the watermark does not matter for this bookkeeping.
      const modelEvents = model.events.slice(known.length);
      if (base !== undefined && modelEvents.length > 0) {
        const { rows } = await sql<{ id: string; position: string | number; xid: string }>`
          select event_id as id, global_position as position, transaction_id::text as xid
            from maqet_events where category = ${category} and global_position > ${known.at(-1)?.real.position ?? 0}
           order by global_position`.execute(h.db);
        expect(rows.map((r) => [r.id, Number(r.position)])).toEqual(
          modelEvents.map((m) => [m.id, toReal(m.globalPosition)]),
        );
        for (const [i, m] of modelEvents.entries()) {
          known.push({
            real: { transactionId: rows[i]!.xid, position: Number(rows[i]!.position) },
            model: { transactionId: String(m.globalPosition), position: m.globalPosition },
          });
        }
      }
    }
    await drain();
  } finally {
    for (const sub of subs) for (const c of [...sub.real, ...sub.model]) c.subscription.unsubscribe();
    await real.close();
    await model.close();
  }
}

const ok = <T>(value: T) => ({ value, error: undefined as unknown });
const ko = (error: unknown) => ({ value: undefined, error });

function errorShape(error: unknown): unknown {
  if (error === undefined) return "no error";
  if (!isMaqetError(error)) return error;
  if (error.code === "CONCURRENCY_CONFLICT") return { code: error.code, details: error.details };
  return { code: error.code };
}
