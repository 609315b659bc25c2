// Measure "emmett": maqet's event store against Emmett's PostgreSQL event store
// (`@event-driven-io/emmett-postgresql`, a dependency of bench/package.json only) and a raw
// `unnest` batch insert, on one throwaway PostgreSQL 15 server (settings of bench/postgres-server.mjs).
// Each side has a database of its own on that server: maqet's (with the raw table beside it) and
// Emmett's, so neither schema sees the other's rows.
//
// - 100-event appends to a fresh stream per round, with the expected version (no stream for the
//   first append, then the exact version the previous append returned). Raw baseline: one
//   autocommitted `insert ... select * from unnest($1::uuid[], $2::text[], ...)` of 100 rows into
//   a plain table (one index), and the same into a copy of maqet_events' shape (its indexes).
// - single-event appends, same expected versions; raw baseline: one autocommitted 1-row INSERT.
// - subscription latency at a steady 200 events/s: append acknowledged -> delivered to a
//   subscriber (maqet: `subscribe({ from: "end" })` on a second store; Emmett: its polling
//   consumer with a reactor, default settings), p50 and p99.
// - two expected-version probes (notes only): `no_stream` against an existing stream, and 5
//   concurrent appends without a version check to one stream; what each store does.
// The four append sides take turns round by round (the order rotates), so noise falls on all.
//
// Needs bench/node_modules: when Emmett is missing this measure runs `npm ci --prefix bench`.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { benchDir, importDist, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs, quantile, row, summarize } from "./stats.mjs";
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

const EMMETT = "@event-driven-io/emmett-postgresql";
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** The Emmett version bench/package.json asks for, installed into bench/node_modules if needed. */
function ensureEmmett() {
  const wanted = JSON.parse(readFileSync(join(benchDir, "package.json"), "utf8")).dependencies[EMMETT];
  const installed = join(benchDir, "node_modules", EMMETT, "package.json");
  const version = () => (existsSync(installed) ? JSON.parse(readFileSync(installed, "utf8")).version : undefined);
  if (version() === wanted) return wanted;
  process.stderr.write(
    `bench emmett: ${EMMETT}@${wanted} is not in bench/node_modules; running \`npm ci --prefix bench\`\n`,
  );
  try {
    execFileSync("npm", ["ci", "--prefix", benchDir, "--no-audit", "--no-fund"], { stdio: ["ignore", 2, 2] });
  } catch (error) {
    throw new Error(
      `installing the bench's dependencies failed (${error.message}). Run \`npm ci --prefix bench\` by hand, then retry.`,
    );
  }
  if (version() !== wanted) throw new Error(`npm ci --prefix bench did not install ${EMMETT}@${wanted}`);
  return wanted;
}

const newEvent = () => ({ type: EVENT_TYPE, schemaVersion: SCHEMA_VERSION, data: DATA, metadata: METADATA });

/** Emmett: `eventStore.appendToStream(stream, events, { expectedStreamVersion })`, same workload. */
function emmettSide(eventStore, { STREAM_DOES_NOT_EXIST }) {
  const event = () => ({ type: EVENT_TYPE, data: DATA, metadata: METADATA });
  let stream;
  let version;
  return {
    newRound: () => {
      stream = `vm-${crypto.randomUUID()}`;
      version = STREAM_DOES_NOT_EXIST;
    },
    append: async (count) => {
      const events = Array.from({ length: count }, event);
      const result = await eventStore.appendToStream(stream, events, { expectedStreamVersion: version });
      version = result.nextExpectedStreamVersion;
    },
  };
}

/** maqet_events' columns, defaults, generated columns and indexes, without its trigger or the append function. */
const SHAPED_TABLE = shapedTable("raw_events_shaped");

