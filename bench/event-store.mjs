// Measure 3: event store appends and reads, on the embedded PGlite (file-backed data directory)
// and on a PostgreSQL server, against raw inserts of a same-shaped row into a plain table:
// `pg` on the server, `pglite.query` on a second PGlite (same kind of data directory).
//
// - single: one event per append (store: a transaction with the expected-version check),
//   sequential; baseline: one autocommitted single-row INSERT, and, to split the SQL shape from
//   the code around it, the store's six statements (begin, upsert stream, lock, insert, update,
//   commit) sent by hand on the raw driver.
// - batch: 100 events per append; baseline: one 100-row INSERT ... VALUES statement.
// - readAll: every stored event; baseline: SELECT * of the same number of raw rows.
// Store and raw take turns round by round, so noise falls on both.
import { hostname } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { importDist, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

const DATA = {
  pid: 424242,
  qmpSocket: "/run/user/1000/maqet/0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b/qmp.sock",
  accel: "tcg",
  qemuVersion: "7.2.22",
  durationMs: 73.4,
  argv: ["-name", "guest=web", "-S", "-no-shutdown", "-accel", "tcg", "-m", "64M", "-display", "none"],
};
const METADATA = {
  actor: { user: "root", uid: 0, host: hostname(), pid: process.pid },
  correlationId: crypto.randomUUID(),
  source: "library",
};
const RAW_TABLE = `create table raw_events (
  id bigserial primary key, event_id uuid not null, stream_id text not null, stream_version bigint not null,
  type text not null, schema_version integer not null, data jsonb not null, metadata jsonb not null,
  recorded_at timestamptz not null default now())`;
const RAW_TXN_TABLES = [
  "create table raw_streams (stream_id text primary key, version bigint not null default -1)",
  "create table raw_events_tx (like raw_events including all)",
];
const COLUMNS = "event_id, stream_id, stream_version, type, schema_version, data, metadata";
const BATCH = 100;

const rawParams = (stream, version) => [
  crypto.randomUUID(),
  stream,
  version,
  "vm.bench-sample",
  1,
  JSON.stringify(DATA),
  JSON.stringify(METADATA),
];
const valuesSql = (rows) =>
  Array.from({ length: rows }, (_, r) => {
    const p = (k) => `$${r * 7 + k}`;
    return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}::jsonb, ${p(7)}::jsonb)`;
  }).join(", ");
const SINGLE_SQL = `insert into raw_events (${COLUMNS}) values ${valuesSql(1)}`;
const BATCH_SQL = `insert into raw_events (${COLUMNS}) values ${valuesSql(BATCH)}`;

/** Appends through the store; `stream` is a fresh stream per round. */
function storeSide(store) {
  const event = () => ({ type: "vm.bench-sample", schemaVersion: 1, data: DATA, metadata: METADATA });
  let stream;
  let version;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      version = "no_stream";
    },
    append: async (count) => {
      const events = Array.from({ length: count }, event);
      const result = await store.append(stream, events, { expectedVersion: version });
      version = result.nextExpectedVersion;
    },
    readAll: async () => (await store.readAll()).length,
  };
}

/**
 * The store's append, statement for statement, on the raw driver: begin, create the stream row,
 * lock it, insert, bump the version, commit. Shows what the SQL shape costs without Kysely.
 */
function rawTxnSide(query) {
  let stream;
  let version;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      version = 0;
    },
    append: async () => {
      const params = rawParams(stream, version++);
      await query("begin");
      try {
        await query("insert into raw_streams (stream_id) values ($1) on conflict do nothing", [stream]);
        await query("select version from raw_streams where stream_id = $1 for update", [stream]);
        await query(SINGLE_SQL.replace("raw_events", "raw_events_tx"), params);
        await query("update raw_streams set version = $2 where stream_id = $1", [stream, version - 1]);
        await query("commit");
      } catch (error) {
        await query("rollback");
        throw error;
      }
    },
  };
}

/** Raw inserts through `query(sql, params)` returning `{ rows }`. */
function rawSide(query) {
  let stream;
  let version;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      version = 0;
    },
    append: async (count) => {
      const params = [];
      for (let i = 0; i < count; i++) params.push(...rawParams(stream, version++));
      await query(count === 1 ? SINGLE_SQL : BATCH_SQL, params);
    },
    readAll: async () => (await query("select * from raw_events order by id")).rows.length,
  };
}

async function measureTarget(label, store, raw, rawTxn, config) {
  const side = (name, impl) => ({
    name,
    side: impl,
    ...{ single: [], singleRate: [], batch: [], batchRate: [], read: [], readRate: [] },
  });
  const sides = [side("store", store), side("raw", raw)];
  const txn = side("rawTxn", rawTxn);
  const turns = (r) => (r % 2 === 0 ? sides : [...sides].reverse());
  // Warm-up: statements prepared, caches and WAL files touched.
  txn.side.newRound();
  for (let i = 0; i < 20; i++) await txn.side.append(1);
  for (const s of sides) {
    s.side.newRound();
    for (let i = 0; i < 20; i++) await s.side.append(1);
    await s.side.append(BATCH);
  }
  for (let r = 0; r < config.rounds; r++) {
    const order = [...turns(r), txn];
    if (r % 2 === 1) order.reverse();
    for (const s of order) {
      s.side.newRound();
      const t0 = nowMs();
      for (let i = 0; i < config.singles; i++) {
        const a = nowMs();
        await s.side.append(1);
        s.single.push(nowMs() - a);
      }
      s.singleRate.push(config.singles / ((nowMs() - t0) / 1000));
    }
  }
  for (let r = 0; r < config.rounds; r++) {
    for (const s of turns(r)) {
      s.side.newRound();
      const t0 = nowMs();
      for (let i = 0; i < config.batches; i++) {
        const a = nowMs();
        await s.side.append(BATCH);
        s.batch.push(nowMs() - a);
      }
      s.batchRate.push((config.batches * BATCH) / ((nowMs() - t0) / 1000));
    }
  }
  let counts;
  for (let r = 0; r < config.reads; r++) {
    counts = [];
    for (const s of turns(r)) {
      const a = nowMs();
      const n = await s.side.readAll();
      const ms = nowMs() - a;
      counts.push(n);
      s.read.push(ms);
      s.readRate.push(n / (ms / 1000));
    }
  }
  const [st, rw] = sides;
  return {
    rows: [
      row(`${label}: single append latency`, "ms", summarize(st.single), "1-row INSERT", summarize(rw.single)),
      row(
        `${label}: single append latency`,
        "ms",
        summarize(st.single),
        "same 6 statements, raw",
        summarize(txn.single),
      ),
      row(`${label}: single appends`, "events/s", summarize(st.singleRate), "1-row INSERT", summarize(rw.singleRate)),
      row(`${label}: 100-event append latency`, "ms", summarize(st.batch), "100-row INSERT", summarize(rw.batch)),
      row(
        `${label}: 100-event appends`,
        "events/s",
        summarize(st.batchRate),
        "100-row INSERT",
        summarize(rw.batchRate),
      ),
      row(
        `${label}: readAll (${counts[0]} events)`,
        "events/s",
        summarize(st.readRate),
        `SELECT * (${counts[1]} rows)`,
        summarize(rw.readRate),
      ),
    ],
  };
}

await runMeasure("store", "3. Event store: appends and readAll", async (ctx) => {
  const { openEventStore } = await importDist(ctx, "src/adapters/open-event-store.js");
  const config = ctx.quick
    ? { rounds: 3, singles: 100, batches: 5, reads: 3 }
    : { rounds: 5, singles: 200, batches: 10, reads: 5 };
  const rows = [];
  const notes = [
    `${config.rounds} rounds per side of ${config.singles} single appends, then of ${config.batches} x ${BATCH}-event ` +
      `appends; readAll ${config.reads}x; latency p95 is over appends, rate p95 over rounds (about the max)`,
  ];

  // Embedded: two file-backed PGlite data directories, one for the store, one for the raw table.
  const opened = await openEventStore({ dataDir: join(ctx.root, "pglite-store"), source: "library" });
  ctx.defer(() => opened.close());
  const lite = await PGlite.create({ dataDir: join(ctx.root, "pglite-raw") });
  ctx.defer(() => (lite.closed ? undefined : lite.close()));
  await lite.exec(RAW_TABLE);
  for (const ddl of RAW_TXN_TABLES) await lite.exec(ddl);
  const liteVersion = (await lite.query("select version()")).rows[0].version.split(" ").slice(0, 2).join(" ");
  const embedded = await measureTarget(
    "PGlite",
    storeSide(opened.store),
    rawSide((sql, params) => lite.query(sql, params)),
    rawTxnSide((sql, params) => lite.query(sql, params)),
    config,
  );
  rows.push(...embedded.rows);
  await opened.close();
  await lite.close();

  // Server: one database, the store's tables and the raw table side by side.
  // Outside ctx.root (mode 0700, ours): the server runs as another user when we are root.
  const server = await startPostgres(ctx.pgPrefix ?? `${ctx.root}-pg-`);
  ctx.defer(() => server.stop());
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query("create database maqet_bench");
  await admin.end();
  const url = server.url.replace(/\/postgres$/, "/maqet_bench");
  const openedPg = await openEventStore({ databaseUrl: url, dataDir: join(ctx.root, "unused"), source: "library" });
  ctx.defer(() => openedPg.close());
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  ctx.defer(() => client.end());
  await client.query(RAW_TABLE);
  for (const ddl of RAW_TXN_TABLES) await client.query(ddl);
  const serverRows = await measureTarget(
    "PG server",
    storeSide(openedPg.store),
    rawSide((sql, params) => client.query(sql, params)),
    rawTxnSide((sql, params) => client.query(sql, params)),
    config,
  );
  rows.push(...serverRows.rows);
  notes.push(`PGlite reports ${liteVersion}; server ${server.version} (fsync=off, synchronous_commit=off)`);
  return { rows, notes, info: { pgliteVersion: liteVersion, serverVersion: server.version } };
});
