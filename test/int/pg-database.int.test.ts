/**
 * openPgDatabase on the PostgreSQL server: a server that drops a connection the pool has lent out
 * (a restart, `pg_terminate_backend`, a network cut) fails that connection's statement and leaves
 * the process alive; the next statement gets a new connection. Before the fix, `pg` emitted
 * "error" on the lent client with no listener, and the process died (every cluster agent on a
 * PostgreSQL restart: issue 13's chaos test).
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openPgDatabase, type PgDatabase } from "../../src/adapters/pg-database.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";
import { waitForValue } from "../support/poll.ts";
import { serverDatabases } from "../support/test-databases.ts";

const databaseUrl = inject("databaseUrl");

describe.skipIf(!databaseUrl)("openPgDatabase: a connection the server drops while it is lent out", () => {
  let opened: PgDatabase;
  let killer: PgDatabase;
  let drop: () => Promise<void>;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  beforeAll(async () => {
    const db = await serverDatabases().create();
    drop = db.drop;
    opened = await openPgDatabase({ url: db.url });
    killer = await openPgDatabase({ url: db.url, maxConnections: 1 });
    process.on("uncaughtException", onUncaught);
  });
  afterAll(async () => {
    process.off("uncaughtException", onUncaught);
    await opened?.close();
    await killer?.close();
    await drop?.();
  });

  // Not events.once: it would listen for "error" too, which is what the fix is about.
  const endOf = (client: { once(event: "end", listener: () => void): unknown }) =>
    new Promise<void>((resolve) => client.once("end", resolve));
  const terminate = async (pid: number) => {
    const { rows } = await killer.pool.query<{ done: boolean }>("select pg_terminate_backend($1) as done", [pid]);
    expect(rows[0]!.done).toBe(true);
  };

  it("between statements (a transaction holding it): the process lives, the next statement reconnects", async () => {
    const client = await opened.pool.connect();
    const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
    const ended = endOf(client);
    await terminate(rows[0]!.pid);
    await ended;
    expect(uncaught).toEqual([]);
    await expect(client.query("select 1")).rejects.toThrow();
    client.release(true);
    const again = await opened.pool.query<{ one: number }>("select 1 as one");
    expect(again.rows[0]!.one).toBe(1);
  });

  it("mid-statement: that statement fails, the process lives", async () => {
    const client = await opened.pool.connect();
    const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
    const ended = endOf(client);
    const sleeping = client.query("select pg_sleep(60)");
    const failed = expect(sleeping).rejects.toThrow(/terminat/i);
    await terminate(rows[0]!.pid);
    await failed;
    await ended;
    expect(uncaught).toEqual([]);
    client.release(true);
    const again = await opened.pool.query<{ one: number }>("select 1 as one");
    expect(again.rows[0]!.one).toBe(1);
  });

  it("through Kysely, a statement whose connection the server drops fails with STORE_ERROR", async () => {
    const marker = `maqet-lost-${crypto.randomUUID()}`;
    const sleeping = sql`select pg_sleep(60), ${marker}::text`.execute(opened.db).then(
      () => undefined,
      (error: unknown) => error,
    );
    const pid = await waitForValue("the sleeping statement's backend", async () => {
      const { rows } = await killer.pool.query<{ pid: number }>(
        "select pid from pg_stat_activity where state = 'active' and query like '%pg_sleep(60)%' and pid <> pg_backend_pid()",
      );
      return rows[0]?.pid;
    });
    await terminate(pid);
    const error = await sleeping;
    expect(isMaqetError(error, "STORE_ERROR"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /^The PostgreSQL server did not answer: (Connection terminated|terminating connection)/,
    );
    expect(uncaught).toEqual([]);
    // The next statement gets a new connection.
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(opened.db);
    expect(rows[0]!.one).toBe(1);
  });

  it("through Kysely, a refused statement keeps its own error (SQLSTATE)", async () => {
    const error = await sql`select 1/0`.execute(opened.db).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMaqetError(error)).toBe(false);
    expect((error as { code?: string }).code).toBe("22012");
  });
});
