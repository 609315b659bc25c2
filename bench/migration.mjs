// Measure: live migration over loopback (issue 14). The baseline is raw QEMU: two processes on
// this host with the same argv (the destination adds `-incoming defer -S`), migrated by bare QMP
// with maqet's sequence (capabilities events + pause-before-switchover on both, migrate-incoming
// tcp:127.0.0.1:0, migrate, migrate-continue at once at pre-switchover, cont on the destination
// after completed, quit the source). Guests: the test guest (test/fixtures/guest), q35, TCG:
// idle (action counter) at 128/256/512 MiB, and `dirty` (64 MiB rewritten continuously) at 256.
//
// Per case one guest boots, then each run migrates it to a fresh QEMU (which becomes the source of
// the next run: a chain, so only one boot per case). Every run checks that the guest's counter
// went on without a reboot. Reported: QEMU's `downtime`, `total-time`, `ram.transferred`,
// `ram.dirty-sync-count` (the passes; equal to the MIGRATION_PASS events), and the wall time the
// guest did not run (source STOP event to the destination's RESUME, our QMP round trips included).
//
// The maqet arm (`maqet migrate VM --to HOST --json`, the VM's own host: a fresh QEMU each run,
// on the embedded store) is interleaved run by run with the raw one.
//
//   node bench/migration.mjs [--quick]       # or: node bench/run.mjs --only migration
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname, loadavg } from "node:os";
import { join } from "node:path";
import { cliEntry, runMeasure } from "./harness.mjs";
import { bootsOf, countsOf, ensureGuestBuilt, killQemu, startSide, until } from "./migration-qemu.mjs";
import { summarize } from "./stats.mjs";

const MiB = 1024 * 1024;
/** The migration parameters both arms use (maqet: `--downtime-ms`, `--bandwidth` MiB/s). */
export const DOWNTIME_MS = 300; // QEMU's default downtime-limit
export const BANDWIDTH_MIB_S = 1024; // well above what loopback + TCG reach here (~60 MB/s)

// BENCH_MIGRATION_CASES=idle-256,dirty-256 runs only those (to look into one).
const CASES = [
  { key: "idle-128", label: "idle 128 MiB", memoryMiB: 128, action: "counter" },
  { key: "idle-256", label: "idle 256 MiB", memoryMiB: 256, action: "counter" },
  { key: "idle-512", label: "idle 512 MiB", memoryMiB: 512, action: "counter" },
  { key: "dirty-256", label: "dirty 256 MiB (64 MiB rewritten)", memoryMiB: 256, action: "dirty", dirtyMiB: 64 },
].filter((c) => !process.env.BENCH_MIGRATION_CASES || process.env.BENCH_MIGRATION_CASES.split(",").includes(c.key));

/**
 * One migration's figures: `{ downtimeMs, totalMs, transferredBytes, passes, pausedWallMs? }`.
 * The raw arm fills all of them; the maqet arm takes the first four from `vm.migrated`.
 */
const FIGURES = [
  { key: "downtimeMs", what: "downtime (QEMU)", unit: "ms", scale: 1 },
  { key: "totalMs", what: "total time (QEMU)", unit: "ms", scale: 1 },
  { key: "transferredBytes", what: "transferred", unit: "MiB", scale: 1 / MiB },
  { key: "passes", what: "passes (dirty syncs)", unit: "count", scale: 1 },
  { key: "pausedWallMs", what: "guest stopped, wall (STOP→RESUME)", unit: "ms", scale: 1 },
];

// ------------------------------------------------------------------ the raw-QEMU arm

const CAPABILITIES = {
  capabilities: ["events", "pause-before-switchover"].map((capability) => ({ capability, state: true })),
};

/** Boots the case's guest (the first source of its chain) and waits for its counter. */
async function bootRaw(ctx, guest, kase, spawned) {
  const dir = join(ctx.root, kase.key, "0");
  mkdirSync(dir, { recursive: true });
  const side = await startSide(guest, dir, kase);
  spawned.push(side);
  await until(async () => (await countsOf(side.serialPath)).length >= 3, 300_000, `${kase.label} to boot`, 200);
  await side.qmp.execute("migrate-set-capabilities", CAPABILITIES);
  return side;
}

