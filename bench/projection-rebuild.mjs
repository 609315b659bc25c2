// Measure: rebuilding the VM list projection (`maqet_vms`) from position 0, on a PostgreSQL
// server and on the embedded PGlite; goal (issue 3): 1M events in <= 10 s.
//
// Seeded with SQL (not through the store: seeding is not what is measured): N VMs x 10 events
// each (vm.defined, start, pause, resume, qmp, stop...), inserted --chunk VMs at a time (default
// 1000) and ordered round-robin inside each chunk. With the default, each 10 000-event page holds
// the ten events of 1000 VMs, interleaved. `--chunk 10000` was the worst case of the batch path:
// every batch holds one event of each of 10 000 VMs, so every event rewrites its VM's row.
//
// What the rebuild runs: the VM list's fast path (folded in memory, each row written once in the
// transaction that moves the checkpoint). Also measured once: the batch path (the same projection
// without its rebuilder: what a rebuild cost before the fast path, and what a projection without
// one pays), and the peak RSS of the process during each kind of rebuild.
//
// Baseline: a raw keyset read of the same events (every column, as readAll reads them) in the
// same order and page size on the same database; the ratio is rebuild events/s over raw-read
// events/s. Also: what an up-to-date inline catch-up costs (what every `ls`/`status` pays first).
//
//   node bench/projection-rebuild.mjs [--quick] [--vms N] [--rounds N] [--chunk N] [--pglite] [--dist DIR]
//                                     [--no-batch-path]
//   node bench/run.mjs --only projections,projections-pglite   (with the other measures' harness)
// Server: 100 000 VMs = 1M events, 2 rebuilds (--quick: 200k events, 1 rebuild). PGlite
// (--pglite, or bench/projection-rebuild-pglite.mjs): 50 000 VMs = 500k events, 1 rebuild, to stay
// within the harness's time limit per measure (PGlite reads about 5x slower); `--vms 100000` for 1M.
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { CompiledQuery } from "kysely";
import pg from "pg";
import { importDist, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

/** VMs per seeding chunk; their events go round-robin (the layout decides how often a row is rewritten). */
const CHUNK_VMS = 1000;
/** The runner's rebuild batch (its default rebuildBatchSize); the raw read pages the same. */
const BATCH = 10_000;

const CONFIG = JSON.stringify({
  accel: "tcg",
  memory: "256M",
  cpu: 2,
  args: [],
  arguments: [],
  storage: [{ name: "hdd", type: "qcow2", file: "/var/lib/maqet/disks/web.qcow2", size: "10G", interface: "virtio" }],
});
const METADATA = JSON.stringify({
  actor: { user: "bench", uid: 1000, host: "bench-host", pid: 4242 },
  correlationId: "3f1c2d4e-0000-4000-8000-000000000000",
  source: "bench",
});

/** Inserts VMs [from, from + count) with 10 events each, round-robin within the chunk. */
function seedSql(from, count) {
  const id = `'00000000-0000-4000-8000-' || lpad(i::text, 12, '0')`;
  return [
    `insert into maqet_streams (stream_id, version)
       select 'vm-' || ${id}, 9 from generate_series(${from}, ${from + count - 1}) i`,
    `insert into maqet_events (event_id, stream_id, stream_version, type, schema_version, data, metadata)
       select gen_random_uuid(), 'vm-' || ${id}, v,
              (array['vm.defined','vm.start-requested','vm.started','vm.paused','vm.resumed',
                     'qmp.command-executed','vm.stop-requested','vm.stopped','vm.start-requested','vm.started'])[v + 1],
              1,
              case v
                when 0 then jsonb_build_object('vmId', ${id}, 'name', 'bench-' || i, 'config', '${CONFIG}'::jsonb,
                                               'configPath', '/etc/maqet/bench-' || i || '.yaml')
                when 1 then '{"timeoutMs": 30000}'::jsonb
                when 8 then '{"timeoutMs": 30000}'::jsonb
                when 2 then jsonb_build_object('pid', 10000 + i, 'qmpSocket', '/run/maqet/' || i || '/qmp.sock',
                                               'runtimeDir', '/run/maqet/' || i, 'pidFile', '/run/maqet/' || i || '/qemu.pid',
                                               'argv', '["-S","-no-shutdown"]'::jsonb, 'binary', '/usr/bin/qemu-system-x86_64',
                                               'accel', 'tcg', 'qemuVersion', '7.2.22', 'durationMs', 71.5)
                when 9 then jsonb_build_object('pid', 20000 + i, 'qmpSocket', '/run/maqet/' || i || '/qmp.sock',
                                               'runtimeDir', '/run/maqet/' || i, 'pidFile', '/run/maqet/' || i || '/qemu.pid',
                                               'argv', '["-S","-no-shutdown"]'::jsonb, 'binary', '/usr/bin/qemu-system-x86_64',
                                               'accel', 'tcg', 'qemuVersion', '7.2.22', 'durationMs', 68.2)
                when 3 then '{"detail": "user", "reason": "paused"}'::jsonb
                when 5 then '{"command": "query-status", "argumentNames": [], "outcome": "ok", "durationMs": 0.4}'::jsonb
                when 6 then '{"force": false, "timeoutMs": 30000}'::jsonb
                when 7 then '{"detail": "shutdown", "method": "powerdown", "guest": true, "reason": "guest-shutdown", "exitCode": 0, "signal": null}'::jsonb
                else '{}'::jsonb
              end,
              '${METADATA}'::jsonb
         from generate_series(${from}, ${from + count - 1}) i, generate_series(0, 9) v
        order by v, i`,
  ];
}

async function seed(exec, vms, chunk) {
  for (let from = 1; from <= vms; from += chunk) {
    for (const statement of seedSql(from, Math.min(chunk, vms - from + 1))) await exec(statement);
  }
  // Statistics as autovacuum would have them on a database that grew to this size over time.
  await exec("analyze");
}

/** The store's read order, paged by keyset like readAll, with nothing but the rows. */
async function rawRead(query) {
  let xid = "0";
  let position = 0;
  let total = 0;
  for (;;) {
    const { rows } = await query(
      `select global_position, transaction_id::text as xid, event_id, stream_id, stream_version, type,
              schema_version, data, metadata, recorded_at
         from maqet_events
        where category = 'vm' and transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          and (transaction_id, global_position) > ($1::xid8, $2::bigint)
        order by transaction_id, global_position limit ${BATCH}`,
      [xid, position],
    );
    if (rows.length === 0) return total;
    total += rows.length;
    const last = rows.at(-1);
    xid = last.xid;
    position = Number(last.global_position);
  }
}

async function measureDialect(label, ctx, opened, query, config) {
  const { ProjectionRunner } = await importDist(ctx, "src/events/projections/projection-runner.js");
  const { vmListProjection } = await importDist(ctx, "src/actors/vm-list-projection.js");
  const t0 = nowMs();
  await seed((statement) => query(statement), config.vms, config.chunk);
  const seedMs = nowMs() - t0;
  const events = config.vms * 10;
  const runner = new ProjectionRunner({
    db: opened.db,
    store: opened.store,
    projections: [vmListProjection],
    rebuildBatchSize: BATCH,
  });
  const rebuild = [];
  const raw = [];
  const fastRss = [];
  for (let r = 0; r < config.rounds; r++) {
    const a = nowMs();
    const n = await rawRead(query);
    raw.push(nowMs() - a);
    if (n !== events) throw new Error(`raw read returned ${n} events, expected ${events}`);
    const b = nowMs();
    const { result, peak } = await withPeakRss(() => runner.rebuild("vms"));
    rebuild.push(nowMs() - b);
    fastRss.push(peak);
    if (result.events !== events) throw new Error(`rebuild applied ${result.events} events, expected ${events}`);
  }
  const batchPath = [];
  const batchRss = [];
  if (config.batchPath) {
    const slow = new ProjectionRunner({
      db: opened.db,
      store: opened.store,
      projections: [{ ...vmListProjection, rebuilder: undefined }],
      rebuildBatchSize: BATCH,
    });
    const b = nowMs();
    const { result, peak } = await withPeakRss(() => slow.rebuild("vms"));
    batchPath.push(nowMs() - b);
    batchRss.push(peak);
    if (result.events !== events) throw new Error(`batch path applied ${result.events} events, expected ${events}`);
    await runner.rebuild("vms"); // rows as the fast path writes them, for the checks below
  }
  const rows = (await query("select count(*)::int as n from maqet_vms")).rows[0].n;
  if (rows !== config.vms) throw new Error(`maqet_vms has ${rows} rows, expected ${config.vms}`);
  const noop = [];
  for (let i = 0; i < 50; i++) {
    const a = nowMs();
    await runner.catchUp("vms");
    noop.push(nowMs() - a);
  }
  const rate = (samples) => summarize(samples.map((ms) => events / (ms / 1000)));
  const seconds = (samples) => summarize(samples.map((ms) => ms / 1000));
  const batchRows = batchPath.length
    ? [
        row(
          `${label}: rebuild through apply (no rebuilder), 1 run`,
          "s",
          seconds(batchPath),
          "fast path",
          seconds(rebuild),
        ),
        row(`${label}: peak RSS, fast path`, "MiB", summarize(fastRss), "batch path", summarize(batchRss)),
      ]
    : [row(`${label}: peak RSS, fast path`, "MiB", summarize(fastRss))];
  return {
    rows: [
      row(
        `${label}: rebuild ${events.toLocaleString("en-US")} events`,
        "s",
        seconds(rebuild),
        "raw keyset read",
        seconds(raw),
      ),
      row(`${label}: rebuild`, "events/s", rate(rebuild), "raw keyset read", rate(raw)),
      ...batchRows,
      row(`${label}: inline catch-up, nothing new`, "ms", summarize(noop)),
    ],
    seedSeconds: seedMs / 1000,
  };
}

/** Runs `fn`, sampling the process's RSS every 50 ms: `{ result, peak }` (MiB). */
async function withPeakRss(fn) {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  try {
    const result = await fn();
    return { result, peak: Math.max(peak, process.memoryUsage.rss()) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

const pglite = process.argv.includes("--pglite");

function option(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

await runMeasure(
  pglite ? "projections-pglite" : "projections",
  `Projection rebuild: VM list from position 0 (${pglite ? "PGlite" : "PostgreSQL server"})`,
  async (ctx) => {
    // Run alone, measure another build than ./dist (one that others' rebuilds of dist/ leave alone).
    const dist = process.env.BENCH_CTX ? undefined : (option("dist") ?? process.env.BENCH_DIST);
    if (dist !== undefined) ctx.dist = resolve(dist);
    const { openEventStore } = await importDist(ctx, "src/adapters/open-event-store.js");
    const flag = (name) => {
      const i = process.argv.indexOf(`--${name}`);
      return i === -1 ? undefined : Number(process.argv[i + 1]);
    };
    const quick = ctx.quick;
    const config = {
      vms: flag("vms") ?? (quick ? 20_000 : pglite ? 50_000 : 100_000),
      chunk: flag("chunk") ?? CHUNK_VMS,
      rounds: flag("rounds") ?? (quick || pglite ? 1 : 2),
      batchPath: !process.argv.includes("--no-batch-path"),
    };
    const rows = [];
    const notes = [
      `${config.vms.toLocaleString("en-US")} VMs x 10 events, seeded by SQL ${config.chunk} VMs at a time round-robin ` +
        `(a ${BATCH}-event page holds ${Math.max(1, BATCH / config.chunk)} event(s) of each of ` +
        `${Math.min(BATCH, config.chunk)} VMs); ${config.rounds} fast rebuild(s), page/batch ${BATCH}` +
        `${config.rounds === 1 ? "; one sample: its p95 is itself" : ""}`,
    ];
    const loadAtStart = loadavg()[0];

    if (!pglite) {
      const server = await startPostgres(ctx.pgPrefix ?? `${ctx.root}-pg-`);
      ctx.defer(() => server.stop());
      const url = await server.createDatabase("maqet_bench");
      const openedPg = await openEventStore({ databaseUrl: url, dataDir: join(ctx.root, "unused"), source: "bench" });
      ctx.defer(() => openedPg.close());
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      ctx.defer(() => client.end());
      const query = (sql, params) => client.query(sql, params);
      const result = await measureDialect("PG server", ctx, openedPg, query, config);
      rows.push(...result.rows);
      notes.push(
        `server ${server.version} (fsync=off, synchronous_commit=off); seeding took ${result.seedSeconds.toFixed(1)} s`,
      );
      await client.end().catch(() => {});
      await openedPg.close();
    }

    if (pglite) {
      const opened = await openEventStore({ dataDir: join(ctx.root, "pglite"), source: "bench" });
      ctx.defer(() => opened.close());
      // The store owns the one PGlite session: raw queries go through the same Kysely instance.
      const query = (text, params = []) => opened.db.executeQuery(CompiledQuery.raw(text, params));
      const result = await measureDialect("PGlite", ctx, opened, query, config);
      rows.push(...result.rows);
      notes.push(`PGlite (file-backed data directory); seeding took ${result.seedSeconds.toFixed(1)} s`);
    }
    notes.push(`load average (1 min): ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`);
    return { rows, notes };
  },
);
