#!/usr/bin/env node
// Probes what this host's QEMU does in a live migration between two processes on one host, by raw
// QMP (no maqet code), and prints each finding as JSON. The facts behind MIGRATION-FACTS.md.
//
//   node bench/migration-facts.mjs [experiment ...]     # default: all of them, in order
//
// Experiments: flow (tcp:127.0.0.1:0, pause-before-switchover, counter continuity), pause (same,
// paused 1 s at pre-switchover: does the pause count as downtime?), unix, disk (one qcow2 path on
// both sides), cancel (migrate_cancel at pre-switchover), rollback (take the VM back after
// completed, before the destination runs), kill-source, kill-dest (SIGKILL mid
// transfer), kill-dest-pre (SIGKILL of the destination at pre-switchover), reconnect (QMP
// client gone at pre-switchover, a new one finishes), converge (the dirty guest at 8 MiB/s: does it ever finish?).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  bootsOf,
  countsOf,
  ensureGuestBuilt,
  killQemu,
  qmpConnect,
  spawnQemu,
  startSide,
  until,
} from "./migration-qemu.mjs";

const guest = await ensureGuestBuilt();
const root = mkdtempSync("/tmp/mqmf-");
const started = [];
const report = (name, facts) => console.log(JSON.stringify({ experiment: name, ...facts }, null, 1));
const MiB = 1024 * 1024;

async function pair(name, vm, { destExtra } = {}) {
  const base = join(root, name);
  mkdirSync(join(base, "src"), { recursive: true });
  mkdirSync(join(base, "dst"), { recursive: true });
  const src = await startSide(guest, join(base, "src"), vm);
  started.push(src);
  // Booted: the counter runs (kernel + /init under TCG, a few seconds).
  await until(async () => (await countsOf(src.serialPath)).length >= 3, 300_000, "the source's counter");
  const dst = await startSide(guest, join(base, "dst"), { ...vm, ...(destExtra ?? {}) }, { incoming: true });
  started.push(dst);
  const caps = { capabilities: ["events", "pause-before-switchover"].map((c) => ({ capability: c, state: true })) };
  await src.qmp.execute("migrate-set-capabilities", caps);
  await dst.qmp.execute("migrate-set-capabilities", caps);
  return { base, src, dst };
}

/** migrate-incoming on tcp:127.0.0.1:0; returns the uri the source should use and what query-migrate said. */
async function listenTcp(dst) {
  await dst.qmp.execute("migrate-incoming", { uri: "tcp:127.0.0.1:0" });
  const info = await dst.qmp.execute("query-migrate");
  const addr = info["socket-address"]?.find((a) => a.type === "inet");
  return { info, uri: addr ? `tcp:${addr.host}:${addr.port}` : undefined };
}

async function finish(...sides) {
  for (const side of sides) {
    await side.qmp.close().catch(() => undefined);
    await killQemu(side.qemu);
  }
}

const status = async (side) => (await side.qmp.execute("query-status")).status;
const sinceFirst = (events) => {
  const t0 = events[0]?.at ?? 0;
  return events.map((e) => `${(e.at - t0).toFixed(0)}ms ${e.event}${e.data ? ` ${JSON.stringify(e.data)}` : ""}`);
};

