// Measure: many VMs through one agent (issue 10's curve). One `maqet agent` on an embedded PGlite
// store; firmware-only VMs (TCG, 32 MiB, -nodefaults) are added, then at each step of 10 / 50 /
// 100 / 200 (10 / 50 with --quick; MAQET_BENCH_SCALE="10,20" to choose) that many are started
// through the API all at once, from none running, and stopped all at once after. At each step:
//   - how long the starts took (until every one answered, i.e. was running with QMP up), and
//     whether every VM's history holds this run's facts;
//   - `maqet ls` through the agent (wall time of the CLI process) vs `node -e 0`, interleaved;
//   - GET /v1/vms (API) and GET /v1/vms/NAME p50 vs GET /v1/version (same socket, no store);
//   - the agent's RSS (VmRSS), against its RSS with no VM (a second agent, on the store the first
//     created), and the QEMUs' own total, for scale.
// Every VM is stopped (--force) after its step, and at the end.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { cliEntry, socketHttp as http, runMeasure } from "./harness.mjs";
import { rssOf } from "./raw-qemu.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

await runMeasure("agent-scale", "Agent: many VMs through one agent (embedded PGlite store)", async (ctx) => {
  const steps = (process.env.MAQET_BENCH_SCALE ?? (ctx.quick ? "10,50" : "10,50,100,200")).split(",").map(Number);
  const samples = ctx.quick ? 3 : 7;
  const apiCalls = ctx.quick ? 30 : 100;
  const bin = cliEntry(ctx.dist);
  const socket = join(ctx.root, "agent.sock");
  const env = { PATH: process.env.PATH, HOME: join(ctx.root, "home"), LANG: "C" };
  const dirs = ["--data-dir", join(ctx.root, "data"), "--runtime-dir", join(ctx.root, "rt")];
  // The first agent creates the store (PGlite's initdb leaves a large heap behind); a host's
  // agent reopens an existing one, so the measured agent is the second.
  const startAgent = async () => {
    const child = spawn(process.execPath, [bin, "agent", "--socket", socket, ...dirs], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    const started = { child, log: "" };
    child.stderr.on("data", (c) => {
      started.log += c;
    });
    const t0 = nowMs();
    while (!started.log.includes("listening on")) {
      if (nowMs() - t0 > 600_000 || child.exitCode !== null) throw new Error(`agent did not start: ${started.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return started;
  };
  const first = await startAgent();
  first.child.kill("SIGTERM");
  await new Promise((r) => first.child.once("exit", r));
  const started = await startAgent();
  const agent = started.child;
  const names = [];
  ctx.defer(async () => {
    if (agent.exitCode !== null || agent.signalCode !== null || process.env.MAQET_BENCH_DEBUG) {
      process.stderr.write(
        `agent-scale: the agent exited (${agent.exitCode ?? agent.signalCode}):\n${started.log.slice(-4000)}\n`,
      );
    }
    await Promise.all(names.map((n) => http(socket, "POST", `/v1/vms/${n}/stop`, { force: true }).catch(() => {})));
    agent.kill("SIGTERM");
    await new Promise((r) => agent.once("exit", r));
  });
  await new Promise((r) => setTimeout(r, 2000)); // its start-up settles (projections caught up)
  const agentRss = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  };
  const wall = (args) => {
    const s = nowMs();
    const r = spawnSync(process.execPath, args, { env, encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return nowMs() - s;
  };
  const call = async (method, path, body) => {
    const r = await http(socket, method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r;
  };
  const rssBefore = agentRss();
  const rows = [];
  const notes = [];
  const availableMiB = () =>
    Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024;
  const loadNow = () => loadavg()[0].toFixed(1);
  for (const count of steps) {
    // A shared machine: leave 4 GiB to others; a firmware-only TCG QEMU of 32 MiB holds ~50 MiB.
    const needMiB = count * 50 + 4096;
    if (availableMiB() < needMiB) {
      notes.push(`${count} VMs: not measured, ${availableMiB().toFixed(0)} MiB available, ${needMiB} wanted`);
      break;
    }
    for (let i = names.length; i < count; i++) {
      const name = `s${i}`;
      await call("POST", "/v1/vms", { config: { name, memory: "32M", accel: "tcg", args: ["-nodefaults"] } });
      names.push(name);
    }
    const batch = names.slice(0, count);
    const loadBefore = loadNow();
    // All of them at once, from none running: what a host's boot or a fleet's restart asks.
    const s = nowMs();
    const outcomes = await Promise.allSettled(batch.map((n) => call("POST", `/v1/vms/${n}/start`, {})));
    const startSeconds = (nowMs() - s) / 1000;
    const loadAfter = loadNow();
    const failed = outcomes.filter((o) => o.status === "rejected");
    if (failed.length > 0) {
      notes.push(
        `${count} VMs: ${failed.length} of ${count} starts failed (${String(failed[0].reason?.message ?? failed[0].reason).slice(0, 300)})`,
      );
    }
    const list = JSON.parse((await call("GET", "/v1/vms")).text);
    const runningCount = list.filter((v) => batch.includes(v.name) && v.state === "running").length;
    // Complete: this run's facts are all there (vm.defined once, then the run's start-requested
    // followed by its started, nothing after them but QMP facts).
    let complete = 0;
    for (const n of batch) {
      const h = JSON.parse((await call("GET", `/v1/vms/${n}/history`)).text);
      const types = (Array.isArray(h) ? h : h.events).map((e) => e.type);
      const requested = types.lastIndexOf("vm.start-requested");
      const started = types.lastIndexOf("vm.started");
      const stoppedAfter = types.lastIndexOf("vm.stopped") > requested;
      if (types[0] === "vm.defined" && requested !== -1 && started > requested && !stoppedAfter) complete++;
    }
    const ls = [];
    const node = [];
    wall([bin, "--agent", socket, "ls"]);
    for (let r = 0; r < samples; r++) {
      if (r % 2 === 0) {
        ls.push(wall([bin, "--agent", socket, "ls"]));
        node.push(wall(["-e", "0"]));
      } else {
        node.push(wall(["-e", "0"]));
        ls.push(wall([bin, "--agent", socket, "ls"]));
      }
    }
    const api = { list: [], one: [], version: [] };
    for (let i = 0; i < apiCalls; i++) {
      let a = nowMs();
      await call("GET", "/v1/version");
      api.version.push(nowMs() - a);
      a = nowMs();
      await call("GET", `/v1/vms/${batch[i % batch.length]}`);
      api.one.push(nowMs() - a);
      if (i % 4 === 0) {
        a = nowMs();
        await call("GET", "/v1/vms");
        api.list.push(nowMs() - a);
      }
    }
    const rss = agentRss();
    let qemuRss = 0;
    for (const v of list) if (v.pid) qemuRss += ((await rssOf(v.pid)) ?? 0) / 1024 / 1024;
    // And all of them stopped at once (--force), before the next step starts from none.
    const t = nowMs();
    const stopped = await Promise.allSettled(batch.map((n) => call("POST", `/v1/vms/${n}/stop`, { force: true })));
    const stopSeconds = (nowMs() - t) / 1000;
    const stopFailed = stopped.filter((o) => o.status === "rejected").length;
    const version = summarize(api.version);
    rows.push(
      row(`${count} VMs: all started at once, until all running`, "s", summarize([startSeconds])),
      row(`${count} VMs: maqet ls through the agent`, "ms", summarize(ls), "node -e 0", summarize(node)),
      row(`${count} VMs: GET /v1/vms`, "ms", summarize(api.list), "GET /v1/version", version),
      row(`${count} VMs: GET /v1/vms/NAME`, "ms", summarize(api.one), "GET /v1/version", version),
      row(`${count} VMs: agent RSS`, "MiB", summarize([rss]), "the agent with no VM", summarize([rssBefore])),
    );
    notes.push(
      `${count} VMs: started at once in ${startSeconds.toFixed(1)} s (load average ${loadBefore} before, ${loadAfter} after); ${runningCount}/${count} running; ${complete}/${count} histories complete; agent RSS ${rss.toFixed(0)} MiB = ${rssBefore.toFixed(0)} + ${((rss - rssBefore) / count).toFixed(2)} MiB per VM (goal: <= 300 + 1 per VM = ${300 + count}); QEMUs' RSS ${qemuRss.toFixed(0)} MiB in all; all stopped at once (--force) in ${stopSeconds.toFixed(1)} s${stopFailed ? `, ${stopFailed} failed` : ""}`,
    );
  }
  return { rows, notes };
});
