// Measure: the agent (issue 10). With one `maqet agent` on an embedded store holding one running
// firmware-only VM, interleaved with their baselines:
//   - CLI calls through the agent (`maqet ls`, `status`, `qmp VM query-status`) vs `node -e 0`;
//   - the CLI process's peak RSS through the agent;
//   - GET /v1/vms/NAME round trip (p50) vs GET /v1/version (the HTTP floor of the same socket);
//   - POST /v1/vms/NAME/qmp query-status vs the CLI through the agent;
//   - SSE delivery: event recorded (appended) -> SSE client, with QMP calls at 200 events/s spread
//     over 4 VMs (one VM's calls run one at a time);
//   - POST /v1/vms/NAME/stop {force} vs SIGKILL + wait of a QEMU started by hand with the VM's argv;
//   - POST /v1/vms/NAME/start vs spawning that argv, connecting to QMP and `cont` answered.
// 200 VMs through one agent: bench/agent-scale.mjs.
// Each process sample is one child; load average in the notes.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { loadavg } from "node:os";
import { join } from "node:path";
import { cliEntry, socketHttp as http, runMeasure } from "./harness.mjs";
import { cmdlineOf, killAndWait, rawQmpConnect, spawnQemu } from "./raw-qemu.mjs";
import { nowMs, quantile, row, summarize } from "./stats.mjs";