/** The full sequence; `pauseMs` is how long the orchestrator holds pre-switchover. */
async function flow(name, pauseMs) {
  const { src, dst } = await pair(name, { memoryMiB: 256 });
  const destBefore = await status(dst);
  const { info: listening, uri } = await listenTcp(dst);
  await src.qmp.execute("migrate-set-parameters", { "downtime-limit": 300, "max-bandwidth": 1024 * MiB });
  const params = await src.qmp.execute("query-migrate-parameters");
  const t0 = performance.now();
  await src.qmp.execute("migrate", { uri });
  const pre = await src.qmp.migrationStatus("pre-switchover", 120_000);
  const atPre = {
    sourceRunstate: await status(src),
    sourceQueryMigrate: (await src.qmp.execute("query-migrate")).status,
    destQueryMigrate: (await dst.qmp.execute("query-migrate")).status,
    destRunstate: await status(dst),
  };
  const lastSourceCount = (await countsOf(src.serialPath)).at(-1);
  if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  await src.qmp.execute("migrate-continue", { state: "pre-switchover" });
  await src.qmp.migrationStatus("completed", 60_000);
  const totalWallMs = performance.now() - t0;
  // Right after the completed event query-migrate can still say total-time 0 and downtime 0
  // (the migration thread fills them in a moment later): ask again until total-time is set.
  const firstInfo = await src.qmp.execute("query-migrate");
  let srcInfo = firstInfo;
  let requeries = 0;
  const tq = performance.now();
  while (!(srcInfo["total-time"] > 0) && performance.now() - tq < 5000) {
    await new Promise((r) => setTimeout(r, 5));
    srcInfo = await src.qmp.execute("query-migrate");
    requeries++;
  }
  const requeryMs = Math.round(performance.now() - tq);
  const destCompleted = await dst.qmp.migrationStatus("completed", 30_000).then(
    () => true,
    () => false,
  );
  const destAfter = await status(dst);
  const destInfo = await dst.qmp.execute("query-migrate");
  const sourceAfter = await status(src);
  const sourceCountAfter = (await countsOf(src.serialPath)).at(-1);
  await dst.qmp.execute("cont");
  await until(async () => (await countsOf(dst.serialPath)).length >= 5, 30_000, "the destination's counter");
  const destCounts = await countsOf(dst.serialPath);
  const destRunning = await status(dst);
  await src.qmp.execute("quit").catch(() => undefined);
  const srcExit = await src.qemu.exit;
  report(name, {
    destRunstateBeforeIncoming: destBefore,
    destQueryMigrateAfterIncomingTcp0: listening,
    sourceParams: { "downtime-limit": params["downtime-limit"], "max-bandwidth": params["max-bandwidth"] },
    sourceEvents: sinceFirst(src.qmp.events),
    destEvents: sinceFirst(dst.qmp.events),
    atPreSwitchover: { ...atPre, preSwitchoverAfterMs: (pre.at - t0).toFixed(0) },
    pausedAtPreSwitchoverMs: pauseMs,
    firstQueryAfterCompletedEvent: { downtime: firstInfo.downtime, "total-time": firstInfo["total-time"] },
    requeriesUntilTotalTime: { requeries, ms: requeryMs },
    sourceQueryMigrateCompleted: srcInfo,
    totalWallMs: Math.round(totalWallMs),
    destMigrationCompletedEvent: destCompleted,
    destRunstateAfterCompleted: destAfter,
    destQueryMigrateAfterCompleted: destInfo.status,
    sourceRunstateAfterCompleted: sourceAfter,
    counter: {
      lastSourceCountAtPreSwitchover: lastSourceCount,
      lastSourceCountAfterCompleted: sourceCountAfter,
      firstDestCounts: destCounts.slice(0, 3),
      destBoots: await bootsOf(dst.serialPath),
    },
    destRunstateAfterCont: destRunning,
    sourceExitAfterQuit: srcExit,
  });
  await finish(dst);
}

async function unixUri() {
  const { base, src, dst } = await pair("unix", { memoryMiB: 128 });
  const path = join(base, "mig.sock");
  await dst.qmp.execute("migrate-incoming", { uri: `unix:${path}` });
  const listening = await dst.qmp.execute("query-migrate");
  const tcpZeroAgain = await dst.qmp.execute("migrate-incoming", { uri: "tcp:127.0.0.1:0" }).then(
    () => "accepted",
    (e) => e.message,
  );
  await src.qmp.execute("migrate", { uri: `unix:${path}` });
  await src.qmp.migrationStatus("pre-switchover", 120_000);
  await src.qmp.execute("migrate-continue", { state: "pre-switchover" });
  await src.qmp.migrationStatus("completed", 60_000);
  const info = await src.qmp.execute("query-migrate");
  report("unix", {
    destQueryMigrateAfterIncomingUnix: listening,
    secondMigrateIncoming: tcpZeroAgain,
    completed: { downtime: info.downtime, "total-time": info["total-time"] },
  });
  await finish(src, dst);
}

