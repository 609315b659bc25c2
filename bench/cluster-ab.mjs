// Routing overhead, two builds A/B in one run (issue 13): on a loaded machine the load moves by
// 5-10 while one `--only cluster` run lasts, so two builds measured one after the other differ by
// the load more than by the code. Here both run at once: two agents (`--host a|b`) per build on
// one durable PostgreSQL server (a database each), and each round sends the four calls (A local,
// A routed, B local, B routed: `POST /v1/vms/NAME/qmp query-status` to agent a) in a random order.
//
//   node bench/run.mjs --rev main --only cluster --quick   # once, to build main into .tmp/bench-src-<sha>/dist
//   node bench/cluster-ab.mjs .tmp/bench-src-<sha>/dist dist [rounds, default 200]
//   FAST=1 node bench/cluster-ab.mjs …                     # the server with fsync off
//
// Prints each kind's p50, each build's overhead (routed p50 - local p50) and the load.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { stopAgent } from "./cluster-checks.mjs";
import { socketHttp as http } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { qemuUnder } from "./raw-qemu.mjs";

const [oldDist, newDist, roundsArg] = process.argv.slice(2);
if (!oldDist || !newDist) {
  console.error("usage: node bench/cluster-ab.mjs A_DIST B_DIST [rounds]");
  process.exit(2);
}
const rounds = Number(roundsArg ?? 200);
const bin = (dist) => resolve(dist, "src/cli/bin.js");
const builds = { A: bin(oldDist), B: bin(newDist) };
const root = mkdtempSync("/tmp/mqab-");
const server = await startPostgres("/tmp/mqab-pg-", { durable: process.env.FAST !== "1" });
const agents = [];
const ok = async (s, m, p, b) => {
  const r = await http(s, m, p, b);
  if (r.status >= 300) throw new Error(`${m} ${p}: ${r.status} ${r.text}`);
  return r.text ? JSON.parse(r.text) : null;
};
const load0 = loadavg();
try {
  const sockets = {};
  for (const [tag, bin] of Object.entries(builds)) {
    const url = await server.createDatabase(`ab_${tag.toLowerCase()}`);
    for (const host of ["a", "b"]) {
      const rt = join(root, `rt-${tag}-${host}`);
      mkdirSync(rt, { recursive: true, mode: 0o700 });
      const socket = join(rt, "agent.sock");
      const env = { PATH: process.env.PATH, HOME: join(root, "home"), LANG: "C", MAQET_DATABASE_URL: url };
      const child = spawn(process.execPath, [bin, "agent", "--host", host, "--socket", socket, "--runtime-dir", rt], {
        env,
        stdio: ["ignore", "ignore", "pipe"],
      });
      const agent = { child, rt, log: "" };
      child.stderr.on("data", (c) => {
        agent.log += c;
      });
      agents.push(agent);
      while (!agent.log.includes("listening on")) {
        if (child.exitCode !== null) throw new Error(agent.log);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (host === "a") sockets[tag] = socket;
    }
    const a = sockets[tag];
    for (const [name, host] of [
      ["local", "a"],
      ["remote", "b"],
    ]) {
      await ok(a, "POST", "/v1/vms", {
        config: `name: ${name}\nmemory: 32M\naccel: tcg\nargs: [-nodefaults]\n`,
        path: join(root, `${tag}-${name}.yaml`),
        host,
      });
      await ok(a, "POST", `/v1/vms/${name}/start`, {});
    }
  }
  const kinds = [];
  for (const tag of Object.keys(builds)) for (const name of ["local", "remote"]) kinds.push({ tag, name, samples: [] });
  for (let i = 0; i < 5; i++)
    for (const k of kinds) await ok(sockets[k.tag], "POST", `/v1/vms/${k.name}/qmp`, { command: "query-status" });
  for (let i = 0; i < rounds; i++) {
    const order = [...kinds];
    for (let j = order.length - 1; j > 0; j--) {
      const k = Math.floor(Math.random() * (j + 1));
      [order[j], order[k]] = [order[k], order[j]];
    }
    for (const k of order) {
      const t = performance.now();
      await ok(sockets[k.tag], "POST", `/v1/vms/${k.name}/qmp`, { command: "query-status" });
      k.samples.push(performance.now() - t);
    }
  }
  const p50 = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const out = {};
  for (const k of kinds) out[`${k.tag} ${k.name}`] = p50(k.samples);
  for (const [key, v] of Object.entries(out)) console.log(`${key.padEnd(12)} p50 ${v.toFixed(1)} ms`);
  for (const tag of Object.keys(builds))
    console.log(`${tag} overhead p50: ${(out[`${tag} remote`] - out[`${tag} local`]).toFixed(1)} ms`);
  console.log(
    `${rounds} rounds, ${server.durable ? "durable" : "fsync off"}; load ${load0.map((l) => l.toFixed(1)).join(" ")} -> ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
} finally {
  for (const ag of agents) {
    await stopAgent(ag.child, ag.rt).catch(() => {});
    // QEMU is detached from its agent: stopped agents leave their VMs running.
    for (const pid of qemuUnder(ag.rt)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
