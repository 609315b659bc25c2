// Measure 3: event store appends and reads, on the embedded PGlite (file-backed data directory)
// and on a PostgreSQL server run twice: with PostgreSQL's durable defaults (every commit waits
// for its WAL flush, as in production) and with fsync/synchronous_commit off (what the CPU costs).
//
// - single: one event per append, sequential, each at the stream's expected version.
//   Baselines (same run, same database, rounds taking turns):
//   * "1-row INSERT": an autocommitted INSERT of the same row into a plain table with one
//     primary key (issue 3's goal: the store >= 0.8x its commits/s);
//   * "same row, store's indexes": the same INSERT into a table shaped like maqet_events (its
//     five indexes): what the row itself costs, whatever writes it;
//   * "maqet_append on the raw driver": the store's SQL function called with `pg` (or
//     `pglite.query`) directly: the SQL's cost without the TypeScript around it.
// - batch: 100 events per append; baselines: a 100-row `INSERT ... SELECT FROM unnest(...)` into
//   the plain table (issue 3's goal: >= 0.5x its rows/s) and into the store-shaped table.
// - writers (server only): 8 writers on 8 distinct streams at once, through one store (its pool
//   holds 10 connections; group commit on, as opened), and through a store on the same pool with
//   group commit off; baseline: 8 `pg` clients each inserting single rows into the plain table at
//   once (issue 15's goal: >= 1.0x, durable). PGlite has one session: nothing runs at once.
// - readAll: every stored event; baseline: SELECT * of the same number of raw rows.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { CompiledQuery } from "kysely";
import pg from "pg";
import { importDist, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs, row, summarize } from "./stats.mjs";
import {
  BATCH,
  DATA,
  EVENT_TYPE,
  insertSide,
  METADATA,
  RAW_TABLE,
  SCHEMA_VERSION,
  shapedTable,
  storeSide,
} from "./workload.mjs";

const WRITERS = 8;
const SHAPED_TABLE = shapedTable("shaped_events");

/** The store's SQL function called on the raw driver, with the batch the store would send. */
function functionSide(query) {
  let stream;
  let next;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      next = -1;
    },
    append: async (count) => {
      const events = Array.from({ length: count }, () => ({
        id: crypto.randomUUID(),
        type: EVENT_TYPE,
        schemaVersion: SCHEMA_VERSION,
        data: DATA,
        metadata: METADATA,
      }));
      const { rows } = await query("select * from maqet_append($1, $2::jsonb, $3, $4::bigint, false)", [
        stream,
        JSON.stringify(events),
        next === -1 ? "no_stream" : "exact",
        next === -1 ? null : next,
      ]);
      if (rows.length !== count) throw new Error(`maqet_append returned ${rows.length} rows for ${count} events`);
      next += count;
    },
  };
}

/** Runs `fn` for each side in an order that alternates with the round, so noise falls on all. */
async function inTurns(sides, round, fn) {
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const s of order) await fn(s);
}

async function measureTarget(label, sides, config) {
  for (const s of sides) Object.assign(s, { single: [], singleRate: [], batchRate: [], readRate: [] });
  // Warm-up: statements planned, caches and WAL files touched.
  for (const s of sides) {
    s.side.newRound();
    for (let i = 0; i < 20; i++) await s.side.append(1);
    await s.side.append(BATCH);
  }
  for (let r = 0; r < config.rounds; r++) {
    await inTurns(sides, r, async (s) => {
      s.side.newRound();
      const t0 = nowMs();
      for (let i = 0; i < config.singles; i++) {
        const a = nowMs();
        await s.side.append(1);
        s.single.push(nowMs() - a);
      }
      s.singleRate.push(config.singles / ((nowMs() - t0) / 1000));
    });
  }
  for (let r = 0; r < config.rounds; r++) {
    await inTurns(sides, r, async (s) => {
      s.side.newRound();
      const t0 = nowMs();
      for (let i = 0; i < config.batches; i++) await s.side.append(BATCH);
      s.batchRate.push((config.batches * BATCH) / ((nowMs() - t0) / 1000));
    });
  }
  const readers = sides.filter((s) => s.key === "store" || s.key === "plain");
  const counts = {};
  for (let r = 0; r < config.reads; r++) {
    await inTurns(readers, r, async (s) => {
      const a = nowMs();
      counts[s.key] = await s.side.readAll();
      s.readRate.push(counts[s.key] / ((nowMs() - a) / 1000));
    });
  }
  const [store, ...baselines] = sides;
  const rows = [];
  for (const b of baselines) {
    rows.push(row(`${label}: single append latency`, "ms", summarize(store.single), b.label, summarize(b.single)));
  }
  for (const b of baselines) {
    rows.push(
      row(`${label}: single appends`, "events/s", summarize(store.singleRate), b.label, summarize(b.singleRate)),
    );
  }
  for (const b of baselines.filter((x) => x.key !== "function")) {
    rows.push(
      row(
        `${label}: ${BATCH}-event appends`,
        "events/s",
        summarize(store.batchRate),
        `${BATCH}-row unnest INSERT${b.key === "shaped" ? ", store's indexes" : ""}`,
        summarize(b.batchRate),
      ),
    );
  }
  const fn = baselines.find((b) => b.key === "function");
  if (fn) {
    rows.push(
      row(
        `${label}: ${BATCH}-event appends`,
        "events/s",
        summarize(store.batchRate),
        fn.label,
        summarize(fn.batchRate),
      ),
    );
  }
  const plain = readers.find((s) => s.key === "plain");
  rows.push(
    row(
      `${label}: readAll (${counts.store} events)`,
      "events/s",
      summarize(store.readRate),
      `SELECT * (${counts.plain} rows)`,
      summarize(plain.readRate),
    ),
  );
  return rows;
}

