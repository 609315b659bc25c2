// Measure 6: subscriptions, on the embedded PGlite (file-backed data directory) and on a
// PostgreSQL server.
//
// - latency: events appended one per append at a steady 200 and 1000 events/s; for each, the time
//   from the append's commit (its promise resolving in the writer) to the subscriber receiving
//   it, p50 and p99. On the server the subscriber uses its own store (its own pool and LISTEN
//   connection), as another process would, so it learns of appends only through NOTIFY (or its
//   poll). On PGlite (one process) it subscribes to the writer's store, which hands its appends
//   to live subscriptions at commit. An event delivered before the writer saw its own commit
//   acknowledged counts as 0 ms (the notes say how many). Baseline: the same thing by hand,
//   at the same rate: an autocommitted INSERT into a plain table that also sends pg_notify, and a
//   LISTENing client that, on each wake-up, keyset-reads the new rows (`id > last`) on a second
//   connection; latency from the INSERT's acknowledgement to the row coming back to the reader.
// - catch-up: a new subscriber from position 0 over N stored events until its caughtUp marker,
//   against a raw keyset read of the same table (`where global_position > $1 order by
//   global_position limit 500` until empty), rounds taking turns.
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { CompiledQuery } from "kysely";
import pg from "pg";
import { importDist, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs, quantile, row, summarize } from "./stats.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const pct = (samples, q) => ({ median: quantile(samples, q), n: samples.length });

/** Calls `send(i)` at `rate` per second for `seconds`, on schedule (not waiting for earlier sends). */
async function steady(rate, seconds, send) {
  const interval = 1000 / rate;
  const total = Math.round(rate * seconds);
  const start = nowMs();
  const pending = [];
  let late = 0;
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - nowMs();
    if (wait > 1) await sleep(wait);
    else if (wait < -100) late++;
    pending.push(send(i));
  }
  await Promise.all(pending);
  return { total, late, elapsedMs: nowMs() - start };
}

/** Latencies (ms) of one steady run through the store: commit acknowledged -> delivered. */
async function storeLatency(writer, reader, rate, seconds, tag) {
  const delivered = new Map();
  const committed = new Map();
  let caughtUp;
  const ready = new Promise((resolve) => {
    caughtUp = resolve;
  });
  const sub = reader.subscribe({ from: "end", filter: { category: "lat" } }).subscribe((m) => {
    if (m.kind === "event") delivered.set(m.event.id, nowMs());
    else caughtUp();
  });
  // Wait for the marker so the run measures live delivery, not the catch-up.
  await ready;
  await sleep(200);
  const ids = [];
  const run = await steady(rate, seconds, async (i) => {
    const id = crypto.randomUUID();
    ids.push(id);
    await writer.append(`lat-${tag}${i % 8}`, [{ id, type: "bench.tick", schemaVersion: 1, data: { i } }]);
    committed.set(id, nowMs());
  });
  const deadline = nowMs() + 10_000;
  while (delivered.size < ids.length && nowMs() < deadline) await sleep(10);
  sub.unsubscribe();
  const got = ids.filter((id) => delivered.has(id));
  const samples = got.map((id) => Math.max(0, delivered.get(id) - committed.get(id)));
  // Delivered before the writer saw its append resolve (PGlite hands its own appends over at commit).
  const early = got.filter((id) => delivered.get(id) < committed.get(id)).length;
  return { samples, missing: ids.length - samples.length, early, ...run };
}

/**
 * The hand-made equivalent: INSERT + pg_notify in one autocommitted statement; a listener that
 * reads new rows by keyset on each wake-up (one read at a time, again if woken meanwhile).
 */
