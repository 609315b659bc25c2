// Measure: 3 hosts × N VMs on one PostgreSQL, commands from random hosts (issue 13's third goal:
// no lost command, no command run twice). Opt-in (`--only cluster-scale`): minutes, 150 QEMUs.
//
// Three agents `--host a|b|c` (own runtime directory and socket) on one PostgreSQL server started
// here with its defaults (durable: every commit waits for its WAL flush; MAQET_BENCH_FSYNC_OFF=1
// for the test clusters' settings). N firmware-only VMs per host (TCG, 32 MiB, -nodefaults; N =
// MAQET_BENCH_CLUSTER_VMS, default 50, 5 with --quick) are added through random agents, placed
// by the scheduler, and started from random agents; then a workload of commands (qmp
// query-status, start, stop --force, pause, resume) goes to random VMs through random agents'
// sockets (some through the CLI), MAQET_BENCH_CLUSTER_CONCURRENCY at a time. A command is
// routed when the agent asked is not the VM's host, local otherwise: both kinds are mixed in
// one random order, so machine noise falls on both.
//
// Each API command carries its own correlation id (Maqet-Correlation-Id); a CLI command's is
// found in its agent's request log (by the CLI's pid). Checked afterwards, from the store and
// from /proc (scanned every 250 ms all along), and the measure FAILS (exit 1, each violation
// named) unless all hold:
//   - every command got exactly one answer (an HTTP status / exit code: success or a typed error);
//   - a routed command has exactly one row in maqet_commands, finished, claimed once
//     (attempts = 1), its state matching the answer; a local one has none;
//   - no command's events appear twice (one vm.start-requested, vm.started, vm.stopped,
//     qmp.command-executed... per correlation id at most), nor in another VM's stream; a
//     successful qmp has its qmp.command-executed, a start that was requested has its outcome;
//   - in every VM's history no vm.started follows a vm.started without a vm.stopped between;
//   - every stream gapless (versions 0..n-1); no command left queued or running;
//   - no VM ever had two QEMU processes, or one on a host it is not placed on; at the end, each
//     VM running or paused in the store has exactly one QEMU (on its host), each stopped one none.
// MAQET_BENCH_CLUSTER_INJECT=duplicate|lost checks the checks: one command sent twice under one
// correlation id, or a command row no agent will claim; the measure must then fail.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  call,
  cliRequest,
  commandProblems,
  ok,
  pool,
  qemus,
  rssMiB,
  stateProblems,
  stopAgent,
  watchQemus,
} from "./cluster-checks.mjs";
import { cliEntry, runMeasure } from "./harness.mjs";
import { startPostgres } from "./postgres-server.mjs";
import { nowMs, row, summarize } from "./stats.mjs";

const HOSTS = ["a", "b", "c"];
const pick = (list) => list[Math.floor(Math.random() * list.length)];

/** The workload's mix: the operation, its API request and CLI arguments for VM `name`. */
const OPS = [
  {
    op: "qmp",
    weight: 45,
    api: (n) => ["POST", `/v1/vms/${n}/qmp`, { command: "query-status" }],
    cli: (n) => ["qmp", n, "query-status"],
  },
  { op: "start", weight: 20, api: (n) => ["POST", `/v1/vms/${n}/start`, {}], cli: (n) => ["start", n] },
  {
    op: "stop",
    weight: 15,
    api: (n) => ["POST", `/v1/vms/${n}/stop`, { force: true }],
    cli: (n) => ["stop", n, "--force"],
  },
  { op: "pause", weight: 10, api: (n) => ["POST", `/v1/vms/${n}/pause`, {}], cli: (n) => ["pause", n] },
  { op: "resume", weight: 10, api: (n) => ["POST", `/v1/vms/${n}/resume`, {}], cli: (n) => ["resume", n] },
];
const pickOp = () => {
  let r = Math.random() * OPS.reduce((s, o) => s + o.weight, 0);
  for (const o of OPS) {
    r -= o.weight;
    if (r < 0) return o;
  }
  return OPS[0];
};

