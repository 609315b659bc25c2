// Measure 2: `maqet.start()` of a firmware-only VM (library, warm embedded store, no disk) against
// QEMU started by hand: spawn, QMP greeting, `qmp_capabilities`, `cont`. Then `stop({force})`
// against SIGKILL + wait, and `maqet.qmp(name, "query-status")` (the facade: VM lookup included)
// against a raw socket on the hand-started VM.
//
// The raw QEMU gets the very argv maqet used (read from /proc/<pid>/cmdline during the warm-up,
// with its runtime paths and uuid swapped), so both sides ask QEMU for the same work.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { importDist, runMeasure } from "./harness.mjs";
import { cmdlineOf, killAndWait, QEMU, rawQmpConnect, spawnQemu } from "./raw-qemu.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

export const BENCH_VM = {
  memory: "64M",
  cpu: 1,
  accel: "tcg",
  machine: "q35",
  display: "none",
  args: ["-nodefaults"],
};

await runMeasure("vm", "2. VM start / stop (firmware-only q35, TCG, 64 MiB, no disk)", async (ctx) => {
  const { createMaqet } = await importDist(ctx, "src/mod.js");
  const { openEventStore } = await importDist(ctx, "src/adapters/open-event-store.js");
  // Issue 15's bound for a warm maqet.qmp(): the raw round trip plus ONE append. The append side
  // of that baseline: the same event appended to an embedded store of its own (the library's
  // store is held by the maqet instance), right after each raw round trip.
  const appendStore = await openEventStore({ dataDir: join(ctx.root, "append-only"), source: "library" });
  ctx.defer(() => appendStore.close());
  const appendStream = `vm-${crypto.randomUUID()}`;
  let appendVersion = "no_stream";
  const appendOne = async (durationMs) => {
    const result = await appendStore.store.append(
      appendStream,
      [
        {
          type: "qmp.command-executed",
          schemaVersion: 2,
          data: {
            command: "query-status",
            argumentNames: [],
            outcome: "ok",
            durationMs,
            tier: "query",
            rule: "tier:query",
          },
        },
      ],
      { expectedVersion: appendVersion },
    );
    appendVersion = result.nextExpectedVersion;
  };
  const iterations = ctx.quick ? 5 : 10;
  const qmpCalls = ctx.quick ? 50 : 100;
  const runtimeDir = join(ctx.root, "rt");
  const maqet = createMaqet({
    dataDir: join(ctx.root, "data"),
    runtimeDir,
    env: { PATH: process.env.PATH },
  });
  ctx.defer(() => maqet.close());
  // Registered before the start: a failed measure must not leave the VM running.
  ctx.defer(async () => {
    const s = await maqet.status("bench").catch(() => undefined);
    if (s?.pid) await maqet.stop("bench", { force: true, timeoutMs: 5000 });
  });
  await maqet.add({ name: "bench", ...BENCH_VM }, { name: "bench" });

  // Warm-up: opens and migrates the store, locates the binary, and shows us maqet's argv.
  const warm = await maqet.start("bench");
  const argv = (await cmdlineOf(warm.pid)).slice(1);
  await maqet.qmp("bench", "query-status");
  await maqet.stop("bench", { force: true });
  const rawDir = join(ctx.root, "raw");
  mkdirSync(rawDir, { recursive: true, mode: 0o700 });
  const rawUuid = crypto.randomUUID();
  const rawArgv = argv.map((word) => word.replaceAll(warm.runtimeDir, rawDir).replaceAll(warm.id, rawUuid));
  const rawSocket = join(rawDir, "qmp.sock");

  const t = { start: [], stop: [], qmp: [], qmpRounds: [] };
  const b = { start: [], stop: [], qmp: [], qmpRounds: [], qmpAppend: [] };
  let rawQemu;
  ctx.defer(async () => rawQemu && (await killAndWait(rawQemu)));

  const maqetRound = async () => {
    let t0 = nowMs();
    const started = await maqet.start("bench");
    t.start.push(nowMs() - t0);
    if (started.state !== "running") throw new Error(`maqet.start: state ${started.state}`);
    // Every facade call folds the VM's history first, so note how long it is.
    const round = { events: (await maqet.history("bench")).length, samples: [] };
    for (let i = 0; i < qmpCalls; i++) {
      t0 = nowMs();
      await maqet.qmp("bench", "query-status");
      round.samples.push((nowMs() - t0) * 1000);
    }
    t.qmp.push(...round.samples);
    t.qmpRounds.push(round);
    t0 = nowMs();
    await maqet.stop("bench", { force: true });
    t.stop.push(nowMs() - t0);
  };
  const rawRound = async () => {
    let t0 = nowMs();
    rawQemu = spawnQemu(rawArgv);
    const qmp = await rawQmpConnect(rawSocket);
    await qmp.execute("cont");
    b.start.push(nowMs() - t0);
    for (let i = 0; i < qmpCalls; i++) {
      t0 = nowMs();
      await qmp.execute("query-status");
      const rtt = nowMs() - t0;
      b.qmp.push(rtt * 1000);
      await appendOne(rtt);
      b.qmpAppend.push((nowMs() - t0) * 1000);
    }
    b.qmpRounds.push({ samples: b.qmp.slice(-qmpCalls) });
    await qmp.close();
    t0 = nowMs();
    await killAndWait(rawQemu);
    b.stop.push(nowMs() - t0);
    rawQemu = undefined;
  };
  for (let i = 0; i < iterations; i++) {
    if (i % 2 === 0) {
      await maqetRound();
      await rawRound();
    } else {
      await rawRound();
      await maqetRound();
    }
  }
  const first = t.qmpRounds[0];
  const last = t.qmpRounds.at(-1);
  return {
    rows: [
      row("start (running, QMP ready)", "ms", summarize(t.start), "spawn+greeting+caps+cont", summarize(b.start)),
      row("stop --force", "ms", summarize(t.stop), "SIGKILL + wait for exit", summarize(b.stop)),
      row("maqet.qmp(query-status), all runs", "µs", summarize(t.qmp), "raw socket, same VM kind", summarize(b.qmp)),
      row(
        "maqet.qmp(query-status), all runs",
        "µs",
        summarize(t.qmp),
        "raw socket + one store append",
        summarize(b.qmpAppend),
      ),
      row(
        `maqet.qmp, first run (${first.events} events in stream)`,
        "µs",
        summarize(first.samples),
        "raw socket, first run",
        summarize(b.qmpRounds[0].samples),
      ),
      row(
        `maqet.qmp, last run (${last.events} events in stream)`,
        "µs",
        summarize(last.samples),
        "raw socket, last run",
        summarize(b.qmpRounds.at(-1).samples),
      ),
    ],
    notes: [
      `${iterations} start/stop pairs per side, alternating which goes first; ${qmpCalls} query-status calls per run`,
      `argv: ${QEMU} ${rawArgv.join(" ").replaceAll(rawDir, "<runtime>").replaceAll(rawUuid, "<uuid>")}`,
    ],
  };
});