/** Appends of `count` events, `perRound` per round on a fresh stream, sides taking turns. */
async function appendRounds(sides, count, perRound, rounds) {
  const stats = sides.map(() => ({ latency: [], rate: [] }));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length;
      const side = sides[i];
      side.newRound();
      const t0 = nowMs();
      for (let n = 0; n < perRound; n++) {
        const a = nowMs();
        await side.append(count);
        stats[i].latency.push(nowMs() - a);
      }
      stats[i].rate.push((perRound * count) / ((nowMs() - t0) / 1000));
    }
  }
  return stats;
}

/** Calls `send(i)` at `rate` per second for `seconds`, on schedule (not waiting for earlier sends). */
async function steady(rate, seconds, send) {
  const interval = 1000 / rate;
  const total = Math.round(rate * seconds);
  const start = nowMs();
  const pending = [];
  for (let i = 0; i < total; i++) {
    const wait = start + i * interval - nowMs();
    if (wait > 1) await sleep(wait);
    pending.push(send(i));
  }
  await Promise.all(pending);
  return total;
}

/**
 * Delivery latency (ms) of one steady run: `subscribe(onDelivered)` starts a subscriber and
 * returns its stop function; `append(id)` appends one event carrying `id`. Each event goes to a
 * stream of its own. An event delivered before its append was acknowledged counts as 0 ms.
 */
async function latencyRun({ subscribe, append, rate, seconds, settleMs }) {
  const delivered = new Map();
  const committed = new Map();
  const stop = await subscribe((id) => delivered.set(id, nowMs()));
  await sleep(settleMs);
  const ids = [];
  await steady(rate, seconds, async () => {
    const id = crypto.randomUUID();
    ids.push(id);
    await append(id);
    committed.set(id, nowMs());
  });
  const deadline = nowMs() + 10_000;
  // Only this run's ids count: a subscriber may also deliver older events.
  const undelivered = () => ids.some((id) => !delivered.has(id));
  while (undelivered() && nowMs() < deadline) await sleep(10);
  await stop();
  const samples = ids.filter((id) => delivered.has(id)).map((id) => Math.max(0, delivered.get(id) - committed.get(id)));
  return { samples, missing: ids.length - samples.length };
}

/** What a store does with an append; "accepted" or the error's name/code. */
async function outcome(fn) {
  try {
    await fn();
    return "accepted";
  } catch (error) {
    return error?.code ?? error?.name ?? String(error);
  }
}

/** Table + index (+ TOAST) bytes of `table`, its partitions' when it is partitioned, per row. */
async function bytesPerRow(client, table) {
  const { rows } = await client.query(
    `select coalesce((select sum(pg_total_relation_size(relid)) from pg_partition_tree($1::regclass)),
                     pg_total_relation_size($1::regclass))::float8 as bytes,
            (select count(*) from ${table})::float8 as n`,
    [table],
  );
  return rows[0].n > 0 ? rows[0].bytes / rows[0].n : Number.NaN;
}

