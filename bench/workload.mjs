// The event the store benchmarks append: a `vm.*`-like payload (~250 bytes of data) with the real
// metadata shape. Every side of a comparison (maqet, Emmett, the raw inserts) writes this same
// event, so the bytes sent and stored are the same. bench/event-store.mjs still defines its own
// copy of DATA and METADATA (identical); it can import these instead.
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
