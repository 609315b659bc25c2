/**
 * VM leases in the database, on PGlite and on the PostgreSQL server: one holder at a time, the
 * holder named to others, a dead holder taken over, racing acquirers resolved by the row lock.
 */
import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { type LeaseIdentity, LeaseStore } from "../../src/events/lease-store.ts";
import { type TestDatabase, testDatabases } from "../support/test-databases.ts";

/** The lease table is not in the typed schema: the store takes an untyped Kysely. */
const untyped = (t: TestDatabase) => ({ db: t.db as unknown as Kysely<unknown>, close: t.close });

const who = (pid: number, host = "h1"): LeaseIdentity => ({
  host,
  pid,
  processStart: `start-${pid}`,
  command: `maqet (${pid})`,
});

describe.each(testDatabases())("VM leases on $name", (dialect) => {
  const open = async () => untyped(await dialect.open());
  let handle: ReturnType<typeof untyped> | undefined;
  afterEach(async () => {
    await handle?.close();
    handle = undefined;
  });

  it("one holder; others get VM_BUSY naming it; a release frees it", async () => {
    handle = await open();
    const dead = new Set<number>();
    const isAlive = (h: { pid: number }) => !dead.has(h.pid);
    const a = new LeaseStore(handle.db, who(100), { isAlive, nameOf: () => "web" });
    const b = new LeaseStore(handle.db, who(200), { isAlive, nameOf: () => "web" });
    expect(await a.acquire("vm-1", 3)).toEqual({});
    expect(await a.acquire("vm-1", 4)).toEqual({}); // again, as the holder
    const busy = await b.acquire("vm-1", 4).catch((e) => e);
    expect(busy).toBeMaqetError("VM_BUSY");
    expect(busy.message).toMatch(/VM 'web' is being driven by pid 100 on host h1 since \d{4}-/);
    await a.release("vm-1");
    expect(await b.acquire("vm-1", 4)).toEqual({});
    expect((await b.holder("vm-1"))?.pid).toBe(200);
  });

  it("a dead holder on this host is taken over, and who it was is returned", async () => {
    handle = await open();
    const dead = new Set<number>();
    const isAlive = (h: { pid: number }) => !dead.has(h.pid);
    await new LeaseStore(handle.db, who(100), { isAlive }).acquire("vm-1", 0);
    dead.add(100);
    const taken = await new LeaseStore(handle.db, who(200), { isAlive }).acquire("vm-1", 0);
    expect(taken.takenOverFrom).toMatchObject({ pid: 100, host: "h1", command: "maqet (100)" });
  });

  it("a holder on another host is alive while it renews within the time to live, and taken over after", async () => {
    handle = await open();
    const isAlive = () => true;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const remote = new LeaseStore(handle.db, who(100, "other-host"), { isAlive });
    await remote.acquire("vm-1", 0);
    // Within the time to live (a minute: no pause of a loaded machine between two calls is that
    // long; a 300 ms one could expire between them), the remote holder is alive.
    const patient = new LeaseStore(handle.db, who(200), { isAlive, ttlMs: 60_000 });
    await expect(patient.acquire("vm-1", 0)).rejects.toBeMaqetError("VM_BUSY");
    // A renewal moves renewed_at on (by at least the time waited), which is what keeps it alive.
    const acquired = (await patient.holder("vm-1"))!.renewedAt.getTime();
    await sleep(400);
    await remote.renew("vm-1");
    const renewed = (await patient.holder("vm-1"))!.renewedAt.getTime();
    expect(renewed - acquired).toBeGreaterThanOrEqual(300);
    await expect(patient.acquire("vm-1", 0)).rejects.toBeMaqetError("VM_BUSY");
    // Past the time to live (at least 400 ms since that renewal, against 300 ms), it is taken over.
    await sleep(400);
    const impatient = new LeaseStore(handle.db, who(300), { isAlive, ttlMs: 300 });
    expect((await impatient.acquire("vm-1", 0)).takenOverFrom).toMatchObject({ host: "other-host" });
  });

  it("racing acquirers: exactly one wins", async () => {
    handle = await open();
    const db = handle.db;
    const stores = [1, 2, 3, 4, 5].map((i) => new LeaseStore(db, who(100 + i), { isAlive: () => true }));
    const results = await Promise.allSettled(stores.map((s) => s.acquire("vm-race", 0)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeMaqetError("VM_BUSY");
  });
});