await runMeasure(
  "emmett",
  "Emmett comparison: appends (durable and fsync off) and subscription latency (PG server)",
  async (ctx) => {
    const emmettVersion = ensureEmmett();
    const { getPostgreSQLEventStore } = await import(EMMETT);
    const emmettCore = await import("@event-driven-io/emmett");
    const { openEventStore } = await importDist(ctx, "src/adapters/open-event-store.js");
    const config = ctx.quick
      ? { rounds: 3, batches: 5, singles: 100, latencySeconds: 3 }
      : { rounds: 7, batches: 10, singles: 200, latencySeconds: 8 };
    const rate = 200;

    // Appends on two servers, one after the other: durable (PostgreSQL's defaults: every commit
    // waits for its WAL flush, as in production: the headline) and fsync off (what the CPU costs).
    // The probes, delivery latency and sizes below run on the second (fsync off) server.
    const rows = [];
    let server;
    let opened;
    let emmett;
    let raw;
    let maqetUrl;
    let emmettUrl;
    let durableOverRaw;
    let lastRates;
    for (const durable of [true, false]) {
      const mode = durable ? "durable" : "fsync off";
      // Outside ctx.root (mode 0700, ours): the server runs as another user when we are root.
      server = await startPostgres(ctx.pgPrefix ?? `${ctx.root}-pg-`, { durable });
      const closers = [];
      maqetUrl = await server.createDatabase("maqet_bench");
      emmettUrl = await server.createDatabase("emmett_bench");
      opened = await openEventStore({ databaseUrl: maqetUrl, dataDir: join(ctx.root, "unused"), source: "library" });
      emmett = getPostgreSQLEventStore(emmettUrl);
      await emmett.schema.migrate();
      raw = new pg.Client({ connectionString: maqetUrl });
      await raw.connect();
      closers.push(
        () => raw.end(),
        () => emmett.close(),
        () => opened.close(),
        () => server.stop(),
      );
      const closeAll = async () => {
        for (const close of closers) await close().catch(() => {});
      };
      if (durable) ctx.defer(closeAll);
      else for (const close of [...closers].reverse()) ctx.defer(close);
      await raw.query(RAW_TABLE);
      await raw.query(SHAPED_TABLE);

      const sides = [
        storeSide(opened.store),
        emmettSide(emmett, emmettCore),
        insertSide((sql, params) => raw.query(sql, params), "raw_events"),
        insertSide((sql, params) => raw.query(sql, params), "raw_events_shaped"),
      ];
      // Warm-up: connections opened, plans cached, first pages of every table and index touched.
      for (const side of sides) {
        side.newRound();
        for (let i = 0; i < 20; i++) await side.append(1);
        for (let i = 0; i < 3; i++) await side.append(BATCH);
      }
      const [mb, eb, rb, sb] = await appendRounds(sides, BATCH, config.batches, config.rounds);
      const [ms, es, rs, ss] = await appendRounds(sides, 1, config.singles, config.rounds);
      const shaped = "same, maqet_events' shape";
      const m = (name) => `${mode}: ${name}`;
      rows.push(
        row(m("100-event appends"), "events/s", summarize(mb.rate), `Emmett ${emmettVersion}`, summarize(eb.rate)),
        row(m("100-event appends"), "events/s", summarize(mb.rate), "raw unnest INSERT", summarize(rb.rate)),
        row(m("100-event appends"), "events/s", summarize(mb.rate), shaped, summarize(sb.rate)),
        row(
          m("100-event append latency"),
          "ms",
          summarize(mb.latency),
          `Emmett ${emmettVersion}`,
          summarize(eb.latency),
        ),
        row(m("100-event append latency"), "ms", summarize(mb.latency), "raw unnest INSERT", summarize(rb.latency)),
        row(m("single appends"), "events/s", summarize(ms.rate), `Emmett ${emmettVersion}`, summarize(es.rate)),
        row(m("single appends"), "events/s", summarize(ms.rate), "raw 1-row INSERT", summarize(rs.rate)),
        row(m("single appends"), "events/s", summarize(ms.rate), shaped, summarize(ss.rate)),
        row(m("single append latency"), "ms", summarize(ms.latency), `Emmett ${emmettVersion}`, summarize(es.latency)),
        row(m("single append latency"), "ms", summarize(ms.latency), "raw 1-row INSERT", summarize(rs.latency)),
      );
      if (durable) {
        durableOverRaw = summarize(eb.rate).median / summarize(rb.rate).median;
        await closeAll();
      } else {
        lastRates = { eb, rb };
      }
    }
    const { eb, rb } = lastRates;
    const emmettOverRaw = summarize(eb.rate).median / summarize(rb.rate).median;
    const notes = [
      `appends run on a durable server (PostgreSQL's defaults), then on one with fsync off; Emmett's own ` +
        `100-event rate is ${durableOverRaw.toFixed(2)}x the raw unnest INSERT durable`,
      `${config.rounds} rounds per side of ${config.batches} x ${BATCH}-event appends, then of ${config.singles} ` +
        "single appends, each round on a fresh stream (no stream, then the exact version); the four sides take " +
        "turns; latency p95 is over appends, rate p95 over rounds (about the best round)",
      `Emmett's own 100-event rate is ${emmettOverRaw.toFixed(2)}x the raw unnest INSERT; ` +
        `"maqet_events' shape": the same INSERT into \`create table … (like maqet_events including all)\` ` +
        "(its columns, defaults, generated column and indexes; no trigger, no stream row, no function)",
    ];

    // Expected-version probes: each store, a stream that already holds events.
    const probeStream = () => `vm-${crypto.randomUUID()}`;
    const mStream = probeStream();
    await opened.store.append(mStream, [newEvent()], { expectedVersion: "no_stream" });
    const eStream = probeStream();
    const emmettEvent = { type: EVENT_TYPE, data: DATA, metadata: METADATA };
    await emmett.appendToStream(eStream, [emmettEvent], { expectedStreamVersion: emmettCore.STREAM_DOES_NOT_EXIST });
    const mNoStream = await outcome(() => opened.store.append(mStream, [newEvent()], { expectedVersion: "no_stream" }));
    const eNoStream = await outcome(() =>
      emmett.appendToStream(eStream, [emmettEvent], { expectedStreamVersion: emmettCore.STREAM_DOES_NOT_EXIST }),
    );
    const racing = async (fn) => {
      const results = await Promise.all(Array.from({ length: 5 }, () => outcome(fn)));
      return `${results.filter((r) => r === "accepted").length}/5 accepted`;
    };
    const mAny = await racing(() => opened.store.append(mStream, [newEvent()], { expectedVersion: "any" }));
    const eAny = await racing(() =>
      emmett.appendToStream(eStream, [emmettEvent], { expectedStreamVersion: emmettCore.NO_CONCURRENCY_CHECK }),
    );
    notes.push(
      `no_stream on a stream that exists: maqet ${mNoStream}, Emmett (STREAM_DOES_NOT_EXIST) ${eNoStream}; ` +
        `5 concurrent appends to one stream without a version check: maqet ("any") ${mAny}, ` +
        `Emmett (NO_CONCURRENCY_CHECK) ${eAny}`,
    );

    // Subscription latency, 200 events/s, each event to a stream of its own.
    const reader = await openEventStore({
      databaseUrl: maqetUrl,
      dataDir: join(ctx.root, "unused"),
      source: "library",
    });
    ctx.defer(() => reader.close());
    const runs = [];
    let emmettCatchUpMs;
    // One run per side: a second Emmett consumer in the same process (new processor id, startFrom
    // "END") re-delivered the earlier runs' events first, which would measure its catch-up.
    for (const name of ["maqet", "emmett"]) {
      const result =
        name === "maqet"
          ? await latencyRun({
              rate,
              seconds: config.latencySeconds,
              settleMs: 200,
              subscribe: async (onDelivered) => {
                let caughtUp;
                const ready = new Promise((resolve) => {
                  caughtUp = resolve;
                });
                const sub = reader.store.subscribe({ from: "end", filter: { category: "lat" } }).subscribe((m) => {
                  if (m.kind === "event") onDelivered(m.event.id);
                  else caughtUp();
                });
                await ready;
                return async () => sub.unsubscribe();
              },
              append: (id) =>
                opened.store.append(`lat-${crypto.randomUUID()}`, [{ ...newEvent(), id }], {
                  expectedVersion: "no_stream",
                }),
            })
          : await latencyRun({
              rate,
              seconds: config.latencySeconds,
              // Caught up, the consumer backs its polling off from 100 ms to 1 s while idle; let it
              // settle into that idle state, as in a running service.
              settleMs: 2000,
              subscribe: async (onDelivered) => {
                // A new processor with startFrom "END" still delivers the stored history first
                // (Emmett 0.42.0), so wait until a marker appended now comes through: live from there.
                const marker = crypto.randomUUID();
                let markerSeen;
                const caughtUp = new Promise((resolve) => {
                  markerSeen = resolve;
                });
                const consumer = emmett.consumer();
                consumer.reactor({
                  processorId: `bench-latency-${crypto.randomUUID()}`,
                  startFrom: "END",
                  eachMessage: async (message) => {
                    if (message.metadata.messageId === marker) markerSeen();
                    else if (message.metadata.streamName.startsWith("lat-")) onDelivered(message.metadata.messageId);
                  },
                });
                let failed;
                consumer.start().catch((error) => {
                  failed = error;
                });
                const t0 = nowMs();
                await emmett.appendToStream(`marker-${marker}`, [{ ...emmettEvent, metadata: { messageId: marker } }]);
                const timeout = sleep(60_000).then(() => "timeout");
                if ((await Promise.race([caughtUp, timeout])) === "timeout") {
                  await consumer.stop();
                  throw new Error("Emmett's consumer did not deliver a marker event within 60 s");
                }
                emmettCatchUpMs = nowMs() - t0;
                // stop() releases the processor's lock; close() would also end the pool, which the
                // consumer shares with `emmett` (dumbo keeps one pool per connection string).
                return async () => {
                  await consumer.stop();
                  if (failed) throw failed;
                };
              },
              append: (id) =>
                emmett.appendToStream(
                  `lat-${crypto.randomUUID()}`,
                  [{ ...emmettEvent, metadata: { ...METADATA, messageId: id } }],
                  {
                    expectedStreamVersion: emmettCore.STREAM_DOES_NOT_EXIST,
                  },
                ),
            });
      runs.push({ name, ...result });
    }
    const samplesOf = (name) => runs.filter((r) => r.name === name).flatMap((r) => r.samples);
    const missingOf = (name) => runs.filter((r) => r.name === name).reduce((n, r) => n + r.missing, 0);
    const pct = (samples, q) => ({ median: quantile(samples, q), n: samples.length });
    const [mLat, eLat] = [samplesOf("maqet"), samplesOf("emmett")];
    rows.push(
      row(
        `delivery latency p50 at ${rate} events/s`,
        "ms",
        pct(mLat, 0.5),
        "Emmett consumer (default polling)",
        pct(eLat, 0.5),
      ),
      row(
        `delivery latency p99 at ${rate} events/s`,
        "ms",
        pct(mLat, 0.99),
        "Emmett consumer (default polling)",
        pct(eLat, 0.99),
      ),
    );
    notes.push(
      `latency: one run of ${config.latencySeconds} s per side, appends not waiting for each other; ` +
        `${mLat.length} / ${eLat.length} events delivered, ${missingOf("maqet")} / ${missingOf("emmett")} missing ` +
        "after 10 s (maqet / Emmett)",
      `Emmett's new consumer (startFrom "END") first delivered the stored history: ${(emmettCatchUpMs / 1000).toFixed(1)} s ` +
        "until a marker appended at its start came through; latency measured after that",
    );

    const bytes = {
      maqet: await bytesPerRow(raw, "maqet_events"),
      emmett: undefined,
      raw: await bytesPerRow(raw, "raw_events"),
    };
    const emmettClient = new pg.Client({ connectionString: emmettUrl });
    await emmettClient.connect();
    bytes.emmett = await bytesPerRow(emmettClient, "emt_messages");
    await emmettClient.end();
    notes.push(
      `stored bytes per event (table + indexes): maqet ${bytes.maqet.toFixed(0)}, Emmett ${bytes.emmett.toFixed(0)}, ` +
        `raw ${bytes.raw.toFixed(0)}`,
      `server ${server.version}; probes, latency and sizes on the fsync-off server (fsync, synchronous_commit, ` +
        "full_page_writes off); one database for maqet and the raw table, one for Emmett",
    );
    return {
      rows,
      notes,
      info: { emmettVersion, serverVersion: server.version, bytesPerEvent: bytes, emmettOverRawBatch: emmettOverRaw },
    };
  },
);
