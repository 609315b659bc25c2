/**
 * VM leases in the database, on PGlite and on the PostgreSQL server: one holder at a time, the
 * holder named to others, a dead holder taken over, racing acquirers resolved by the row lock.
 */
import type { Kysely } from "kysely";
import { afterEach, describe, expect, inject, it } from "vitest";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { type LeaseIdentity, LeaseStore } from "../../src/events/lease-store.ts";
import { migrateToLatest } from "../../src/events/migrate.ts";
import { openTemplateClone } from "../support/pglite-template.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

interface Db {
  db: Kysely<unknown>;
  close(): Promise<void>;
}

const databaseUrl = inject("databaseUrl");
const dialects: Array<{ name: string; open(): Promise<Db> }> = [
  {
    name: "pglite",
    async open() {
      const clone = await openTemplateClone(inject("pgliteTemplate"));
      return { db: clone.db as unknown as Kysely<unknown>, close: clone.close };
    },
  },
  {
    name: "pg",
    async open() {
      const testDb = await createTestDatabase(databaseUrl);
      const opened = await openPgDatabase({ url: testDb.url });
      await migrateToLatest(opened.db);
      return {
        db: opened.db as unknown as Kysely<unknown>,
        close: async () => {
          await opened.close();
          await testDb.drop();
        },
      };
    },
  },
];

const who = (pid: number, host = "h1"): LeaseIdentity => ({
  host,
  pid,
  processStart: `start-${pid}`,
  command: `maqet (${pid})`,
});

describe.each(dialects)("VM leases on $name", ({ open }) => {
  let handle: Db | undefined;
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

  it("a holder on another host is alive while it renews within the time to live", async () => {
    handle = await open();
    const isAlive = () => true;
    const remote = new LeaseStore(handle.db, who(100, "other-host"), { isAlive });
    await remote.acquire("vm-1", 0);
    const local = new LeaseStore(handle.db, who(200), { isAlive, ttlMs: 300 });
    await expect(local.acquire("vm-1", 0)).rejects.toBeMaqetError("VM_BUSY");
    await new Promise((r) => setTimeout(r, 400));
    expect((await local.acquire("vm-1", 0)).takenOverFrom).toMatchObject({ host: "other-host" });
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
