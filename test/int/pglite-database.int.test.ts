/**
 * The embedded store as maqet opens it (src/adapters/pglite-database.ts): PostgreSQL's buffer
 * pool is 32 MB, not initdb's 128 MB that every open store used to hold in its RSS, and what was
 * committed is there after a reopen (the pool is a cache, durability is the files').
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { openPgliteDatabase } from "../../src/adapters/pglite-database.ts";

describe("openPgliteDatabase", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("opens with a 32 MB buffer pool; a committed row survives the reopen", { timeout: 300_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-pglite-open-"));
    const dataDir = join(dir, "pglite");
    const first = await openPgliteDatabase({ dataDir });
    try {
      const shown = await sql<{ shared_buffers: string }>`show shared_buffers`.execute(first.db);
      expect(shown.rows[0]?.shared_buffers).toBe("32MB");
      await sql`create table kept (v text)`.execute(first.db);
      await sql`insert into kept values ('committed')`.execute(first.db);
    } finally {
      await first.close();
    }
    const again = await openPgliteDatabase({ dataDir });
    try {
      const rows = await sql<{ v: string }>`select v from kept`.execute(again.db);
      expect(rows.rows).toEqual([{ v: "committed" }]);
    } finally {
      await again.close();
    }
  });
});