async function rawLatency(raw, rate, seconds) {
  const sent = new Map();
  const received = new Map();
  let last = 0;
  let reading = false;
  let again = false;
  const read = async () => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    do {
      again = false;
      for (;;) {
        const rows = await raw.read(last);
        const t = nowMs();
        for (const r of rows) received.set(r.k, t);
        if (rows.length === 0) break;
        last = Number(rows.at(-1).id);
        if (rows.length < 500) break;
      }
    } while (again);
    reading = false;
  };
  const stop = await raw.listen(() => void read());
  last = await raw.maxId();
  await sleep(100);
  const run = await steady(rate, seconds, async (i) => {
    const key = `${rate}-${i}-${crypto.randomUUID().slice(0, 8)}`;
    await raw.insert(key);
    sent.set(key, nowMs());
  });
  const deadline = nowMs() + 5_000;
  while (received.size < run.total && nowMs() < deadline) await sleep(10);
  await stop();
  const samples = [...sent.keys()]
    .filter((k) => received.has(k))
    .map((k) => Math.max(0, received.get(k) - sent.get(k)));
  return { samples, ...run };
}

const RAW_DDL = "create table raw_lat (id bigserial primary key, k text not null, data jsonb not null default '{}')";
const RAW_INSERT =
  "with i as (insert into raw_lat (k) values ($1) returning id) select pg_notify('bench_raw', (select id::text from i))";
const RAW_READ = "select id, k from raw_lat where id > $1 order by id limit 500";

async function latencyRows(label, writer, reader, raw, config, notes) {
  const rows = [];
  for (const rate of [200, 1000]) {
    await storeLatency(writer, reader, rate, 0.5, `w${rate}`); // warm-up, not counted
    const store = await storeLatency(writer, reader, rate, config.seconds, `r${rate}`);
    await rawLatency(raw, rate, 0.5);
    const base = await rawLatency(raw, rate, config.seconds);
    const what = `${label}: ${rate} events/s, commit -> delivered`;
    rows.push(
      row(`${what}, p50`, "ms", pct(store.samples, 0.5), "INSERT+NOTIFY, LISTEN+keyset p50", pct(base.samples, 0.5)),
    );
    rows.push(
      row(`${what}, p99`, "ms", pct(store.samples, 0.99), "INSERT+NOTIFY, LISTEN+keyset p99", pct(base.samples, 0.99)),
    );
    const s = summarize(store.samples);
    notes.push(
      `${label} ${rate}/s: ${store.total} events in ${(store.elapsedMs / 1000).toFixed(1)} s, ` +
        `p95 ${s.p95.toFixed(2)} ms, max ${s.max.toFixed(1)} ms, ${store.missing} not delivered within 10 s, ` +
        `${store.early} delivered before their append resolved (0 ms), ` +
        `${store.late} appends sent >100 ms late; baseline ${base.total} rows in ${(base.elapsedMs / 1000).toFixed(1)} s, ` +
        `${base.late} sent late`,
    );
  }
  return rows;
}

