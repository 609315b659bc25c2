/**
 * Group commit (issue 15), on PGlite and on a PostgreSQL server, same tests, same expectations;
 * conformance cases beside the suite of event-store-conformance.int.test.ts (which runs
 * unchanged with group commit on):
 *
 * 1. A conflicting stream in a shared commit fails alone: the others of its group commit, in ONE
 *    transaction (one transaction id), and the loser gets exactly the lone append's error.
 * 2. A part that raises inside a group (a VM name already claimed) fails alone too, with the
 *    lone append's error.
 * 3. Idempotent retries inside a group: the same append twice in one group, and a retry of an
 *    append already committed, answer with the original result; one write.
 * 4. A crash mid-group: a writer process (8 writers at once, groups always in flight) killed with
 *    SIGKILL loses no acknowledged append and acknowledged none that was not committed; each
 *    append is all there or not at all; stream versions stay gapless.
 *
 * On the server the groups are made deterministic: the first append waits on a row lock the test
 * holds, the others queue behind it (maxWaitMs long, so no group goes beside it) and go together
 * when the lock is released. PGlite has one session: appends made at once queue behind the first.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEventStore } from "../../src/adapters/open-event-store.ts";
import type { AppendResult } from "../../src/events/event-store.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import type { Database } from "../../src/events/schema.ts";
import { isVmNameTaken } from "../../src/events/vm-name-claim.ts";
import { projectRoot } from "../support/build-dist.ts";
import { event } from "../support/store-events.ts";
import { type TestDatabase, testDatabases } from "../support/test-databases.ts";

// A row lock is held on purpose below: the server cases run on a cluster of their own, so no other
// file's reads wait.
describe.each(testDatabases({ ownCluster: true }))("group commit on $name", ({ name, open }) => {
  let h: TestDatabase;
  let store: PostgresEventStore;
  let counter = 0;
  const newStream = (category = "g") => `${category}${name}${++counter}-s`;

  beforeAll(async () => {
    h = await open();
    // Queued appends never go beside the one in flight: the tests decide what shares a group.
    store = await h.openStore({ groupCommit: { maxWaitMs: 60_000 } });
  });
  afterAll(async () => {
    await store?.close();
    await h?.close();
  });

  /**
   * Runs `first()`, then `rest()` while `first` is in flight, so that `rest`'s appends form one
   * group. On the server `first` appends to a stream whose row the test holds locked until the
   * rest are queued.
   */
  async function inOneGroup<T>(rest: () => Array<Promise<T>>): Promise<PromiseSettledResult<T>[]> {
    const blocker = newStream("blocker");
    await store.append(blocker, [event("seed")]);
    if (h.url === undefined) {
      const first = store.append(blocker, [event("first")]);
      const settled = await Promise.allSettled(rest());
      await first;
      return settled;
    }
    const holder = await h.db.startTransaction().execute();
    try {
      await sql`select version from maqet_streams where stream_id = ${blocker} for update`.execute(holder);
      const first = store.append(blocker, [event("first")]);
      await waitForLockWaiter(h.db);
      const pending = Promise.allSettled(rest());
      await holder.commit().execute();
      await first;
      return await pending;
    } catch (error) {
      await holder.rollback().execute();
      throw error;
    }
  }

  async function transactionIds(ids: readonly string[]): Promise<string[]> {
    const { rows } = await sql<{ t: string }>`
      select distinct transaction_id::text as t from maqet_events where event_id = any(${[...ids]}::uuid[])`.execute(
      h.db,
    );
    return rows.map((r) => r.t);
  }

  it("fails a conflicting stream alone; the rest of its group commits in one transaction", async () => {
    const created = newStream();
    const moved = newStream();
    const existing = newStream();
    const anyStream = newStream();
    await store.append(moved, [event("a"), event("b")]);
    await store.append(existing, [event("a")]);
    const top = await store.head();
    const settled = await inOneGroup<AppendResult>(() => [
      store.append(created, [event("c1"), event("c2")], { expectedVersion: "no_stream" }),
      store.append(moved, [event("late")], { expectedVersion: 0 }), // it is at 1: conflict
      store.append(existing, [event("x")], { expectedVersion: "no_stream" }), // exists: conflict
      store.append(anyStream, [event("y")], { expectedVersion: "any" }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    const [c, m, e, y] = settled;
    const reason = (s: PromiseSettledResult<unknown> | undefined) => (s as PromiseRejectedResult).reason as unknown;
    expect(reason(m)).toBeMaqetError("CONCURRENCY_CONFLICT");
    expect((reason(m) as { details: unknown }).details).toEqual({ streamId: moved, expected: 0, actual: 1 });
    expect(reason(e)).toBeMaqetError("CONCURRENCY_CONFLICT");
    expect((reason(e) as { details: unknown }).details).toEqual({
      streamId: existing,
      expected: "no_stream",
      actual: 0,
    });
    const written = [c, y].flatMap((s) => (s as PromiseFulfilledResult<AppendResult>).value.events.map((x) => x.id));
    expect(await transactionIds(written)).toHaveLength(1); // one shared commit
    expect((await store.readStream(created)).map((x) => x.type)).toEqual(["c1", "c2"]);
    expect((await store.readStream(moved)).map((x) => x.type)).toEqual(["a", "b"]);
    expect((await store.readStream(existing)).map((x) => x.type)).toEqual(["a"]);
    // The losers burned no position: the group's three events and the blocker's two follow on.
    const head = await store.head();
    expect(head!.position - top!.position).toBe(2 + 3);
  });

  it("fails a part that raises (a VM name already claimed) alone, with the lone append's error", async () => {
    const vmName = `grp-${name}-${++counter}`;
    const defined = (vmId: string) => event("vm.defined", { vmId, name: vmName, config: {} });
    const holderId = crypto.randomUUID();
    await store.append(`vm-${holderId}`, [defined(holderId)], { expectedVersion: "no_stream" });
    const lone = await store
      .append(`vm-${crypto.randomUUID()}`, [defined(crypto.randomUUID())], { expectedVersion: "no_stream" })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(isVmNameTaken(lone)).toBe(true);
    const other = newStream();
    const settled = await inOneGroup(() => [
      store.append(other, [event("before")]),
      store.append(`vm-${crypto.randomUUID()}`, [defined(crypto.randomUUID())], { expectedVersion: "no_stream" }),
      store.append(other, [event("after")]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const grouped = (settled[1] as PromiseRejectedResult).reason as { code?: string; message?: string };
    expect(isVmNameTaken(grouped)).toBe(true);
    expect(grouped.code).toBe((lone as { code?: string }).code);
    expect((await store.readStream(other)).map((x) => x.type)).toEqual(["before", "after"]);
  });

  it("answers idempotent retries inside a group with the original result, writing once", async () => {
    const twice = newStream();
    const retried = newStream();
    const events = [event("x", { n: 1 }, { id: crypto.randomUUID() }), event("y", {}, { id: crypto.randomUUID() })];
    const original = await store.append(retried, [event("r", {}, { id: crypto.randomUUID() })], {
      expectedVersion: "no_stream",
    });
    const retryEvents = original.events.map((e) => event(e.type, e.data, { id: e.id }));
    const top = await store.head();
    const settled = await inOneGroup<AppendResult>(() => [
      store.append(twice, events, { expectedVersion: "no_stream" }),
      store.append(twice, events, { expectedVersion: "no_stream" }),
      store.append(retried, retryEvents, { expectedVersion: "no_stream" }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    const [a, b, r] = settled.map((s) => (s as PromiseFulfilledResult<AppendResult>).value);
    expect(b).toEqual(a);
    expect(r).toEqual(original);
    expect((await store.readStream(twice)).map((x) => x.id)).toEqual(events.map((e) => e.id));
    expect((await store.readStream(retried)).map((x) => x.id)).toEqual(original.events.map((e) => e.id));
    expect((await store.head())!.position - top!.position).toBe(2 + 2); // the blocker's two, then x and y
  });

  it("loses no acknowledged append and acknowledges none not committed when the writer is killed mid-group", {
    timeout: 300_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "maqet-group-crash-"));
    try {
      const dataDir = join(dir, "data");
      const intents = new Map<string, { stream: string; ids: string[] }>();
      const acks: Array<{ s: string; ids: string[]; v: number; p: number }> = [];
      const child = spawn(
        process.execPath,
        [
          join(projectRoot, "test/fixtures/group-writer-child.mjs"),
          join(projectRoot, "dist"),
          JSON.stringify({ url: h.url, dataDir, writers: 8 }),
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      child.stderr!.on("data", (d) => (stderr += d));
      await killAfterAcks(child, 120, (line) => {
        if (line.t === "i") intents.set(line.ids[0], { stream: line.s, ids: line.ids });
        if (line.t === "a") acks.push(line);
      }).catch((error: unknown) => {
        throw new Error(`${String(error)}; writer stderr: ${stderr}`);
      });
      expect(acks.length).toBeGreaterThanOrEqual(120);
      // Unacknowledged intents: appends in flight at the kill (a group was being written).
      const acked = new Set(acks.map((a) => a.ids[0]));
      expect([...intents.keys()].filter((id) => !acked.has(id)).length).toBeGreaterThan(0);

      const reopened = h.url
        ? await h.openStore().then((store) => ({ store, db: h.db, close: () => store.close() }))
        : await openEventStore({ dataDir, lockWaitMs: 10_000 });
      try {
        const target = reopened.store;
        const stored = new Map<string, { stream: string; version: number; position: number }>();
        const streams = [...new Set([...intents.values()].map((i) => i.stream))];
        for (const s of streams) {
          const events = await target.readStream(s);
          // Gapless versions from 0.
          expect(events.map((e) => e.streamVersion)).toEqual(events.map((_, i) => i));
          for (const e of events) stored.set(e.id, { stream: s, version: e.streamVersion, position: e.globalPosition });
        }
        // Every acknowledged append is stored, where its acknowledgement said.
        for (const a of acks) {
          a.ids.forEach((id, i) => {
            expect(stored.get(id), `acknowledged ${id}`).toEqual(
              expect.objectContaining({ stream: a.s, version: a.v - (a.ids.length - 1 - i) }),
            );
          });
          expect(stored.get(a.ids.at(-1)!)!.position).toBe(a.p);
        }
        // Every stored event belongs to an intent, and each intent is all there or not at all.
        const intentOf = new Map<string, string[]>();
        for (const i of intents.values()) for (const id of i.ids) intentOf.set(id, i.ids);
        for (const id of stored.keys()) expect(intentOf.has(id), `stored ${id} was never sent`).toBe(true);
        for (const i of intents.values()) {
          const present = i.ids.filter((id) => stored.has(id)).length;
          expect([0, i.ids.length], `append ${i.ids[0]}: ${present} of ${i.ids.length} stored`).toContain(present);
        }
        // Group commit was at work in the writer: some transaction holds several appends.
        const { rows } = await sql<{ n: number }>`
            select count(distinct stream_id)::int as n from maqet_events
             where stream_id like 'crash-%' group by transaction_id order by 1 desc limit 1`.execute(reopened.db);
        expect(rows[0]!.n).toBeGreaterThan(1);
      } finally {
        await reopened.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Reads the writer's lines; SIGKILLs it once `count` acks arrived; resolves when it is gone. */
function killAfterAcks(
  child: ChildProcess,
  count: number,
  // biome-ignore lint/suspicious/noExplicitAny: JSON lines of the fixture
  onLine: (line: any) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let acks = 0;
    let killed = false;
    let exited = false;
    let closed = false;
    const done = () => {
      if (exited && closed) resolve();
    };
    // Every line read was printed before the process died, also those read after the kill.
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (text) => {
      const line = JSON.parse(text) as { t: string };
      onLine(line);
      if (line.t === "a" && ++acks >= count && !killed) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    lines.on("close", () => {
      closed = true;
      done();
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`writer exited ${code} before it was killed`));
      exited = true;
      done();
    });
  });
}

/** Waits until some backend waits on a lock (the first append, behind the test's row lock). */
async function waitForLockWaiter(db: Kysely<Database>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
    if (rows[0]!.n > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the first append never waited on the row lock");
}