async function disk() {
  const base = join(root, "disk");
  mkdirSync(base, { recursive: true });
  const image = join(base, "shared.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
  const drive = ["-drive", `file=${image},format=qcow2,if=none,id=d0`, "-device", "virtio-blk-pci,drive=d0"];
  const { src, dst } = await pair("disk", { memoryMiB: 128, extra: drive });
  // A plain (not incoming) third QEMU on the same image while the source runs: is locking on?
  const thirdDir = join(base, "third");
  mkdirSync(thirdDir);
  const third = spawnQemu(["-machine", "q35", "-nodefaults", "-display", "none", "-S", ...drive]);
  const thirdExit = await Promise.race([third.exit, new Promise((r) => setTimeout(() => r("still running"), 3000))]);
  if (thirdExit === "still running") await killQemu(third);
  const destAlive = dst.qemu.alive();
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate", { uri });
  await src.qmp.migrationStatus("pre-switchover", 120_000);
  // At pre-switchover the source has inactivated its images: can a plain QEMU take the lock now?
  const fourth = spawnQemu(["-machine", "q35", "-nodefaults", "-display", "none", "-S", ...drive]);
  const fourthExit = await Promise.race([fourth.exit, new Promise((r) => setTimeout(() => r("still running"), 3000))]);
  if (fourthExit === "still running") await killQemu(fourth);
  await src.qmp.execute("migrate-continue", { state: "pre-switchover" });
  await src.qmp.migrationStatus("completed", 60_000);
  await dst.qmp.migrationStatus("completed", 30_000);
  // Completed, the destination still paused (-S): who holds the image now?
  const sixth = spawnQemu(["-machine", "q35", "-nodefaults", "-display", "none", "-S", ...drive]);
  const sixthExit = await Promise.race([sixth.exit, new Promise((r) => setTimeout(() => r("still running"), 3000))]);
  if (sixthExit === "still running") await killQemu(sixth);
  const contResult = await dst.qmp.execute("cont").then(
    () => "ok",
    (e) => e.message,
  );
  await until(async () => (await countsOf(dst.serialPath)).length >= 3, 30_000, "the destination's counter");
  // With the destination running, the source (postmigrate) must no longer hold the image.
  const fifth = spawnQemu(["-machine", "q35", "-nodefaults", "-display", "none", "-S", ...drive]);
  const fifthExit = await Promise.race([fifth.exit, new Promise((r) => setTimeout(() => r("still running"), 3000))]);
  if (fifthExit === "still running") await killQemu(fifth);
  report("disk", {
    destStartedWithSameImage: destAlive,
    destStderr: dst.qemu.stderr().trim(),
    thirdPlainQemuWhileSourceRuns: { exit: thirdExit, stderr: third.stderr().trim() },
    plainQemuAtPreSwitchover: { exit: fourthExit, stderr: fourth.stderr().trim() },
    plainQemuAfterCompletedBeforeCont: { exit: sixthExit, stderr: sixth.stderr().trim() },
    destContAfterCompleted: contResult,
    destRunstate: await status(dst),
    plainQemuWhileDestRuns: { exit: fifthExit, stderr: fifth.stderr().trim() },
  });
  await finish(src, dst);
}

/**
 * Completed but the destination not yet resumed (still -S): can the source take the VM back?
 * `cont` on the source while the destination lives (it holds the image), then after killing it.
 */
async function rollback() {
  const base = join(root, "rollback");
  mkdirSync(base, { recursive: true });
  const image = join(base, "shared.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
  const drive = ["-drive", `file=${image},format=qcow2,if=none,id=d0`, "-device", "virtio-blk-pci,drive=d0"];
  const { src, dst } = await pair("rollback", { memoryMiB: 128, extra: drive });
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate", { uri });
  await src.qmp.migrationStatus("pre-switchover", 120_000);
  await src.qmp.execute("migrate-continue", { state: "pre-switchover" });
  await src.qmp.migrationStatus("completed", 60_000);
  await dst.qmp.migrationStatus("completed", 30_000);
  const cancelAfterCompleted = await src.qmp.execute("migrate_cancel").then(
    () => "ok",
    (e) => e.message,
  );
  const srcAfterCancel = await status(src);
  const contWhileDestAlive = await src.qmp.execute("cont").then(
    () => "ok",
    (e) => e.message,
  );
  const srcAfterFirstCont = await status(src);
  await killQemu(dst.qemu);
  let contAfterDestKilled = "not tried (already running)";
  if ((await status(src)) !== "running") {
    contAfterDestKilled = await src.qmp.execute("cont").then(
      () => "ok",
      (e) => e.message,
    );
  }
  const c0 = (await countsOf(src.serialPath)).at(-1);
  const goesOn = await until(async () => (await countsOf(src.serialPath)).at(-1) > c0 + 3, 10_000, "count").then(
    () => true,
    () => false,
  );
  report("rollback", {
    migrateCancelAfterCompleted: cancelAfterCompleted,
    sourceRunstateAfterCancel: srcAfterCancel,
    sourceContWhileDestPausedAlive: contWhileDestAlive,
    sourceRunstateAfterThatCont: srcAfterFirstCont,
    sourceContAfterDestKilled: contAfterDestKilled,
    sourceRunstate: await status(src),
    sourceCounterGoesOn: goesOn,
    sourceStderr: src.qemu.stderr().trim(),
  });
  await finish(src, dst);
}

async function cancel() {
  const { src, dst } = await pair("cancel", { memoryMiB: 128 });
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate", { uri });
  await src.qmp.migrationStatus("pre-switchover", 120_000);
  const atPre = await status(src);
  const before = (await countsOf(src.serialPath)).at(-1);
  await src.qmp.execute("migrate_cancel");
  const cancelled = await src.qmp.migrationStatus("cancelled", 30_000).then(
    () => "cancelled",
    (e) => e.message,
  );
  const afterCancel = await status(src);
  const destExit = await Promise.race([
    dst.qemu.exit,
    new Promise((r) => setTimeout(() => r("still running"), 10_000)),
  ]);
  // Does the guest run again by itself?
  await new Promise((r) => setTimeout(r, 1500));
  const countsWithoutCont = (await countsOf(src.serialPath)).at(-1);
  let contResult = "not needed";
  if (afterCancel !== "running") {
    contResult = await src.qmp.execute("cont").then(
      () => "ok",
      (e) => e.message,
    );
  }
  await until(
    async () => (await countsOf(src.serialPath)).at(-1) > countsWithoutCont + 3,
    30_000,
    "the count to go on",
  );
  // A second migration after the cancel (to a new destination): does the source allow it?
  const retryDir = join(root, "cancel", "dst2");
  mkdirSync(retryDir);
  const dst2 = await startSide(guest, retryDir, { memoryMiB: 128 }, { incoming: true });
  started.push(dst2);
  await dst2.qmp.execute("migrate-set-capabilities", {
    capabilities: [
      { capability: "events", state: true },
      { capability: "pause-before-switchover", state: true },
    ],
  });
  const { uri: uri2 } = await listenTcp(dst2);
  await src.qmp.execute("migrate", { uri: uri2 });
  await src.qmp.waitEvent(
    (e) =>
      e.event === "MIGRATION" &&
      e.data.status === "pre-switchover" &&
      e.at > 0 &&
      src.qmp.events.filter((x) => x.data?.status === "pre-switchover").length >= 2,
    120_000,
  );
  await src.qmp.execute("migrate-continue", { state: "pre-switchover" });
  await src.qmp.waitEvent((e) => e.event === "MIGRATION" && e.data.status === "completed", 60_000);
  report("cancel", {
    sourceRunstateAtPreSwitchover: atPre,
    lastCountAtPreSwitchover: before,
    cancelledEvent: cancelled,
    sourceRunstateAfterCancel: afterCancel,
    countAfter1500msWithoutCont: countsWithoutCont,
    contResult,
    sourceRunstateAfterCont: await status(src),
    sourceEvents: sinceFirst(src.qmp.events),
    destEvents: sinceFirst(dst.qmp.events),
    destAfterSourceCancel: destExit,
    destStderr: dst.qemu.stderr().trim(),
    secondMigrationAfterCancel: "completed",
  });
  await finish(src, dst, dst2);
}

/** SIGKILL one side while RAM is moving at 4 MiB/s (a 256 MiB guest needs about a minute). */
async function killMidTransfer(which) {
  const name = `kill-${which}`;
  const { src, dst } = await pair(name, { memoryMiB: 256 });
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate-set-parameters", { "max-bandwidth": 4 * MiB });
  await src.qmp.execute("migrate", { uri });
  await until(async () => (await src.qmp.execute("query-migrate")).ram?.transferred > 8 * MiB, 60_000, "8 MiB moved");
  const victim = which === "source" ? src : dst;
  const other = which === "source" ? dst : src;
  const killedAt = performance.now();
  victim.qemu.child.kill("SIGKILL");
  await victim.qemu.exit;
  const otherExit = await Promise.race([
    other.qemu.exit,
    new Promise((r) => setTimeout(() => r("still running after 15 s"), 15_000)),
  ]);
  const facts = {
    otherExit,
    otherExitAfterMs: typeof otherExit === "string" ? undefined : Math.round(performance.now() - killedAt),
    otherStderr: other.qemu.stderr().trim(),
    otherEvents: sinceFirst(other.qmp.events),
  };
  if (other.qemu.alive()) {
    facts.otherQueryMigrate = await other.qmp.execute("query-migrate").catch((e) => e.message);
    facts.otherRunstate = await status(other).catch((e) => e.message);
    const c0 = (await countsOf(other.serialPath)).at(-1);
    await new Promise((r) => setTimeout(r, 1500));
    facts.otherCounterGoesOn = (await countsOf(other.serialPath)).at(-1) > c0;
  }
  report(name, facts);
  await finish(src, dst);
}

/** SIGKILL the destination while the source waits at pre-switchover (guest stopped). */
async function killDestAtPreSwitchover() {
  const { src, dst } = await pair("kill-dest-pre", { memoryMiB: 128 });
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate", { uri });
  await src.qmp.migrationStatus("pre-switchover", 120_000);
  await killQemu(dst.qemu);
  await new Promise((r) => setTimeout(r, 2000));
  const after2s = { status: (await src.qmp.execute("query-migrate")).status, runstate: await status(src) };
  const continueResult = await src.qmp.execute("migrate-continue", { state: "pre-switchover" }).then(
    () => "ok",
    (e) => e.message,
  );
  const ended = await src.qmp
    .waitEvent((e) => e.event === "MIGRATION" && ["failed", "completed", "cancelled"].includes(e.data.status), 30_000)
    .then(
      (e) => e.data.status,
      (e) => e.message,
    );
  await new Promise((r) => setTimeout(r, 500));
  const info = await src.qmp.execute("query-migrate");
  const runstate = await status(src);
  let contResult = "not needed";
  if (runstate !== "running") {
    contResult = await src.qmp.execute("cont").then(
      () => "ok",
      (e) => e.message,
    );
  }
  report("kill-dest-pre", {
    sourceTwoSecondsAfterDestKilled: after2s,
    migrateContinue: continueResult,
    endStatus: ended,
    errorDesc: info["error-desc"],
    sourceRunstateAfterEnd: runstate,
    contResult,
    sourceRunstateAfterCont: await status(src),
    sourceEvents: sinceFirst(src.qmp.events),
    sourceAlive: src.qemu.alive(),
  });
  await finish(src, dst);
}

/**
 * The orchestrator's QMP connection drops at pre-switchover (its agent died): a new connection
 * finds the migration still waiting there and can finish it.
 */
async function reconnect() {
  const { src, dst } = await pair("reconnect", { memoryMiB: 128 });
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate", { uri });
  await src.qmp.migrationStatus("pre-switchover", 120_000);
  await src.qmp.close();
  await new Promise((r) => setTimeout(r, 3000));
  const again = await qmpConnect(src.qmpPath);
  const seen = {
    status: (await again.execute("query-migrate")).status,
    runstate: (await again.execute("query-status")).status,
  };
  await again.execute("migrate-continue", { state: "pre-switchover" });
  const completedEventOnNewConnection = await again.migrationStatus("completed", 30_000).then(
    () => true,
    (e) => e.message,
  );
  await dst.qmp.migrationStatus("completed", 30_000);
  await dst.qmp.execute("cont");
  report("reconnect", { afterReconnect3s: seen, completedEventOnNewConnection, destRunstate: await status(dst) });
  src.qmp = again;
  await finish(src, dst);
}

/**
 * A migration that cannot converge: the dirty guest (64 MiB rewritten continuously) at 8 MiB/s,
 * downtime-limit 100 ms, watched for 30 s, then cancelled.
 */
async function converge() {
  const { src, dst } = await pair("converge", { memoryMiB: 256, action: "dirty", dirtyMiB: 64 });
  const { uri } = await listenTcp(dst);
  await src.qmp.execute("migrate-set-parameters", { "max-bandwidth": 8 * MiB, "downtime-limit": 100 });
  await src.qmp.execute("migrate", { uri });
  const samples = [];
  for (let s = 10; s <= 30; s += 10) {
    await new Promise((r) => setTimeout(r, 10_000));
    const info = await src.qmp.execute("query-migrate");
    samples.push({
      s,
      status: info.status,
      passes: info.ram?.["dirty-sync-count"],
      transferredMiB: Math.round(info.ram?.transferred / MiB),
      remainingMiB: Math.round(info.ram?.remaining / MiB),
      dirtyPagesRate: info.ram?.["dirty-pages-rate"],
      expectedDowntime: info["expected-downtime"],
    });
  }
  await src.qmp.execute("migrate_cancel");
  await src.qmp.migrationStatus("cancelled", 30_000);
  const destExit = await Promise.race([
    dst.qemu.exit,
    new Promise((r) => setTimeout(() => r("still running"), 10_000)),
  ]);
  report("converge", {
    samples,
    passEvents: src.qmp.events.filter((e) => e.event === "MIGRATION_PASS").length,
    sourceRunstateAfterCancel: await status(src),
    destAfterCancel: destExit,
  });
  await finish(src, dst);
}

const EXPERIMENTS = {
  flow: () => flow("flow", 0),
  pause: () => flow("pause", 1000),
  unix: unixUri,
  disk,
  cancel,
  rollback,
  "kill-source": () => killMidTransfer("source"),
  "kill-dest": () => killMidTransfer("dest"),
  "kill-dest-pre": killDestAtPreSwitchover,
  reconnect,
  converge,
};
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(EXPERIMENTS);
console.log(
  JSON.stringify({
    qemu: execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }).split("\n")[0],
    load: (await import("node:os")).loadavg(),
  }),
);
try {
  for (const name of chosen) {
    try {
      await EXPERIMENTS[name]();
    } catch (error) {
      report(name, { error: String(error?.stack ?? error) });
    }
    for (const side of started.splice(0)) await finish(side);
  }
} finally {
  for (const side of started) await finish(side);
  rmSync(root, { recursive: true, force: true });
}