/** Catch-up from 0 through the store vs a raw keyset read, `rounds` each, taking turns. */
async function catchUpRows(label, store, rawRead, rounds) {
  const storeRates = [];
  const rawRates = [];
  let count = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = nowMs();
    let seen = 0;
    await new Promise((resolve, reject) => {
      const sub = store.subscribe({ from: "start" }).subscribe({
        next: (m) => {
          if (m.kind === "event") seen++;
          else {
            sub?.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    storeRates.push(seen / ((nowMs() - t0) / 1000));
    count = seen;
    const t1 = nowMs();
    const rows = await rawRead();
    rawRates.push(rows / ((nowMs() - t1) / 1000));
  }
  return row(
    `${label}: catch-up from 0 (${count} events)`,
    "events/s",
    summarize(storeRates),
    "raw keyset read, pages of 500",
    summarize(rawRates),
  );
}

async function fill(store, count) {
  for (let done = 0; done < count; done += 500) {
    const batch = Array.from({ length: Math.min(500, count - done) }, (_, i) => ({
      type: "bench.fill",
      schemaVersion: 1,
      data: { i: done + i, pad: "x".repeat(64) },
    }));
    await store.append(`fill-${done % 20}`, batch);
  }
}

const KEYSET = "select * from maqet_events where global_position > $1 order by global_position limit 500";
async function keysetRead(query) {
  let last = 0;
  let total = 0;
  for (;;) {
    const rows = await query(KEYSET, [last]);
    if (rows.length === 0) return total;
    total += rows.length;
    last = Number(rows.at(-1).global_position);
  }
}

await runMeasure("subscriptions", "6. Subscriptions: delivery latency and catch-up", async (ctx) => {
  const { openEventStore } = await importDist(ctx, "src/adapters/open-event-store.js");
  const config = ctx.quick ? { seconds: 2, catchUp: 5_000, rounds: 2 } : { seconds: 5, catchUp: 20_000, rounds: 3 };
  const rows = [];
  const notes = [
    `latency: one event per append, on schedule, ${config.seconds} s per rate after a 0.5 s warm-up; ` +
      "p99 with under 1000 samples is near the maximum",
  ];

  // Embedded: the store's own PGlite; the raw baseline on a second PGlite data directory.
  const opened = await openEventStore({ dataDir: join(ctx.root, "pglite-store"), source: "library" });
  ctx.defer(() => opened.close());
  const lite = await PGlite.create({ dataDir: join(ctx.root, "pglite-raw") });
  ctx.defer(() => (lite.closed ? undefined : lite.close()));
  await lite.exec(RAW_DDL);
  rows.push(
    ...(await latencyRows(
      "PGlite",
      opened.store,
      opened.store,
      {
        insert: (key) => lite.query(RAW_INSERT, [key]),
        read: async (after) => (await lite.query(RAW_READ, [after])).rows,
        maxId: async () => Number((await lite.query("select coalesce(max(id), 0) as m from raw_lat")).rows[0].m),
        listen: (onWake) => lite.listen("bench_raw", onWake),
      },
      config,
      notes,
    )),
  );
  await fill(opened.store, config.catchUp);
  rows.push(
    await catchUpRows(
      "PGlite",
      opened.store,
      () => keysetRead(async (sql, params) => (await opened.db.executeQuery(CompiledQuery.raw(sql, params))).rows),
      config.rounds,
    ),
  );
  await opened.close();
  await lite.close();

  // Server: writer and subscriber are separate stores (pools, LISTEN connection), as two processes.
  const server = await startPostgres(ctx.pgPrefix ?? `${ctx.root}-pg-`);
  ctx.defer(() => server.stop());
  const url = await server.createDatabase("maqet_bench");
  const writer = await openEventStore({ databaseUrl: url, dataDir: join(ctx.root, "unused"), source: "library" });
  ctx.defer(() => writer.close());
  const reader = await openEventStore({ databaseUrl: url, dataDir: join(ctx.root, "unused"), source: "library" });
  ctx.defer(() => reader.close());
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  ctx.defer(() => pool.end());
  await pool.query(RAW_DDL);
  rows.push(
    ...(await latencyRows(
      "PG server",
      writer.store,
      reader.store,
      {
        insert: (key) => pool.query(RAW_INSERT, [key]),
        read: async (after) => (await pool.query(RAW_READ, [after])).rows,
        maxId: async () => Number((await pool.query("select coalesce(max(id), 0) as m from raw_lat")).rows[0].m),
        listen: async (onWake) => {
          const listener = new pg.Client({ connectionString: url });
          await listener.connect();
          listener.on("notification", () => onWake());
          await listener.query("listen bench_raw");
          return () => listener.end();
        },
      },
      config,
      notes,
    )),
  );
  await fill(writer.store, config.catchUp);
  rows.push(
    await catchUpRows(
      "PG server",
      reader.store,
      () => keysetRead(async (sql, params) => (await pool.query(sql, params)).rows),
      config.rounds,
    ),
  );
  notes.push(
    `server ${server.version} (fsync=off, synchronous_commit=off); the store's catch-up reads in pages of 500 ` +
      "below the transaction-id watermark, ordered by (transaction id, position)",
  );
  return { rows, notes, info: { serverVersion: server.version } };
});