await runMeasure(
  "cluster-scale",
  "Cluster at scale: 3 hosts × N VMs on one PostgreSQL, commands from random hosts",
  async (ctx) => {
    const perHost = Number(process.env.MAQET_BENCH_CLUSTER_VMS ?? (ctx.quick ? 5 : 50));
    const total = perHost * HOSTS.length;
    const commands = Number(process.env.MAQET_BENCH_CLUSTER_COMMANDS ?? total * 4);
    const concurrency = Number(process.env.MAQET_BENCH_CLUSTER_CONCURRENCY ?? 12);
    const cliShare = 0.05;
    const durable = process.env.MAQET_BENCH_FSYNC_OFF !== "1";
    const availableMiB =
      Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024;
    // A firmware-only TCG QEMU of 32 MiB holds ~50 MiB; leave 4 GiB to others.
    if (availableMiB < total * 50 + 4096) {
      throw new Error(`${total} VMs need ~${total * 50 + 4096} MiB, ${availableMiB.toFixed(0)} MiB available`);
    }
    const bin = cliEntry(ctx.dist);
    const pgServer = await startPostgres(ctx.pgPrefix ?? "/tmp/mqb-pg-", { durable });
    ctx.defer(() => pgServer.stop());
    const url = await pgServer.createDatabase("maqet_cluster_scale");
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    ctx.defer(() => db.end());

    const home = join(ctx.root, "home");
    mkdirSync(home, { recursive: true });
    const env = { PATH: process.env.PATH, HOME: home, LANG: "C", MAQET_DATABASE_URL: url };
    const agents = {};
    for (const host of HOSTS) {
      const rt = join(ctx.root, `rt-${host}`);
      mkdirSync(rt, { recursive: true, mode: 0o700 });
      const socket = join(rt, "agent.sock");
      const child = spawn(
        process.execPath,
        [bin, "agent", "--host", host, "--socket", socket, "--runtime-dir", rt, "--log-format", "json"],
        { env, stdio: ["ignore", "ignore", "pipe"] },
      );
      const agent = { host, child, socket, rt, log: "", rssIdle: Number.NaN, rssMax: 0 };
      child.stderr.on("data", (c) => {
        agent.log += c;
      });
      agents[host] = agent;
      ctx.defer(async () => {
        // SIGTERM: a clean stop stands the agent's fence guard down (a SIGKILL leaves it behind).
        await stopAgent(child, rt);
      });
      const t0 = nowMs();
      while (!agent.log.includes("listening on")) {
        if (nowMs() - t0 > 300_000 || child.exitCode !== null)
          throw new Error(`agent ${host} did not start: ${agent.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    ctx.defer(async () => {
      for (const q of qemus(ctx.root)) {
        try {
          process.kill(q.pid, "SIGKILL");
        } catch {}
      }
    });
    await new Promise((r) => setTimeout(r, 2000)); // start-up settles (projections caught up)
    for (const a of Object.values(agents)) a.rssIdle = rssMiB(a.child.pid);

    // /proc, all along: per VM the QEMU processes and their hosts; each agent's peak RSS.
    const ids = new Map(); // vmId -> name
    const hostOf = new Map(); // name -> placed host
    const watch = watchQemus(ctx.root, ids, hostOf, agents);
    ctx.defer(() => watch.stop());

    // Add: through random agents, three at a time; the scheduler places each.
    const tAdd = nowMs();
    await pool(
      3,
      Array.from({ length: total }, (_, i) => async () => {
        const name = `v${i}`;
        const config = { name, memory: "32M", accel: "tcg", args: ["-nodefaults"] };
        const added = await ok(agents[pick(HOSTS)].socket, "POST", "/v1/vms", { config });
        if (!HOSTS.includes(added.host)) throw new Error(`${name} was not placed: ${JSON.stringify(added)}`);
        ids.set(added.id, name);
        hostOf.set(name, added.host);
      }),
    );
    const addSeconds = (nowMs() - tAdd) / 1000;
    const names = [...hostOf.keys()];
    const spread = Object.fromEntries(HOSTS.map((h) => [h, names.filter((n) => hostOf.get(n) === h).length]));

    // The commands: every one recorded with its answer.
    const log = [];
    const send = async (phase, name, o, viaCli) => {
      const host = pick(HOSTS);
      const agent = agents[host];
      const entry = {
        phase,
        op: o.op,
        vm: name,
        from: host,
        routed: hostOf.get(name) !== host,
        via: viaCli ? "cli" : "api",
        cid: viaCli ? undefined : crypto.randomUUID(),
      };
      const t = nowMs();
      if (viaCli) {
        const child = spawn(process.execPath, [bin, "--agent", agent.socket, ...o.cli(name)], {
          env,
          stdio: ["ignore", "ignore", "pipe"],
        });
        entry.pid = child.pid;
        let stderr = "";
        child.stderr.on("data", (c) => {
          stderr += c;
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
        const [code, signal] = await new Promise((r) => child.once("exit", (c, s) => r([c, s])));
        clearTimeout(timer);
        entry.ms = nowMs() - t;
        if (signal) entry.lost = `CLI killed (${signal}) after ${(entry.ms / 1000).toFixed(0)} s`;
        entry.ok = code === 0;
        entry.code = code === 0 ? undefined : (/\b([A-Z][A-Z_]{3,})\b/.exec(stderr)?.[1] ?? `exit ${code}`);
      } else {
        const [method, path, body] = o.api(name);
        try {
          const r = await call(agent.socket, method, path, body, {
            "maqet-correlation-id": entry.cid,
            "maqet-source": "bench",
          });
          entry.ms = nowMs() - t;
          entry.ok = r.status < 300;
          if (!entry.ok) {
            try {
              entry.code = JSON.parse(r.text).error?.code ?? JSON.parse(r.text).code ?? `HTTP ${r.status}`;
            } catch {
              entry.code = `HTTP ${r.status}`;
            }
          }
        } catch (error) {
          entry.ms = nowMs() - t;
          entry.lost = String(error?.message ?? error);
        }
      }
      log.push(entry);
    };
    const start = OPS.find((o) => o.op === "start");
    const tStart = nowMs();
    await pool(
      concurrency,
      names.map((n) => () => send("start-all", n, start, false)),
    );
    const startSeconds = (nowMs() - tStart) / 1000;
    const running0 = (await ok(agents.a.socket, "GET", "/v1/vms")).filter((v) => v.state === "running").length;

    const loadBefore = loadavg()[0];
    const tWork = nowMs();
    await pool(
      concurrency,
      Array.from({ length: commands }, () => () => send("workload", pick(names), pickOp(), Math.random() < cliShare)),
    );
    const workSeconds = (nowMs() - tWork) / 1000;
    // The checks' own check (MAQET_BENCH_CLUSTER_INJECT): a command sent twice under one
    // correlation id (what a double run looks like), or a row no agent will ever claim (a lost
    // command). Either must make the measure fail.
    const inject = process.env.MAQET_BENCH_CLUSTER_INJECT;
    if (inject === "duplicate") {
      const name = names.find((n) => hostOf.get(n) !== "a");
      const cid = crypto.randomUUID();
      for (let i = 0; i < 2; i++) {
        await call(
          agents.a.socket,
          "POST",
          `/v1/vms/${name}/qmp`,
          { command: "query-status" },
          { "maqet-correlation-id": cid },
        );
      }
      log.push({ phase: "inject", op: "qmp", vm: name, from: "a", routed: true, via: "api", cid, ok: true, ms: 0 });
    } else if (inject === "lost") {
      const id = [...ids.keys()][0];
      await db.query(
        `insert into maqet_commands (id, vm_id, host, method, args, caller, idempotent)
         values (gen_random_uuid(), $1, 'nohost', 'qmp', '[]', '{"correlationId":"injected"}', false)`,
        [id],
      );
    }
    const loadAfter = loadavg()[0];
    // The store against /proc, once every command is answered.
    const finalStates = await ok(agents.a.socket, "GET", "/v1/vms");
    const settled = stateProblems(finalStates, qemus(ctx.root), hostOf);
    await watch.stop();
    const rss = Object.values(agents).map((a) => ({
      host: a.host,
      idle: a.rssIdle,
      now: rssMiB(a.child.pid),
      max: a.rssMax,
    }));

    // CLI commands: their correlation ids from the agents' request logs (by the CLI's pid).
    for (const e of log.filter((x) => x.via === "cli")) {
      const request = cliRequest(agents[e.from].log, e);
      e.cid = request?.correlationId;
      if (!e.ok && request?.code) e.code = request.code;
    }
    const { problems, commandRows } = await commandProblems({ log, db, ids, hostOf, watch });
    problems.push(...settled);
    const total_ = log.length;
    const summary = `${total_} commands (${log.filter((e) => e.via === "cli").length} via the CLI, ${log.filter((e) => e.routed).length} routed): ${log.filter((e) => e.ok).length} ok, ${log.filter((e) => !e.ok && !e.lost).length} typed errors, ${log.filter((e) => e.lost).length} unanswered; ${commandRows.length} routed-command rows`;
    if (problems.length > 0) {
      const shown = problems.slice(0, 40).join("\n  ");
      throw new Error(
        `LOST OR DUPLICATED COMMANDS / DOUBLE RUNS: ${problems.length} violation(s) (${summary}):\n  ${shown}${problems.length > 40 ? `\n  … ${problems.length - 40} more` : ""}`,
      );
    }

    // Figures.
    const work = log.filter((e) => e.phase === "workload" && e.via === "api");
    const lat = (filter) => summarize(work.filter(filter).map((e) => e.ms));
    const errorCodes = {};
    for (const e of log.filter((x) => !x.ok)) errorCodes[e.code] = (errorCodes[e.code] ?? 0) + 1;
    const rows = [];
    for (const op of ["qmp", "start", "stop", "pause", "resume"]) {
      const routed = lat((e) => e.op === op && e.routed);
      const local = lat((e) => e.op === op && !e.routed);
      if (routed.n > 0 && local.n > 0)
        rows.push(row(`${op} under load, routed (n ${routed.n} / ${local.n})`, "ms", routed, "same, local", local));
    }
    const allRouted = lat((e) => e.routed);
    const allLocal = lat((e) => !e.routed);
    rows.push(row("every workload command, routed", "ms", allRouted, "every one, local", allLocal));
    const startRouted = summarize(log.filter((e) => e.phase === "start-all" && e.routed).map((e) => e.ms));
    const startLocal = summarize(log.filter((e) => e.phase === "start-all" && !e.routed).map((e) => e.ms));
    rows.push(
      row(`start of all ${total} VMs (${concurrency} at a time), routed`, "ms", startRouted, "same, local", startLocal),
    );
    const cli = summarize(log.filter((e) => e.via === "cli").map((e) => e.ms));
    if (cli.n > 0) rows.push(row("workload command through the CLI", "ms", cli));
    const routedRows = commandRows.filter((r) => r.wait_ms !== null);
    rows.push(
      row(
        "routed command: queued until claimed (store clock)",
        "ms",
        summarize(routedRows.map((r) => Number(r.wait_ms))),
        "claimed until finished",
        summarize(routedRows.map((r) => Number(r.run_ms))),
      ),
    );
    // A routed qmp's time, split: queued until claimed and claimed until finished (the database's
    // clock), and the rest, the caller's side (owner lookup, insert, NOTIFY, the outcome's wake-up
    // and read) and the HTTP round trip; against a local qmp's whole time.
    const rowOf = new Map(routedRows.map((r) => [r.cid, r]));
    const routedQmp = work.filter((e) => e.op === "qmp" && e.routed && rowOf.has(e.cid));
    const localQmp = lat((e) => e.op === "qmp" && !e.routed);
    const part = (f) => summarize(routedQmp.map((e) => f(e, rowOf.get(e.cid))));
    rows.push(
      row(
        "routed qmp: queued until claimed",
        "ms",
        part((_, r) => Number(r.wait_ms)),
        "local qmp, whole",
        localQmp,
      ),
      row(
        "routed qmp: claimed until finished (on the owner)",
        "ms",
        part((_, r) => Number(r.run_ms)),
        "local qmp, whole",
        localQmp,
      ),
      row(
        "routed qmp: the rest (caller's side, HTTP)",
        "ms",
        part((e, r) => e.ms - Number(r.wait_ms) - Number(r.run_ms)),
        "local qmp, whole",
        localQmp,
      ),
    );
    rows.push(row("workload throughput", "commands/s", { median: commands / workSeconds, n: 1 }));
    for (const r of rss) {
      rows.push(
        row(
          `agent ${r.host} RSS, ${spread[r.host]} VMs (peak ${r.max.toFixed(0)})`,
          "MiB",
          { median: r.now, n: 1 },
          "with no VM",
          { median: r.idle, n: 1 },
        ),
      );
    }
    writeFileSync(join(ctx.root, "done"), "");
    // Everything stops (--force) through its own host, so the bench leaves nothing running.
    await pool(
      concurrency,
      names.map(
        (n) => () =>
          call(agents[hostOf.get(n)].socket, "POST", `/v1/vms/${n}/stop`, { force: true }).catch(() => undefined),
      ),
    );
    return {
      rows,
      notes: [
        `checks passed: ${summary}; every answer matched its row; no event of a command twice; histories gapless, no VM started twice without a stop; at the end each VM's state in the store matched its QEMU processes; /proc scanned ${watch.scans()} times: never two QEMUs for one VM, never one off its host`,
        `typed errors (expected: qmp/pause on a stopped VM and the like): ${JSON.stringify(errorCodes)}`,
        `placement of ${total} VMs added through random agents 3 at a time: ${JSON.stringify(spread)}; added in ${addSeconds.toFixed(1)} s; all started in ${startSeconds.toFixed(1)} s (${running0}/${total} running)`,
        `workload: ${commands} commands (qmp 45%, start 20%, stop --force 15%, pause 10%, resume 10%; ${cliShare * 100}% through the CLI), ${concurrency} at a time, ${workSeconds.toFixed(1)} s: ${(commands / workSeconds).toFixed(1)} commands/s`,
        `PostgreSQL ${pgServer.version}, ${durable ? "durable (its defaults: fsync, synchronous_commit, full_page_writes on)" : "fsync/synchronous_commit/full_page_writes off"}; load average ${loadBefore.toFixed(1)} before the workload, ${loadAfter.toFixed(1)} after (this measure's QEMUs and agents included)`,
      ],
    };
  },
);
