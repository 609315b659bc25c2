/**
 * Read-your-writes on a PostgreSQL server: the VM list is a projection read below the
 * transaction watermark, so while ANY session on the cluster holds a transaction open, a VM
 * added a moment ago is not in it yet. Looking a VM up must still find it (through the name
 * claim and its stream, committed with the append). Runs on a cluster of its own, since an open
 * transaction holds back every reader on a cluster.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaqet, type Maqet } from "../../src/mod.ts";
import { serverDatabases } from "../support/test-databases.ts";

describe("read-your-writes while another session holds a transaction open (server)", { timeout: 120_000 }, () => {
  const server = serverDatabases({ ownCluster: true });
  let db: { url: string; drop(): Promise<void> };
  let holder: pg.Client;
  let maqet: Maqet;

  beforeAll(async () => {
    db = await server.create();
    maqet = createMaqet({ databaseUrl: db.url, env: { PATH: process.env.PATH }, runtimeDir: "/tmp/maqet-ryw-run" });
    await maqet.list(); // migrated, projection caught up
    holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    // An unrelated session with an xid, left open: the watermark stops below it.
    await holder.query("begin");
    await holder.query("select pg_current_xact_id()");
  });

  afterAll(async () => {
    await holder?.query("rollback").catch(() => undefined);
    await holder?.end().catch(() => undefined);
    await maqet?.close();
    await db?.drop();
  });

  it("a VM added while the watermark is held is found by name and by id, and can be driven", async () => {
    const added = await maqet.add({ name: "fresh", accel: "tcg", memory: "32M" });
    const byName = await maqet.status("fresh");
    expect(byName).toMatchObject({ name: "fresh", id: added.id, state: "stopped" });
    expect((await maqet.status(added.id)).name).toBe("fresh");
    expect((await maqet.history("fresh")).map((e) => e.type)).toEqual(["vm.defined"]);
    // The list itself is the projection: it may lag while the transaction stays open...
    const listed = (await maqet.list()).map((v) => v.name);
    await holder.query("rollback");
    // ...and catches up once it ends.
    expect((await maqet.list()).map((v) => v.name)).toContain("fresh");
    expect(listed.length).toBeLessThanOrEqual(1);
    await maqet.remove("fresh");
  });
});
