// The event the store benchmarks append: a `vm.*`-like payload (~250 bytes of data) with the real
// metadata shape. Every side of a comparison (maqet, Emmett, the raw inserts) writes this same
// event, so the bytes sent and stored are the same. Also the two sides every append measure
// shares: the store's `append`, and raw inserts of the same rows (bench/event-store.mjs,
// bench/emmett-compare.mjs).
import { hostname } from "node:os";

export const EVENT_TYPE = "vm.bench-sample";
export const SCHEMA_VERSION = 1;
export const BATCH = 100;

export const DATA = {
  pid: 424242,
  qmpSocket: "/run/user/1000/maqet/0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b/qmp.sock",
  accel: "tcg",
  qemuVersion: "7.2.22",
  durationMs: 73.4,
  argv: ["-name", "guest=web", "-S", "-no-shutdown", "-accel", "tcg", "-m", "64M", "-display", "none"],
};

export const METADATA = {
  actor: { user: "root", uid: 0, host: hostname(), pid: process.pid },
  correlationId: crypto.randomUUID(),
  source: "library",
};

/** A plain table of the store's columns, one primary key and no other index (the raw baseline). */
export const RAW_TABLE = `create table raw_events (
  id bigserial primary key, event_id uuid not null, stream_id text not null, stream_version bigint not null,
  type text not null, schema_version integer not null, data jsonb not null, metadata jsonb not null,
  recorded_at timestamptz not null default now())`;

/** A table with maqet_events' columns, defaults, identity and indexes (not its trigger). */
export const shapedTable = (name) => `create table ${name} (like maqet_events including all)`;

const COLUMNS = "event_id, stream_id, stream_version, type, schema_version, data, metadata";
const DATA_JSON = JSON.stringify(DATA);
const METADATA_JSON = JSON.stringify(METADATA);

/** Columns of `count` rows of one stream from `version` on, as unnest's seven arrays. */
function columnArrays(stream, version, count) {
  const arrays = [[], [], [], [], [], [], []];
  for (let i = 0; i < count; i++) {
    const values = [crypto.randomUUID(), stream, version + i, EVENT_TYPE, SCHEMA_VERSION, DATA_JSON, METADATA_JSON];
    for (let k = 0; k < 7; k++) arrays[k].push(values[k]);
  }
  return arrays;
}

/**
 * maqet: `store.append(stream, events, { expectedVersion })` on a fresh stream per round
 * (`newRound()`), no_stream first, then the exact version; `readAll()` counts the store.
 */
export function storeSide(store) {
  const event = () => ({ type: EVENT_TYPE, schemaVersion: SCHEMA_VERSION, data: DATA, metadata: METADATA });
  let stream;
  let version;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      version = "no_stream";
    },
    append: async (count) => {
      const result = await store.append(stream, Array.from({ length: count }, event), { expectedVersion: version });
      version = result.nextExpectedVersion;
    },
    readAll: async () => (await store.readAll()).length,
  };
}

/**
 * Raw inserts of the same rows into `table` through `query(sql, params)` (autocommitted, no
 * version check): 1 row as VALUES, more as one `INSERT ... SELECT FROM unnest(...)`.
 */
export function insertSide(query, table) {
  const single = `insert into ${table} (${COLUMNS}) values ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)`;
  const batch = `insert into ${table} (${COLUMNS})
    select * from unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[])`;
  let stream;
  let version;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      version = 0;
    },
    append: async (count) => {
      const arrays = columnArrays(stream, version, count);
      version += count;
      await (count === 1 ? query(single, arrays.flat()) : query(batch, arrays));
    },
    readAll: async () => (await query(`select * from ${table} order by id`)).rows.length,
  };
}
