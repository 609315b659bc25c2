// What each index and column of maqet_events costs an insert, durable (PostgreSQL's defaults) and
// fsync off: the same rows inserted into variants of the table, rounds taking turns. Run:
//   node bench/row-cost.mjs [--quick]
// Variants start from maqet_events' shape (migrations 0001 + 0007: no foreign key) and drop one
// thing each; event ids are random (UUIDv4) or time-ordered (UUIDv7). Prints events/s per variant
// (median of rounds) and the ratio to the full shape, and what does not depend on the machine's
// load: WAL bytes per row (each round starts after a CHECKPOINT, so full-page images are counted
// as production pays them) and the server backend's CPU time per row (/proc/<pid>/schedstat).
import { readFileSync } from "node:fs";
import pg from "pg";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs } from "./stats.mjs";
import { uuidv7 } from "./uuidv7.mjs";
import { DATA, EVENT_TYPE, METADATA, SCHEMA_VERSION } from "./workload.mjs";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 3 : 5;
const SINGLES = quick ? 200 : 400;
const BATCHES = quick ? 10 : 20;
const GROUP = 8;
const PREFILL = quick ? 20_000 : 100_000; // rows per transaction, 8 streams: what a group commit of 8 writers writes

const BASE = `(
  global_position bigint generated always as identity primary key,
  event_id uuid not null, stream_id text not null, %CATEGORY%
  stream_version bigint not null, type text not null, schema_version integer not null,
  data jsonb not null, metadata jsonb not null, recorded_at timestamptz not null default now(),
  transaction_id xid8 not null default pg_current_xact_id())`;
const CATEGORY_COLUMN = "category text generated always as (split_part(stream_id, '-', 1)) stored,";
const INDEXES = {
  event_id: (t) => `create unique index on ${t} (event_id)`,
  stream_version: (t) => `create unique index on ${t} (stream_id, stream_version)`,
  transaction: (t) => `create index on ${t} (transaction_id, global_position)`,
  category: (t) => `create index on ${t} (category, transaction_id, global_position)`,
};
const VARIANTS = [
  { name: "full shape, UUIDv4 ids", category: true, indexes: Object.keys(INDEXES), ids: "v4" },
  { name: "full shape, UUIDv7 ids", category: true, indexes: Object.keys(INDEXES), ids: "v7" },
  { name: "no category index, v7", category: true, indexes: ["event_id", "stream_version", "transaction"], ids: "v7" },
  {
    name: "no category column/index, v7",
    category: false,
    indexes: ["event_id", "stream_version", "transaction"],
    ids: "v7",
  },
  { name: "no event_id index, v7", category: true, indexes: ["stream_version", "transaction", "category"], ids: "v7" },
  { name: "no transaction index, v7", category: true, indexes: ["event_id", "stream_version", "category"], ids: "v7" },
  { name: "primary key only", category: false, indexes: [], ids: "v4" },
];

const COLUMNS = "event_id, stream_id, stream_version, type, schema_version, data, metadata";
const DATA_JSON = JSON.stringify(DATA);
const META_JSON = JSON.stringify(METADATA);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU time the backend `pid` has had, in ns (/proc/<pid>/schedstat: load does not inflate it). */
function cpuNs(pid) {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
}

async function run(durable) {
  const server = await startPostgres(`/tmp/mqb-rowcost-`, { durable });
  const client = new pg.Client({ connectionString: await server.createDatabase("rowcost") });
  await client.connect();
  try {
    const pid = (await client.query("select pg_backend_pid() as pid")).rows[0].pid;
    const kinds = ["single", "group", "batch"];
    const tables = VARIANTS.map((v, i) => {
      const t = { ...v, table: `t${i}`, version: 0 };
      for (const k of kinds) Object.assign(t, { [k]: [], [`${k}Wal`]: [], [`${k}Cpu`]: [] });
      return t;
    });
    for (const t of tables) {
      await client.query(`create table ${t.table} ${BASE.replace("%CATEGORY%", t.category ? CATEGORY_COLUMN : "")}`);
      for (const ix of t.indexes) await client.query(INDEXES[ix](t.table));
    }
    const id = (t) => (t.ids === "v7" ? uuidv7() : crypto.randomUUID());
    const rows = (t, n, stream) =>
      Array.from({ length: n }, () => [
        id(t),
        stream ?? `vm-${crypto.randomUUID()}`,
        t.version++,
        EVENT_TYPE,
        SCHEMA_VERSION,
        DATA_JSON,
        META_JSON,
      ]);
    const insert = (t, list) => {
      const cols = Array.from({ length: 7 }, (_, k) => list.map((r) => r[k]));
      return client.query(
        `insert into ${t.table} (${COLUMNS}) select * from unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[])`,
        cols,
      );
    };
    // A table that is not tiny: its indexes span many pages, as in a store that has run a while.
    for (const t of tables)
      for (let i = 0; i < PREFILL / 1000; i++) await insert(t, rows(t, 1000, `vm-prefill-${i % 50}`));
    await client.query("vacuum analyze");
    const lsn = async () => (await client.query("select pg_current_wal_insert_lsn() as l")).rows[0].l;
    const measure = async (t, kind, count, fn) => {
      // A checkpoint first: the first change of each page after it writes the whole page to the
      // WAL (full_page_writes), as in production after every checkpoint_timeout.
      await client.query("checkpoint");
      const l0 = await lsn();
      const c0 = cpuNs(pid);
      const t0 = nowMs();
      await fn();
      const ms = nowMs() - t0;
      const c1 = cpuNs(pid);
      const l1 = await lsn();
      const wal = Number((await client.query("select pg_wal_lsn_diff($1, $2) as d", [l1, l0])).rows[0].d);
      t[kind].push(count / (ms / 1000));
      t[`${kind}Wal`].push(wal / count);
      t[`${kind}Cpu`].push((c1 - c0) / 1000 / count);
    };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? [...tables].reverse() : tables;
      for (const t of order) {
        await measure(t, "single", SINGLES, async () => {
          for (let i = 0; i < SINGLES; i++) await insert(t, rows(t, 1));
        });
        await measure(t, "group", SINGLES, async () => {
          for (let i = 0; i < SINGLES / GROUP; i++) await insert(t, rows(t, GROUP));
        });
        const stream = `vm-${crypto.randomUUID()}`;
        await measure(t, "batch", BATCHES * 100, async () => {
          for (let i = 0; i < BATCHES; i++) await insert(t, rows(t, 100, stream));
        });
      }
    }
    const full = tables[0];
    console.log(
      `\n${durable ? "durable (PostgreSQL defaults)" : "fsync off"}; load ${readFileSync("/proc/loadavg", "utf8").trim()}; ${PREFILL} rows in each table first`,
    );
    console.log(
      "| variant | 1-row: rows/s | WAL B/row | server CPU µs/row | 8-row tx: rows/s | WAL B/row | CPU µs/row | 100-row: rows/s | WAL B/row | CPU µs/row |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const t of tables) {
      const cells = kinds.flatMap((k) => [
        `${Math.round(median(t[k]))} (${(median(t[k]) / median(full[k])).toFixed(2)}x)`,
        Math.round(median(t[`${k}Wal`])),
        Math.round(median(t[`${k}Cpu`])),
      ]);
      console.log(`| ${t.name} | ${cells.join(" | ")} |`);
    }
  } finally {
    await client.end();
    await server.stop();
  }
}

console.log(
  `row-cost: ${ROUNDS} rounds of ${SINGLES} 1-row inserts, ${SINGLES / GROUP} x ${GROUP}-row, ${BATCHES} x 100-row per variant; medians`,
);
await run(true);
await run(false);