/**
 * Events/s of `WRITERS` concurrent writers, `perWriter` single appends each: store (group commit
 * on, as opened) vs raw clients, and the store with group commit off (`ungrouped`, same pool).
 */
async function measureWriters(label, store, ungrouped, clients, config) {
  const storeRates = [];
  const rawRates = [];
  const ungroupedRates = [];
  // CPU per event, which the machine's load does not inflate: this process (the client side)
  // plus every process of the server (backends, WAL writer, checkpointer), from /proc.
  const cpu = { store: [], raw: [], ungrouped: [] };
  const backendPid = (await clients[0].query("select pg_backend_pid() as pid")).rows[0].pid;
  const serverPids = async () => serverProcesses(backendPid);
  const cpuNow = async () => {
    const client = process.cpuUsage();
    let server = 0;
    for (const pid of new Set(await serverPids())) server += schedNs(pid);
    return { client: (client.user + client.system) * 1000, server };
  };
  const cpuOf = async (key, body) => {
    const a = await cpuNow();
    await body();
    const b = await cpuNow();
    const n = WRITERS * config.perWriter;
    cpu[key].push({ client: (b.client - a.client) / 1000 / n, server: (b.server - a.server) / 1000 / n });
  };
  const run = async (target, rates) => cpuOf("ungrouped", () => runUngrouped(target, rates));
  const runUngrouped = async (target, rates) => {
    const sides = clients.map(() => storeSide(target));
    for (const s of sides) s.newRound();
    const t0 = nowMs();
    await Promise.all(
      sides.map(async (s) => {
        for (let i = 0; i < config.perWriter; i++) await s.append(1);
      }),
    );
    rates.push((WRITERS * config.perWriter) / ((nowMs() - t0) / 1000));
  };
  const storeRun = async () => cpuOf("store", storeRunTimed);
  const storeRunTimed = async () => {
    const sides = clients.map(() => storeSide(store));
    for (const s of sides) s.newRound();
    const t0 = nowMs();
    await Promise.all(
      sides.map(async (s) => {
        for (let i = 0; i < config.perWriter; i++) await s.append(1);
      }),
    );
    storeRates.push((WRITERS * config.perWriter) / ((nowMs() - t0) / 1000));
  };
  const rawRun = async () => cpuOf("raw", rawRunTimed);
  const rawRunTimed = async () => {
    const sides = clients.map((c) => insertSide((sql, params) => c.query(sql, params), "raw_events"));
    for (const s of sides) s.newRound();
    const t0 = nowMs();
    await Promise.all(
      sides.map(async (s) => {
        for (let i = 0; i < config.perWriter; i++) await s.append(1);
      }),
    );
    rawRates.push((WRITERS * config.perWriter) / ((nowMs() - t0) / 1000));
  };
  await storeRun(); // warm-up: the pool opens its connections
  await rawRun();
  await run(ungrouped, ungroupedRates);
  storeRates.length = 0;
  rawRates.length = 0;
  ungroupedRates.length = 0;
  for (const k of Object.keys(cpu)) cpu[k].length = 0;
  for (let r = 0; r < config.rounds; r++) {
    if (r % 2 === 0) {
      await storeRun();
      await rawRun();
      await run(ungrouped, ungroupedRates);
    } else {
      await run(ungrouped, ungroupedRates);
      await rawRun();
      await storeRun();
    }
  }
  return [
    row(
      `${label}: ${WRITERS} writers, distinct streams`,
      "events/s",
      summarize(storeRates),
      `${WRITERS} clients, 1-row INSERT`,
      summarize(rawRates),
    ),
    row(
      `${label}: ${WRITERS} writers, group commit off`,
      "events/s",
      summarize(ungroupedRates),
      `${WRITERS} clients, 1-row INSERT`,
      summarize(rawRates),
    ),
    ...["client", "server"].flatMap((side) => [
      row(
        `${label}: ${WRITERS} writers, ${side} CPU per event`,
        "µs",
        summarize(cpu.store.map((c) => c[side])),
        `${WRITERS} clients, 1-row INSERT`,
        summarize(cpu.raw.map((c) => c[side])),
      ),
      row(
        `${label}: ${WRITERS} writers, group commit off, ${side} CPU per event`,
        "µs",
        summarize(cpu.ungrouped.map((c) => c[side])),
        `${WRITERS} clients, 1-row INSERT`,
        summarize(cpu.raw.map((c) => c[side])),
      ),
    ]),
  ];
}