/**
 * Migrates `src` to a new QEMU in `<case>/<run>` and returns `{ sample, next }` (the destination,
 * running, the source of the next run). The source has quit.
 */
async function migrateRaw(ctx, guest, kase, run, src, spawned) {
  const dir = join(ctx.root, kase.key, String(run));
  mkdirSync(dir, { recursive: true });
  const dst = await startSide(guest, dir, kase, { incoming: true });
  spawned.push(dst);
  await dst.qmp.execute("migrate-set-capabilities", CAPABILITIES);
  await dst.qmp.execute("migrate-incoming", { uri: "tcp:127.0.0.1:0" });
  const address = (await dst.qmp.execute("query-migrate"))["socket-address"]?.find((a) => a.type === "inet");
  if (!address) throw new Error("the destination's query-migrate names no listening address");
  await src.qmp.execute("migrate-set-parameters", {
    "downtime-limit": DOWNTIME_MS,
    "max-bandwidth": BANDWIDTH_MIB_S * MiB,
  });
  const eventsBefore = src.qmp.events.length;
  const mine = (e) => src.qmp.events.indexOf(e) >= eventsBefore;
  await src.qmp.execute("migrate", { uri: `tcp:${address.host}:${address.port}` });
  await src.qmp.waitEvent((e) => mine(e) && e.event === "MIGRATION" && e.data.status === "pre-switchover", 300_000);
  await src.qmp.execute("migrate-continue", { state: "pre-switchover" });
  await src.qmp.waitEvent((e) => mine(e) && e.event === "MIGRATION" && e.data.status === "completed", 120_000);
  // Right after `completed` query-migrate may still say total-time 0 (MIGRATION-FACTS.md).
  const info = await until(
    async () => {
      const i = await src.qmp.execute("query-migrate");
      return i["total-time"] > 0 ? i : undefined;
    },
    5_000,
    "query-migrate's total-time",
    5,
  );
  await dst.qmp.migrationStatus("completed", 60_000);
  const lastSourceCount = (await countsOf(src.serialPath)).at(-1);
  await dst.qmp.execute("cont");
  const resumed = await dst.qmp.waitEvent((e) => e.event === "RESUME", 10_000);
  const stopped = src.qmp.events.find((e) => mine(e) && e.event === "STOP");
  await src.qmp.execute("quit").catch(() => undefined);
  await src.qemu.exit;
  spawned.splice(spawned.indexOf(src), 1);
  // The guest went on: the destination's count continues the source's, without a boot.
  const counts = await until(
    async () => {
      const c = await countsOf(dst.serialPath);
      return c.length >= 2 ? c : undefined;
    },
    30_000,
    "the destination's counter",
    50,
  );
  if (counts[0] !== lastSourceCount + 1 || (await bootsOf(dst.serialPath)) !== 0) {
    throw new Error(
      `${kase.label} run ${run}: the count did not go on (source last ${lastSourceCount}, destination ${counts.slice(0, 3).join(",")}, boots ${await bootsOf(dst.serialPath)})`,
    );
  }
  return {
    sample: {
      downtimeMs: info.downtime,
      totalMs: info["total-time"],
      transferredBytes: info.ram.transferred,
      passes: info.ram["dirty-sync-count"],
      pausedWallMs: stopped ? resumed.at - stopped.at : undefined,
    },
    next: dst,
  };
}

// ------------------------------------------------------------------ the maqet arm

/**
 * The maqet arm for one case, interleaved with the raw one run by run. Returns undefined while
 * there is none (the table then shows "-" in the maqet column and a note says why), or
 * `{ migrate(run) → Promise<sample>, close() }` where sample has the FIGURES keys
 * (`pausedWallMs` may be left out).
 *
 * TO FILL IN once `maqet migrate` exists (issue 14): create a maqet data dir under
 * `ctx.root/<case>-maqet` (and the hosts `--to` needs: the VM's own host is allowed, so one host
 * is enough), `maqet add` the same guest (test/support/guest.ts guestVmYaml: action counter or
 * dirty, same memory, `maqet.dirty` the same) and `maqet start` it, wait for its counter on the
 * serial log; then each `migrate(run)` is `runMaqetMigrate(ctx, env, vm, host)` below, which runs
 * `maqet migrate VM --to HOST --downtime-ms 300 --bandwidth 1024 --json` and reads the figures.
 */
