// Measure: many hosts on one PostgreSQL (issue 13). Two agents `--host a|b` on one PostgreSQL
// server with its defaults (durable: every commit waits for its WAL flush, as users run it),
// firmware-only VMs:
//   - routing overhead: POST /v1/vms/NAME/qmp query-status to agent a for a VM owned by host b
//     (a routed command: row, NOTIFY, claim, run, outcome, NOTIFY) vs the same for a VM owned by
//     a (same agent, same socket), interleaved; goal: p50 <= 10 ms over the local one. The same
//     pair on a second cluster (two more agents) whose server runs fsync, synchronous_commit and
//     full_page_writes off (the test clusters' settings) is measured in the same rounds, the four
//     calls of a round in a random order: a secondary row, labelled so;
//   - host.down detection: agent b (and its QEMU) killed -9; time from its last lease renewal to
//     host.down, both by the database's clock (host.down's expiredMs + the TTL); goal <= 20 s;
//   - HA restart: from the kill to the `ha: restart` VM running on a (polled every 100 ms);
//     goal <= 60 s. Both on the durable cluster.
// Default lease settings (TTL 10 s, fence-after 5 s), as a user gets them.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { stopAgent } from "./cluster-checks.mjs";
import { socketHttp as http, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { qemuUnder } from "./raw-qemu.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

async function ok(socket, method, path, body) {
  const r = await http(socket, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.text ? JSON.parse(r.text) : null;
}

await runMeasure(
  "cluster",
  "Cluster: routed commands, host failure detection, HA restart (2 agents, one PostgreSQL)",
  async (ctx) => {
    const calls = ctx.quick ? 40 : 300;
    const bin = join(ctx.dist, "src/cli/bin.js");
    const prefix = ctx.pgPrefix ?? "/tmp/mqb-pg-";
    // Two agents on a server; `tag` keeps their runtime directories apart.
    const startCluster = async (server, tag) => {
      const url = await server.createDatabase("maqet_cluster");
      const agents = {};
      for (const host of ["a", "b"]) {
        const rt = join(ctx.root, `rt-${tag}-${host}`);
        mkdirSync(rt, { recursive: true, mode: 0o700 });
        const socket = join(rt, "agent.sock");
        const env = { PATH: process.env.PATH, HOME: join(ctx.root, "home"), LANG: "C", MAQET_DATABASE_URL: url };
        const child = spawn(process.execPath, [bin, "agent", "--host", host, "--socket", socket, "--runtime-dir", rt], {
          env,
          stdio: ["ignore", "ignore", "pipe"],
        });
        const agent = { child, socket, rt, log: "" };
        child.stderr.on("data", (c) => {
          agent.log += c;
        });
        agents[host] = agent;
        ctx.defer(async () => {
          // SIGTERM: a clean stop stands the agent's fence guard down (a SIGKILL leaves it behind).
          await stopAgent(child, rt);
          for (const pid of qemuUnder(rt)) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {}
          }
        });
        const t0 = nowMs();
        while (!agent.log.includes("listening on")) {
          if (nowMs() - t0 > 300_000 || child.exitCode !== null)
            throw new Error(`agent ${host} (${tag}) did not start: ${agent.log}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const a = agents.a.socket;
      const vm = (name, ha) =>
        `name: ${name}\nmemory: 32M\naccel: tcg\nargs: [-nodefaults]\n${ha ? "ha: restart\n" : ""}`;
      const dir = join(ctx.root, tag);
      mkdirSync(dir, { recursive: true });
      const names = tag === "durable" ? ["local", "remote", "ha"] : ["local", "remote"];
      for (const name of names) {
        const host = name === "local" ? "a" : "b";
        await ok(a, "POST", "/v1/vms", { config: vm(name, name === "ha"), path: join(dir, `${name}.yaml`), host });
        await ok(a, "POST", `/v1/vms/${name}/start`, {});
      }
      return { agents, a, url, local: [], routed: [] };
    };
    const durablePg = await startPostgres(prefix, { durable: true });
    ctx.defer(() => durablePg.stop());
    const fastPg = await startPostgres(prefix);
    ctx.defer(() => fastPg.stop());
    const durable = await startCluster(durablePg, "durable");
    const fast = await startCluster(fastPg, "fast");

    const { agents, a } = durable;

    for (let i = 0; i < 5; i++) {
      for (const c of [durable, fast]) {
        await ok(c.a, "POST", "/v1/vms/local/qmp", { command: "query-status" });
        await ok(c.a, "POST", "/v1/vms/remote/qmp", { command: "query-status" });
      }
    }
    const pairs = [durable, fast].flatMap((c) => [
      ["local", c.local, c.a],
      ["remote", c.routed, c.a],
    ]);
    for (let i = 0; i < calls; i++) {
      // The four calls of a round in a random order (Fisher-Yates).
      const order = [...pairs];
      for (let j = order.length - 1; j > 0; j--) {
        const k = Math.floor(Math.random() * (j + 1));
        [order[j], order[k]] = [order[k], order[j]];
      }
      for (const [name, samples, socket] of order) {
        const t = nowMs();
        await ok(socket, "POST", `/v1/vms/${name}/qmp`, { command: "query-status" });
        samples.push(nowMs() - t);
      }
    }
    const fastLocal = summarize(fast.local);
    const fastRouted = summarize(fast.routed);
    // Where a routed command's time goes, by the database's clock: queued until the owner claimed
    // it (the NOTIFY wake-up and the claim), claimed until its outcome was written (the operation
    // on the owner, one append); the rest of the round trip is the caller's (owner lookup, insert,
    // the outcome's NOTIFY and read).
    const phases = async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query(
          `select extract(epoch from (claimed_at - created_at)) * 1000 as wait,
                  extract(epoch from (finished_at - claimed_at)) * 1000 as run
             from maqet_commands where method = 'qmp' and state = 'done'`,
        );
        return { wait: summarize(rows.map((r) => Number(r.wait))), run: summarize(rows.map((r) => Number(r.run))) };
      } finally {
        await client.end();
      }
    };
    const durablePhases = await phases(durable.url);
    const fastPhases = await phases(fast.url);
    const local = durable.local;
    const routed = durable.routed;
    const localStat = summarize(local);
    const routedStat = summarize(routed);

    // Host b dies: its agent and its QEMU.
    const b = agents.b;
    const killed = nowMs();
    b.child.kill("SIGKILL");
    for (const pid of qemuUnder(b.rt)) process.kill(pid, "SIGKILL");
    let restartMs;
    while (nowMs() - killed < 180_000) {
      const s = await ok(a, "GET", "/v1/vms/ha");
      if (s.state === "running" && s.host === "a") {
        restartMs = nowMs() - killed;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (restartMs === undefined) throw new Error(`ha VM not running again within 180 s:\n${agents.a.log.slice(-3000)}`);
    const events = JSON.parse((await http(a, "GET", "/v1/events")).text);
    const down = events.find((e) => e.type === "host.down");
    const joined = events.find((e) => e.type === "host.joined" && e.data?.leaseTtlMs);
    if (!down || !joined) throw new Error("no host.down / host.joined event");
    const detectMs = down.data.expiredMs + joined.data.leaseTtlMs;
    spawnSync(process.execPath, [bin, "--agent", a, "stop", "ha", "--force"], { timeout: 60_000 });
    spawnSync(process.execPath, [bin, "--agent", a, "stop", "local", "--force"], { timeout: 60_000 });
    writeFileSync(join(ctx.root, "done"), "");
    return {
      rows: [
        row("qmp query-status, VM on another host (routed)", "ms", routedStat, "same, VM on this host", localStat),
        row(
          "same, server with fsync off (secondary, not a user's setting)",
          "ms",
          fastRouted,
          "same, VM on this host, fsync off",
          fastLocal,
        ),
        row("host.down after its last lease renewal (DB clock)", "ms", { median: detectMs, n: 1 }),
        row("ha: restart VM running again after its host's death", "ms", { median: restartMs, n: 1 }),
      ],
      notes: [
        `routing overhead p50: ${(routedStat.median - localStat.median).toFixed(2)} ms on the durable server (goal <= 10 ms); ${(fastRouted.median - fastLocal.median).toFixed(2)} ms with fsync off; ${calls} calls each, the four kinds interleaved in random order`,
        `a routed qmp by the database's clock, p50 (p95): queued until claimed ${durablePhases.wait.median.toFixed(2)} (${durablePhases.wait.p95.toFixed(2)}) ms, claimed until finished ${durablePhases.run.median.toFixed(2)} (${durablePhases.run.p95.toFixed(2)}) ms; fsync off: ${fastPhases.wait.median.toFixed(2)} (${fastPhases.wait.p95.toFixed(2)}), ${fastPhases.run.median.toFixed(2)} (${fastPhases.run.p95.toFixed(2)}) ms`,
        `goals: host.down <= 20 000 ms, HA running again <= 60 000 ms; lease TTL 10 s, fence-after 5 s (defaults)`,
        `PostgreSQL ${durablePg.version}: the headline rows on its defaults (durable: fsync, synchronous_commit, full_page_writes on); load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")}`,
      ],
    };
  },
);