/** CPU time a process has had, in ns (0 when it is gone). */
function schedNs(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return 0;
  }
}

/** Every process of the server `backendPid` belongs to: its postmaster's children (backends, WAL writer...). */
function serverProcesses(backendPid) {
  const ppidOf = (pid) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
  const postmaster = ppidOf(backendPid);
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (ppidOf(entry) === postmaster) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** One server run: the store's database and the raw tables side by side. */
async function measureServer(ctx, { openEventStore, PostgresEventStore }, { durable }, config) {
  const label = durable ? "PG server, durable" : "PG server, fsync off";
  const server = await startPostgres(ctx.pgPrefix ?? `${ctx.root}-pg-`, { durable });
  try {
    const url = await server.createDatabase("maqet_bench");
    const opened = await openEventStore({ databaseUrl: url, dataDir: join(ctx.root, "unused"), source: "library" });
    const clients = [];
    try {
      for (let i = 0; i < WRITERS; i++) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        clients.push(client);
      }
      const query = (sql, params) => clients[0].query(sql, params);
      await query(RAW_TABLE);
      await query(SHAPED_TABLE);
      const rows = await measureTarget(
        label,
        [
          { key: "store", side: storeSide(opened.store) },
          { key: "plain", label: "1-row INSERT", side: insertSide(query, "raw_events") },
          { key: "shaped", label: "same row, store's indexes", side: insertSide(query, "shaped_events") },
          { key: "function", label: "maqet_append on raw driver", side: functionSide(query) },
        ],
        config,
      );
      const ungrouped = new PostgresEventStore(opened.db, { source: "library", groupCommit: false });
      rows.push(...(await measureWriters(label, opened.store, ungrouped, clients, config)));
      return { rows, version: server.version };
    } finally {
      for (const c of clients) await c.end().catch(() => {});
      await opened.close();
    }
  } finally {
    await server.stop();
  }
}

await runMeasure("store", "3. Event store: appends and readAll", async (ctx) => {
  const { openEventStore } = await importDist(ctx, "src/adapters/open-event-store.js");
  const { PostgresEventStore } = await importDist(ctx, "src/events/postgres-event-store.js");
  const config = ctx.quick
    ? { rounds: 3, singles: 100, batches: 5, reads: 3, perWriter: 50 }
    : { rounds: 5, singles: 200, batches: 10, reads: 5, perWriter: 100 };
  const rows = [];
  const notes = [
    `${config.rounds} rounds per side of ${config.singles} single appends, then of ${config.batches} x ${BATCH}-event ` +
      `appends; ${WRITERS} writers x ${config.perWriter} appends, ${config.rounds} rounds; readAll ${config.reads}x; ` +
      "latency p95 is over appends, rate p95 over rounds (about the max)",
  ];

  // Embedded: two file-backed PGlite data directories, one for the store, one for the raw tables.
  const opened = await openEventStore({ dataDir: join(ctx.root, "pglite-store"), source: "library" });
  ctx.defer(() => opened.close());
  const lite = await PGlite.create({ dataDir: join(ctx.root, "pglite-raw") });
  ctx.defer(() => (lite.closed ? undefined : lite.close()));
  await lite.exec(RAW_TABLE);
  const liteQuery = (sql, params) => lite.query(sql, params);
  // The store-shaped table and the function live in the store's database (Kysely's raw query:
  // the store's PGlite handle is not exported).
  const storeQuery = (sql, params) => opened.db.executeQuery(CompiledQuery.raw(sql, params ?? []));
  const liteVersion = (await lite.query("select version()")).rows[0].version.split(" ").slice(0, 2).join(" ");
  const liteSides = [
    { key: "store", side: storeSide(opened.store) },
    { key: "plain", label: "1-row INSERT", side: insertSide(liteQuery, "raw_events") },
  ];
  await storeQuery(SHAPED_TABLE);
  liteSides.push(
    { key: "shaped", label: "same row, store's indexes", side: insertSide(storeQuery, "shaped_events") },
    { key: "function", label: "maqet_append, Kysely raw query", side: functionSide(storeQuery) },
  );
  rows.push(...(await measureTarget("PGlite", liteSides, config)));
  await opened.close();
  await lite.close();

  // Servers, one after the other: durable (PostgreSQL's defaults), then fsync off.
  let serverVersion;
  for (const durable of [true, false]) {
    const measured = await measureServer(ctx, { openEventStore, PostgresEventStore }, { durable }, config);
    rows.push(...measured.rows);
    serverVersion = measured.version;
  }
  notes.push(
    `PGlite reports ${liteVersion}; server ${serverVersion}: "durable" = PostgreSQL's defaults (fsync, ` +
      'synchronous_commit, full_page_writes on); "fsync off" = the test clusters\' settings (all three off)',
  );
  return { rows, notes, info: { pgliteVersion: liteVersion, serverVersion } };
});