await runMeasure("agent", "Agent: CLI and API through `maqet agent` (embedded PGlite store)", async (ctx) => {
  // 31: a ratio of two medians of ~50 ms calls moves by ~0.05x between runs of 15 at load 1.
  const rounds = ctx.quick ? 5 : 31;
  const bin = cliEntry(ctx.dist);
  const socket = join(ctx.root, "agent.sock");
  const env = { PATH: process.env.PATH, HOME: join(ctx.root, "home"), LANG: "C" };
  const dirs = ["--data-dir", join(ctx.root, "data"), "--runtime-dir", join(ctx.root, "rt")];
  const agent = spawn(process.execPath, [bin, "agent", "--socket", socket, ...dirs], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  agent.stderr.on("data", (c) => {
    log += c;
  });
  ctx.defer(async () => {
    spawnSync(process.execPath, [bin, "--agent", socket, "stop", "bench", "--force"], { env, timeout: 60_000 });
    agent.kill("SIGTERM");
    await new Promise((r) => agent.once("exit", r));
  });
  const t0 = nowMs();
  while (!log.includes("listening on")) {
    if (nowMs() - t0 > 600_000 || agent.exitCode !== null) throw new Error(`agent did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const config = join(ctx.root, "bench.yaml");
  writeFileSync(config, "name: bench\nmemory: 32M\naccel: tcg\nargs: [-nodefaults]\n");
  const cli = (...words) => [bin, "--agent", socket, ...words];
  const wall = (args, what) => {
    const start = nowMs();
    const r = spawnSync(process.execPath, args, { env, encoding: "utf8", timeout: 60_000 });
    const ms = nowMs() - start;
    if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stderr}`);
    return { ms, stderr: r.stderr };
  };
  wall(cli("add", config), "add");
  wall(cli("start", "bench"), "start");

  const rssPreload = `data:text/javascript,process.on("exit",()=>process.stderr.write("\\nMAXRSS "+process.resourceUsage().maxRSS+"\\n"))`;
  const kinds = {
    node: { args: ["-e", "0"], samples: [] },
    ls: { args: cli("ls"), samples: [] },
    status: { args: cli("status", "bench"), samples: [] },
    qmp: { args: cli("qmp", "bench", "query-status"), samples: [] },
  };
  const rss = [];
  for (const k of Object.values(kinds)) wall(k.args, "warm-up");
  for (let r = 0; r < rounds; r++) {
    const order = Object.entries(kinds);
    if (r % 2 === 1) order.reverse();
    for (const [name, k] of order) k.samples.push(wall(k.args, name).ms);
    const probe = wall(["--import", rssPreload, ...cli("ls")], "ls rss").stderr.match(/MAXRSS (\d+)/);
    if (probe) rss.push(Number(probe[1]) / 1024);
  }
  const nodeRss = [];
  for (let r = 0; r < 3; r++) {
    const probe = wall(["--import", rssPreload, "-e", "0"], "node rss").stderr.match(/MAXRSS (\d+)/);
    if (probe) nodeRss.push(Number(probe[1]) / 1024);
  }

  // API round trips from this process (one keep-alive-free request each).
  const api = { status: [], version: [], qmp: [] };
  const calls = ctx.quick ? 50 : 200;
  for (let i = 0; i < calls; i++) {
    let s = nowMs();
    await http(socket, "GET", "/v1/version");
    api.version.push(nowMs() - s);
    s = nowMs();
    const r = await http(socket, "GET", "/v1/vms/bench");
    if (r.status !== 200) throw new Error(`GET /v1/vms/bench: ${r.status} ${r.text}`);
    api.status.push(nowMs() - s);
    if (i % 4 === 0) {
      s = nowMs();
      await http(socket, "POST", "/v1/vms/bench/qmp", { command: "query-status" });
      api.qmp.push(nowMs() - s);
    }
  }

  // SSE delivery latency at 200 events/s. Each `POST …/qmp` appends one event; calls on one VM
  // run one at a time (its actor is the lock), so the calls go round-robin to SSE_VMS VMs, paced
  // to 200 a second in all: what the agent must sustain is the append path and the stream, not
  // one VM's serialised round trips.
  const SSE_VMS = 4;
  const sseNames = ["bench"];
  for (let v = 2; v <= SSE_VMS; v++) {
    const name = `bench${v}`;
    const added = await http(socket, "POST", "/v1/vms", {
      config: { name, memory: "32M", accel: "tcg", args: ["-nodefaults"] },
    });
    if (added.status !== 201) throw new Error(`add ${name}: ${added.status} ${added.text}`);
    const started = await http(socket, "POST", `/v1/vms/${name}/start`, {});
    if (started.status !== 200) throw new Error(`start ${name}: ${started.status} ${started.text}`);
    sseNames.push(name);
  }
  ctx.defer(async () => {
    for (const name of sseNames.slice(1)) await http(socket, "POST", `/v1/vms/${name}/stop`, { force: true });
  });
  const latencies = [];
  let counting = false;
  const sse = await new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, path: "/v1/events?from=end&type=qmp.", headers: { accept: "text/event-stream" } },
      (res) => {
        res.setEncoding("utf8");
        let buffer = "";
        res.on("data", (chunk) => {
          const at = Date.now();
          buffer += chunk;
          let end = buffer.indexOf("\n\n");
          while (end !== -1) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame.split("\n").find((l) => l.startsWith("data: "));
            if (counting && data && frame.startsWith("id:"))
              latencies.push(at - Date.parse(JSON.parse(data.slice(6)).at));
            end = buffer.indexOf("\n\n");
          }
        });
        resolve(req);
      },
    );
    req.on("error", reject);
    req.end();
  });
  // Paced calls at `perSecond`, round-robin over the VMs; at most 16 in flight per VM, so an agent
  // that cannot keep up shows in the rate reached (in the row's name), not in a listen backlog overflow.
  const drive = async (count, perSecond) => {
    const began = nowMs();
    const inFlight = sseNames.map(() => new Set());
    const pending = [];
    for (let i = 0; i < count; i++) {
      const due = began + (i * 1000) / perSecond;
      const wait = due - nowMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const slot = inFlight[i % sseNames.length];
      while (slot.size >= 16) await Promise.race(slot);
      const call = http(socket, "POST", `/v1/vms/${sseNames[i % sseNames.length]}/qmp`, { command: "query-status" });
      slot.add(call);
      call.finally(() => slot.delete(call)).catch(() => {});
      pending.push(call);
    }
    const replies = await Promise.all(pending);
    const bad = replies.find((r) => r.status !== 200);
    if (bad) throw new Error(`POST qmp during the SSE measure: ${bad.status} ${bad.text}`);
    return count / ((nowMs() - began) / 1000);
  };
  await drive(ctx.quick ? 100 : 200, 200); // warm-up, not counted
  await new Promise((r) => setTimeout(r, 500));
  counting = true;
  const sseEvents = ctx.quick ? 1000 : 3000;
  const rate = await drive(sseEvents, 200);
  const deadline = nowMs() + 10_000;
  while (latencies.length < sseEvents && nowMs() < deadline) await new Promise((r) => setTimeout(r, 20));
  counting = false;
  sse.destroy();
  const sseStats = summarize(latencies);
  const sseP99 = quantile(latencies, 0.99);
  for (const name of sseNames.slice(1)) await http(socket, "POST", `/v1/vms/${name}/stop`, { force: true });

  // stop --force through the API against SIGKILL + wait of the same QEMU argv started by hand.
  const running = JSON.parse((await http(socket, "GET", "/v1/vms/bench")).text);
  const argv = (await cmdlineOf(running.pid)).slice(1);
  const rawDir = join(ctx.root, "raw");
  mkdirSync(rawDir, { recursive: true, mode: 0o700 });
  const rawUuid = crypto.randomUUID();
  const rawArgv = argv.map((w) => w.replaceAll(running.runtimeDir, rawDir).replaceAll(running.id, rawUuid));
  const stops = { agent: [], raw: [] };
  const starts = { agent: [], raw: [] };
  let rawQemu;
  ctx.defer(async () => rawQemu && (await killAndWait(rawQemu)));
  const agentStop = async () => {
    const s = nowMs();
    const r = await http(socket, "POST", "/v1/vms/bench/stop", { force: true });
    stops.agent.push(nowMs() - s);
    if (r.status !== 200) throw new Error(`stop --force: ${r.status} ${r.text}`);
    const t = nowMs();
    const again = await http(socket, "POST", "/v1/vms/bench/start", {});
    starts.agent.push(nowMs() - t);
    if (again.status !== 200) throw new Error(`start: ${again.status} ${again.text}`);
  };
  const rawStop = async () => {
    const t = nowMs();
    rawQemu = spawnQemu(rawArgv);
    const qmp = await rawQmpConnect(join(rawDir, "qmp.sock"));
    await qmp.execute("cont");
    starts.raw.push(nowMs() - t);
    await qmp.close();
    const s = nowMs();
    await killAndWait(rawQemu);
    stops.raw.push(nowMs() - s);
    rawQemu = undefined;
  };
  for (let r = 0; r < (ctx.quick ? 5 : 10); r++) {
    if (r % 2 === 0) {
      await agentStop();
      await rawStop();
    } else {
      await rawStop();
      await agentStop();
    }
  }

  const node = summarize(kinds.node.samples);
  return {
    rows: [
      row("maqet ls through the agent", "ms", summarize(kinds.ls.samples), "node -e 0", node),
      row("maqet status VM through the agent", "ms", summarize(kinds.status.samples), "node -e 0", node),
      row("maqet qmp VM query-status through the agent", "ms", summarize(kinds.qmp.samples), "node -e 0", node),
      row(
        "CLI process peak RSS (ls through the agent)",
        "MiB",
        summarize(rss),
        "node -e 0 peak RSS",
        summarize(nodeRss),
      ),
      row("GET /v1/vms/NAME", "ms", summarize(api.status), "GET /v1/version", summarize(api.version)),
      row("POST /v1/vms/NAME/qmp query-status", "ms", summarize(api.qmp), "GET /v1/vms/NAME", summarize(api.status)),
      row(
        "POST /v1/vms/NAME/stop force (stop --force through the agent)",
        "ms",
        summarize(stops.agent),
        "SIGKILL + wait for exit",
        summarize(stops.raw),
      ),
      row(
        "POST /v1/vms/NAME/start (start through the agent)",
        "ms",
        summarize(starts.agent),
        "spawn to `cont` answered (same argv)",
        summarize(starts.raw),
      ),
      row(
        `SSE delivery, append -> client (${latencies.length}/${sseEvents} events at ${rate.toFixed(0)}/s over ${SSE_VMS} VMs; p99 ${sseP99.toFixed(1)} ms)`,
        "ms",
        sseStats,
      ),
    ],
    notes: [
      `${rounds} samples of each CLI kind, interleaved; ${calls} API round trips; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} at the end`,
      "SSE latency: the event's recordedAt (set at append, before commit) to its arrival at the client: an upper bound of commit -> client",
    ],
  };
});
