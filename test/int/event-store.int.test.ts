/**
 * The event-store contract, run once per dialect: PGlite (a clone of the migrated template) and a
 * fresh database on the real PostgreSQL server of this test run. Same tests, same expectations;
 * the only tests that differ need two concurrent connections, which PGlite does not have.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, inject, it } from "vitest";
import { migrations } from "../../migrations/index.ts";
import { openEventStore } from "../../src/adapters/open-event-store.ts";
import { EVENTS_CHANNEL } from "../../src/events/append-to-stream.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import type { ExpectedVersion } from "../../src/events/event-store.ts";
import { migrateToLatest } from "../../src/events/migrate.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { failure } from "../support/failure.ts";
import { raceOnStream } from "../support/pg-locks.ts";
import { waitUntil } from "../support/poll.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";
import { event, testActor } from "../support/store-events.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const actor = testActor;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const dialects = testDatabases();
const databaseUrl = inject("databaseUrl");

const ids = (events: readonly StoredEvent[]) => events.map((e) => e.id);

describe.each(dialects)("PostgresEventStore on $name", (dialect) => {
  const { name } = dialect;
  let h: TestDatabase;
  let store: PostgresEventStore;
  let counter = 0;
  const newStream = (category = "vm") => `${category}-${name}${++counter}`;
  openForSuite(dialect, (opened) => ({ t: h, store } = opened), { actor: () => actor, source: "test" });

  it("appends and reads back full envelopes", async () => {
    const streamId = newStream();
    const givenId = crypto.randomUUID();
    const before = Date.now();
    const result = await store.append(
      streamId,
      [
        event("vm.added", { name: "web", disks: ["a", "b"] }, { id: givenId }),
        event("vm.started", "plain string", { metadata: { correlationId: "c-1" } }),
        event("vm.stopped", null, { metadata: { source: "cli" } }),
      ],
      { expectedVersion: "no_stream" },
    );
    expect(result.nextExpectedVersion).toBe(2);
    expect(result.events.map((e) => e.streamVersion)).toEqual([0, 1, 2]);
    expect(result.events[0]?.id).toBe(givenId);
    for (const e of result.events) expect(e.id).toMatch(UUID);
    const positions = result.events.map((e) => e.globalPosition);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set(positions).size).toBe(3);
    expect(result.lastGlobalPosition).toBe(positions[2]);

    const read = await store.readStream(streamId);
    expect(read).toEqual(result.events);
    expect(read[0]).toMatchObject({
      streamId,
      type: "vm.added",
      schemaVersion: 1,
      data: { name: "web", disks: ["a", "b"] },
    });
    expect(read[1]?.data).toBe("plain string");
    expect(read[2]?.data).toBeNull();
    expect(read[0]?.metadata).toEqual({ actor, source: "test" });
    expect(read[1]?.metadata).toEqual({ actor, source: "test", correlationId: "c-1" });
    expect(read[2]?.metadata.source).toBe("cli");
    const recordedAt = read[0]?.recordedAt;
    expect(recordedAt).toBeInstanceOf(Date);
    expect(recordedAt!.getTime()).toBeGreaterThan(before - 60_000);
    expect(recordedAt!.getTime()).toBeLessThan(Date.now() + 60_000);

    expect((await store.readStream(streamId, { fromVersion: 1, limit: 1 })).map((e) => e.streamVersion)).toEqual([1]);
    expect(await store.streamVersion(streamId)).toBe(2);
    expect(await store.streamVersion(newStream())).toBe(-1);
    expect(await store.readStream(newStream())).toEqual([]);
  });

  it("continues a stream with gapless versions", async () => {
    const streamId = newStream();
    await store.append(streamId, [event("a")]);
    const second = await store.append(streamId, [event("b"), event("c")], { expectedVersion: 0 });
    expect(second.nextExpectedVersion).toBe(2);
    expect((await store.readStream(streamId)).map((e) => [e.streamVersion, e.type])).toEqual([
      [0, "a"],
      [1, "b"],
      [2, "c"],
    ]);
  });

  const matrix: Array<[ExpectedVersion, "absent" | "present", "ok" | "conflict"]> = [
    ["any", "absent", "ok"],
    ["any", "present", "ok"],
    ["no_stream", "absent", "ok"],
    ["no_stream", "present", "conflict"],
    ["stream_exists", "absent", "conflict"],
    ["stream_exists", "present", "ok"],
    [0, "absent", "conflict"],
    [0, "present", "ok"],
    [-1, "absent", "ok"],
    [-1, "present", "conflict"],
    [5, "absent", "conflict"],
    [5, "present", "conflict"],
  ];
  it.each(matrix)("expectedVersion %j on an %s stream: %s", async (expected, state, outcome) => {
    const streamId = newStream();
    if (state === "present") await store.append(streamId, [event("seed")]);
    const actual = state === "present" ? 0 : -1;
    if (outcome === "ok") {
      const result = await store.append(streamId, [event("next")], { expectedVersion: expected });
      expect(result.nextExpectedVersion).toBe(actual + 1);
      return;
    }
    const error = await failure(store.append(streamId, [event("next")], { expectedVersion: expected }));
    expect(error).toBeMaqetError("CONCURRENCY_CONFLICT");
    expect((error as { details: unknown }).details).toEqual({ streamId, expected, actual });
    expect((error as Error).message).toContain(streamId);
    expect(await store.streamVersion(streamId)).toBe(actual);
    const streams = await h.db
      .selectFrom("maqet_streams")
      .select("stream_id")
      .where("stream_id", "=", streamId)
      .execute();
    expect(streams.length).toBe(state === "present" ? 1 : 0);
  });

  it("rejects invalid appends before touching the database", async () => {
    const streamId = newStream();
    const dup = crypto.randomUUID();
    for (const attempt of [
      store.append(streamId, [event("a", {}, { id: dup }), event("b", {}, { id: dup })]),
      store.append(streamId, [event("")]),
      store.append(streamId, [{ type: "x", schemaVersion: 0, data: {} }]),
      store.append(streamId, [event("a")], { expectedVersion: -2 }),
    ]) {
      expect(await failure(attempt)).toBeMaqetError("INVALID_ARGUMENT");
    }
    expect(await store.streamVersion(streamId)).toBe(-1);
  });

  it("reports an event id already stored in another stream as EVENT_ID_CONFLICT and writes nothing", async () => {
    const first = newStream();
    const id = crypto.randomUUID();
    await store.append(first, [event("a", {}, { id })]);
    const second = newStream();
    const error = await failure(store.append(second, [event("b"), event("c", {}, { id })]));
    expect(error).toBeMaqetError("EVENT_ID_CONFLICT");
    expect((error as Error).message).toContain(id);
    expect((error as { details: unknown }).details).toMatchObject({
      streamId: second,
      reason: "other-stream",
      eventIds: [id],
    });
    expect(await store.streamVersion(second)).toBe(-1);
  });

  it("treats an empty append as a no-op that still checks the expected version", async () => {
    const streamId = newStream();
    expect(await store.append(streamId, [])).toEqual({ nextExpectedVersion: -1, lastGlobalPosition: -1, events: [] });
    const { lastGlobalPosition } = await store.append(streamId, [event("a")]);
    expect(await store.append(streamId, [], { expectedVersion: 0 })).toEqual({
      nextExpectedVersion: 0,
      lastGlobalPosition,
      events: [],
    });
    await expect(store.append(streamId, [], { expectedVersion: "no_stream" })).rejects.toBeMaqetError(
      "CONCURRENCY_CONFLICT",
    );
  });

  it("lets exactly one of two racing appends win; the loser burns no position", async () => {
    const streamId = newStream();
    const seeded = await store.append(streamId, [event("seed")]);
    const racers = () => [
      store.append(streamId, [event("left-1"), event("left-2")], { expectedVersion: 0 }),
      store.append(streamId, [event("right-1")], { expectedVersion: 0 }),
    ];
    // On a server the stream row is held so both appends are provably in flight (each waiting on
    // the row lock on its own pool connection) before either may proceed.
    if (!h.concurrent) {
      console.log("[event-store pglite] one connection: the two appends are serialised by the driver, not raced");
    }
    const results = await raceOnStream(h, streamId, "present", racers);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won.length).toBe(1);
    expect(lost.length).toBe(1);
    const error = (lost[0] as PromiseRejectedResult).reason;
    expect(error).toBeMaqetError("CONCURRENCY_CONFLICT");
    const winnerEvents = (await store.readStream(streamId)).slice(1);
    expect((error as { details: unknown }).details).toEqual({ streamId, expected: 0, actual: winnerEvents.length });

    const stream = await store.readStream(streamId);
    expect(stream.map((e) => e.streamVersion)).toEqual(stream.map((_, i) => i));
    // Nothing burned: the winner's positions follow the seed and the next append follows the
    // winner directly (this database has no other writer).
    const next = await store.append(newStream(), [event("after-race")]);
    const positions = [...stream.map((e) => e.globalPosition), next.lastGlobalPosition];
    expect(positions).toEqual(positions.map((_, i) => seeded.lastGlobalPosition + i));
  });

  it("lets exactly one of two racing stream creations win", async () => {
    const streamId = newStream();
    const racers = () => [
      store.append(streamId, [event("a")], { expectedVersion: "no_stream" }),
      store.append(streamId, [event("b")], { expectedVersion: "no_stream" }),
    ];
    // On a server an uncommitted insert of the stream row makes both appends wait on its unique key.
    const results = await raceOnStream(h, streamId, "absent", racers);
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeMaqetError("CONCURRENCY_CONFLICT");
    expect((lost.reason as { details: unknown }).details).toEqual({ streamId, expected: "no_stream", actual: 0 });
    expect((await store.readStream(streamId)).length).toBe(1);
  });

  it("reads all streams in order, by category, and in pages", async () => {
    const start = await lastVisiblePosition(store);
    const vm = newStream("vm");
    const other = newStream("host");
    await store.append(vm, [event("v1"), event("v2")]);
    await store.append(other, [event("h1")]);
    await store.append(vm, [event("v3")]);
    const all = await waitUntil(
      "the four appends to be visible",
      () => store.readAll({ after: start }),
      (events) => events.length >= 4,
      { timeoutMs: 10_000 },
    );
    // Only this test's streams: on a shared server another file's open transaction can hold an
    // earlier event back past `start`, and it then shows up here too (the watermark is cluster-wide).
    const ours = all.filter((e) => e.streamId === vm || e.streamId === other);
    expect(ours.map((e) => e.type)).toEqual(["v1", "v2", "h1", "v3"]);
    const vmOnly = await store.readAll({ after: start, category: "vm" });
    expect(vmOnly.every((e) => e.streamId.startsWith("vm-"))).toBe(true);
    expect(vmOnly.filter((e) => e.streamId === vm).map((e) => e.type)).toEqual(["v1", "v2", "v3"]);
    const hostOnly = await store.readAll({ after: start, category: "host" });
    expect(hostOnly.every((e) => e.streamId.startsWith("host-"))).toBe(true);
    expect(hostOnly.filter((e) => e.streamId === other).map((e) => e.type)).toEqual(["h1"]);

    const paged: StoredEvent[] = [];
    let after = start;
    for (;;) {
      const page = await store.readAll({ after, limit: 3 });
      if (page.length === 0) break;
      paged.push(...page);
      after = page.at(-1)!.globalPosition;
    }
    expect(ids(paged)).toEqual(ids(all));
  });

  it("emits on appended$ only after the append committed", async () => {
    const streamId = newStream();
    const seen: StoredEvent[] = [];
    const visibleAtEmission: Promise<boolean>[] = [];
    const subscription = store.appended$.subscribe((e) => {
      seen.push(e);
      // If this ran before commit, a read (another connection on the server; the freed single
      // connection on PGlite) could not see the event yet.
      visibleAtEmission.push(store.readStream(e.streamId).then((events) => ids(events).includes(e.id)));
    });
    const result = await store.append(streamId, [event("a"), event("b")]);
    await failure(store.append(streamId, [event("lost")], { expectedVersion: "no_stream" }));
    subscription.unsubscribe();
    expect(seen).toEqual(result.events);
    expect(await Promise.all(visibleAtEmission)).toEqual([true, true]);
  });

  it("notifies maqet_events with the stream id after each committed append", async () => {
    const streamId = newStream();
    const payloads: string[] = [];
    const unlisten = await h.listen(EVENTS_CHANNEL, (p) => payloads.push(p));
    try {
      // On a server the store notifies after commit, coalescing appends that commit while a
      // notification is in flight: wait for each append's before the next.
      await store.append(streamId, [event("a"), event("b")]);
      await waitUntil(
        "the first append's notification",
        () => [...payloads],
        (p) => p.length >= 1,
        {
          timeoutMs: 10_000,
        },
      );
      await failure(store.append(streamId, [event("refused")], { expectedVersion: "no_stream" }));
      await new Promise((r) => setTimeout(r, 50)); // a refused append's notification would have arrived by now
      expect(payloads).toEqual([streamId]);
      await store.append(streamId, [event("c")], { expectedVersion: 1 });
      await waitUntil(
        "the second append's notification",
        () => [...payloads],
        (p) => p.length >= 2,
        {
          timeoutMs: 10_000,
        },
      );
      await new Promise((r) => setTimeout(r, 50));
      expect(payloads).toEqual([streamId, streamId]);
    } finally {
      await unlisten();
    }
  });

  it("notifies every stream of appends made at once (after their commit, coalesced, on a server)", async () => {
    const streams = Array.from({ length: 6 }, () => newStream());
    const payloads: string[] = [];
    const unlisten = await h.listen(EVENTS_CHANNEL, (p) => payloads.push(p));
    try {
      await Promise.all(streams.map((s) => store.append(s, [event("a")], { expectedVersion: "no_stream" })));
      await waitUntil(
        "a notification naming each of the six streams",
        () => [...payloads],
        (p) => streams.every((s) => p.includes(s)),
        { timeoutMs: 10_000 },
      );
      expect(new Set(payloads)).toEqual(new Set(streams));
    } finally {
      await unlisten();
    }
  });

  it("keeps migrations idempotent", async () => {
    expect(await migrateToLatest(h.db)).toEqual([]);
    const recorded = await sql<{ name: string }>`select name from maqet_migrations order by name`.execute(h.db);
    expect(recorded.rows.map((r) => r.name)).toEqual(migrations.map((m) => m.name));
  });
  // The watermark cases (a transaction left open) live in event-store-conformance.int.test.ts,
  // which runs them on a cluster of its own: an open transaction holds back every reader in the
  // cluster, other test files included.
});

describe.each(dialects)("openEventStore on $name", ({ name }) => {
  // Creates and migrates a fresh PGlite twice: tens of seconds on a loaded machine.
  it("migrates on open, once, and keeps data across reopen", { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "maqet-open-"));
    const testDb = name === "pg" ? await createTestDatabase(databaseUrl) : undefined;
    const options = {
      databaseUrl: testDb?.url,
      dataDir: join(dir, "nested", "pgdata"),
      source: "test",
      lockWaitMs: 200,
    };
    try {
      const first = await openEventStore(options);
      expect(first.dialect).toBe(name);
      expect(first.applied).toEqual(migrations.map((m) => m.name));
      const appended = await first.store.append("vm-reopen", [event("vm.added")]);
      expect(appended.events[0]?.metadata.actor.pid).toBe(process.pid);
      expect(appended.events[0]?.metadata.source).toBe("test");
      if (name === "pglite") {
        const second = await failure(openEventStore(options));
        expect(second).toBeMaqetError("STORE_LOCKED");
        expect((second as { details: { holderPid: number } }).details.holderPid).toBe(process.pid);
      }
      let completed = false;
      first.store.appended$.subscribe({ complete: () => (completed = true) });
      await first.close();
      expect(completed).toBe(true);

      const reopened = await openEventStore(options);
      try {
        expect(reopened.applied).toEqual([]);
        expect(await reopened.migrate()).toEqual([]);
        expect((await reopened.store.readStream("vm-reopen")).map((e) => e.id)).toEqual([appended.events[0]?.id]);
      } finally {
        await reopened.close();
      }
    } finally {
      await testDb?.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function lastVisiblePosition(store: PostgresEventStore): Promise<number> {
  let after = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: 1000 });
    if (page.length === 0) return after;
    after = page.at(-1)!.globalPosition;
  }
}