async function maqetArm(ctx, kase, guest) {
  if (!maqetHasMigrate(ctx)) return undefined;
  const dir = join(ctx.root, `${kase.key}-maqet`);
  mkdirSync(join(dir, "run"), { recursive: true, mode: 0o700 });
  const env = { PATH: process.env.PATH, HOME: dir, XDG_RUNTIME_DIR: join(dir, "run"), LANG: "C" };
  const maqet = (args) => {
    const r = spawnSync(process.execPath, [cliEntry(ctx.dist), ...args], {
      encoding: "utf8",
      timeout: 300_000,
      env,
      cwd: dir,
    });
    if (r.status !== 0) throw new Error(`maqet ${args.join(" ")} exited ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const append = ["console=ttyS0", "quiet", `maqet.action=${kase.action}`];
  if (kase.dirtyMiB !== undefined) append.push(`maqet.dirty=${kase.dirtyMiB}`);
  const yaml = [
    "name: mb",
    "binary: qemu-system-x86_64",
    "accel: tcg",
    "machine: q35",
    `memory: ${kase.memoryMiB}M`,
    `kernel: ${guest.kernel}`,
    `initrd: ${guest.initrd}`,
    `append: "${append.join(" ")}"`,
    "arguments: [nodefaults]",
    "",
  ].join("\n");
  writeFileSync(join(dir, "mb.yaml"), yaml);
  maqet(["add", "mb.yaml"]);
  maqet(["start", "mb", "--wait-for", "serial:MAQET-COUNT", "--timeout", "120"]);
  const host = hostname().split(".")[0] || "localhost";
  const serialOf = () => JSON.parse(maqet(["status", "mb", "--json"])).serialLog;
  return {
    async migrate(_run) {
      const before = await countsOf(serialOf());
      const sample = runMaqetMigrate(ctx, env, "mb", host);
      // The guest goes on where it was, on the destination's serial log, without a reboot.
      const after = serialOf();
      await until(async () => (await countsOf(after)).length > 0, 30_000, "the destination's counter");
      const counts = await countsOf(after);
      const last = before.at(-1) ?? 0;
      if (counts[0] <= last || counts[0] > last + 100 || (await bootsOf(after)) !== 0) {
        throw new Error(
          `maqet arm: the count did not go on (source last ${before.at(-1)}, destination ${counts.slice(0, 3)})`,
        );
      }
      return sample;
    },
    async close() {
      spawnSync(process.execPath, [cliEntry(ctx.dist), "stop", "mb", "--force"], { env, cwd: dir, timeout: 60_000 });
    },
  };
}

/**
 * Whether the build under test has live migration: `maqet migrate --help` mentions `--to`. (In
 * builds before issue 14 `maqet migrate` exists but applies event-store schema migrations.)
 */
let hasMigrate;
function maqetHasMigrate(ctx) {
  if (hasMigrate !== undefined) return hasMigrate;
  const r = spawnSync(process.execPath, [cliEntry(ctx.dist), "migrate", "--help"], {
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: process.env.PATH, HOME: join(ctx.root, "home"), LANG: "C" },
  });
  hasMigrate = r.status === 0 && /--to\b/.test(r.stdout);
  return hasMigrate;
}

/**
 * Runs `maqet migrate VM --to HOST --json` and returns a sample from its JSON: the fields of
 * `vm.migrated` (issue 14: downtimeMs, totalMs, transferredBytes, passes), looked for at the top
 * level or under `migrated` / `data`; `wallMs` is the CLI call's own time.
 */
export function runMaqetMigrate(ctx, env, vm, host) {
  const t0 = performance.now();
  const args = [cliEntry(ctx.dist), "migrate", vm, "--to", host];
  args.push("--downtime-ms", String(DOWNTIME_MS), "--bandwidth", String(BANDWIDTH_MIB_S), "--json");
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 300_000, env });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`maqet migrate ${vm} --to ${host} exited ${r.status}: ${r.stderr.trim()}`);
  const out = JSON.parse(r.stdout);
  const facts = [out, out.migrated, out.data, out.migrated?.data].find((o) => o?.downtimeMs !== undefined);
  if (facts === undefined) throw new Error(`maqet migrate --json printed no downtimeMs: ${r.stdout.slice(0, 300)}`);
  const { downtimeMs, totalMs, transferredBytes, passes } = facts;
  return { downtimeMs, totalMs, transferredBytes, passes, wallMs };
}

// ------------------------------------------------------------------ the measure

const stat = (samples, figure) => {
  const values = samples.map((s) => s[figure.key]).filter((v) => typeof v === "number");
  if (values.length === 0) return undefined;
  const s = summarize(values.map((v) => v * figure.scale));
  return s.n < 5 ? { ...s, p95: undefined } : s;
};

await runMeasure("migration", "Live migration over loopback (test guest, q35, TCG)", async (ctx) => {
  const runs = ctx.quick ? 2 : 5;
  const guest = await ensureGuestBuilt();
  const spawned = [];
  ctx.defer(async () => {
    for (const side of spawned.splice(0)) {
      await side.qmp.close().catch(() => undefined);
      await killQemu(side.qemu);
    }
  });
  const rows = [];
  const notes = [];
  const results = {};
  let armMissing = false;
  for (const kase of CASES) {
    const raw = [];
    const maqet = [];
    let src = await bootRaw(ctx, guest, kase, spawned);
    const arm = await maqetArm(ctx, kase, guest);
    if (arm === undefined) armMissing = true;
    else ctx.defer(() => arm.close());
    for (let run = 1; run <= runs; run++) {
      // Alternate which arm goes first, so neither always runs right after the other.
      const order = run % 2 === 1 ? ["raw", "maqet"] : ["maqet", "raw"];
      for (const which of order) {
        if (which === "raw") {
          const { sample, next } = await migrateRaw(ctx, guest, kase, run, src, spawned).catch(async (error) => {
            const tail = (await readFile(join(ctx.root, kase.key, String(run), "serial.log"), "utf8").catch(() => ""))
              .split("\n")
              .slice(-5)
              .join(" | ");
            throw new Error(`${kase.label}, run ${run}: ${error.message}; destination serial log ends: ${tail}`, {
              cause: error,
            });
          });
          raw.push(sample);
          src = next;
        } else if (arm !== undefined) {
          maqet.push(await arm.migrate(run));
        }
      }
    }
    await arm?.close();
    results[kase.key] = { raw, maqet };
    for (const figure of FIGURES) {
      const baseline = stat(raw, figure);
      const value = stat(maqet, figure);
      rows.push({
        what: `${kase.label}: ${figure.what}`,
        unit: figure.unit,
        value,
        baselineLabel: "raw QMP",
        baseline,
        ratio: value && baseline ? value.median / baseline.median : undefined,
      });
    }
  }
  const idle256 = results["idle-256"]?.raw ?? [];
  const down = stat(idle256, FIGURES[0])?.median;
  const total = stat(idle256, FIGURES[1])?.median;
  const goal =
    down === undefined
      ? "goal (issue 14), idle 256 MiB: not measured in this run"
      : `goal (issue 14), idle 256 MiB: downtime <= 300 ms (${down.toFixed(0)} ms raw: ${down <= 300 ? "met" : "NOT met"}), total <= 5 s (${total.toFixed(0)} ms raw: ${total <= 5000 ? "met" : "NOT met"})`;
  notes.push(
    `runs per case: ${runs} (medians; p95 from 5 runs up); parameters downtime-limit ${DOWNTIME_MS} ms, max-bandwidth ${BANDWIDTH_MIB_S} MiB/s; load average after: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
    goal,
    "raw arm: pause-before-switchover on, migrate-continue sent as soon as pre-switchover is seen (maqet's ownership transaction goes there and adds to the downtime); zero pages are not counted in transferred",
  );
  if (armMissing) {
    notes.push(
      maqetHasMigrate(ctx)
        ? "maqet arm: the build has `maqet migrate`, but bench/migration.mjs maqetArm() is not wired yet"
        : "maqet arm: the build under test has no `maqet migrate` yet (bench/migration.mjs maqetArm() to fill in)",
    );
  }
  return { rows, notes, info: { results } };
});
