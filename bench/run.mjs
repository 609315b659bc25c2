#!/usr/bin/env node
// `npm run bench`: runs each measure in its own Node process against a snapshot of dist/ and
// prints one table per measure (median (p95), the baseline measured in the same run, the ratio).
//
//   node bench/run.mjs [--quick] [--only qmp,vm,store,cli,memory,migration] [--dist DIR | --rev REV] [--json FILE]
//
// --rev REV measures a commit instead of ./dist: `git archive REV` into .tmp/bench-src-<rev>,
// built there with the project's tsc (kept for the next run). Use it when the checkout is being
// edited, so that several runs measure the same code.
// --quick: fewer samples, about a minute; the full run takes two to four minutes. Every QEMU and
// PostgreSQL process the bench starts lives under one scratch directory (/tmp/mqb-XXXXXX); at the
// end any process whose command line still names it is killed, and the run says so.
import { execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { basename, join, resolve } from "node:path";
import { benchDir, formatResult, projectRoot } from "./harness.mjs";

const MEASURES = [
  { name: "qmp", file: "qmp-roundtrip.mjs" },
  { name: "vm", file: "vm-start.mjs" },
  { name: "store", file: "event-store.mjs" },
  { name: "cli", file: "cli-cost.mjs" },
  { name: "agent", file: "agent.mjs" },
  // Opt-in, minutes and ~8 GiB of QEMU at 200 VMs: --only agent-scale.
  ...(process.argv.some((a) => a.includes("agent-scale")) ? [{ name: "agent-scale", file: "agent-scale.mjs" }] : []),
  // Opt-in, 2 agents and 3 QEMUs on two PostgreSQL servers, waits for a host's death: --only cluster.
  ...(optedIn("cluster") ? [{ name: "cluster", file: "cluster.mjs", timeoutS: { quick: 300, full: 600 } }] : []),
  // Opt-in, minutes and 150 QEMUs (3 agents × 50 VMs): --only cluster-scale.
  ...(optedIn("cluster-scale")
    ? [{ name: "cluster-scale", file: "cluster-scale.mjs", timeoutS: { quick: 600, full: 1800 } }]
    : []),
  { name: "memory", file: "memory.mjs" },
  { name: "subscriptions", file: "subscription-latency.mjs" },
  { name: "emmett", file: "emmett-compare.mjs" }, // installs bench/node_modules (npm ci --prefix bench) if missing
  // Boots the test guest (built once per machine, test/fixtures/guest) four times under TCG: 2-4 min.
  { name: "migration", file: "migration.mjs", timeoutS: { quick: 300, full: 600 } },
  ...(process.argv.some((a) => a.includes("projections"))
    ? [
        { name: "projections", file: "projection-rebuild.mjs" },
        { name: "projections-pglite", file: "projection-rebuild-pglite.mjs" },
      ]
    : []), // opt-in, minutes: --projections or --only projections,projections-pglite
];

/** Whether `--only` names `measure` (an opt-in measure runs only when asked for by name). */
function optedIn(measure) {
  return (option("only") ?? "").split(",").includes(measure);
}

function option(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const quick = process.argv.includes("--quick");
const only = option("only")?.split(",");
const rev = option("rev");
const distSource = rev ? buildRevision(rev) : resolve(option("dist") ?? join(projectRoot, "dist"));
const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\..*/, "");
const jsonOut = resolve(option("json") ?? join(projectRoot, ".tmp", "bench", `results-${stamp}.json`));
// --timeout S: a loaded machine (load 20+) needs longer than the defaults.
const measureTimeoutMs = (Number(option("timeout")) || (quick ? 120 : 240)) * 1000;

if (!existsSync(join(distSource, "src", "mod.js"))) {
  console.error(`bench: no build in ${distSource}. Run \`npm run build\` first (or pass --dist DIR).`);
  process.exit(2);
}

/** Exports and builds `rev`; returns its dist directory. */
function buildRevision(revision) {
  const sha = execFileSync("git", ["-C", projectRoot, "rev-parse", "--short", `${revision}^{commit}`], {
    encoding: "utf8",
  }).trim();
  const dir = join(projectRoot, ".tmp", `bench-src-${sha}`);
  if (!existsSync(join(dir, "dist", "src", "mod.js"))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = "src migrations package.json tsconfig.json tsconfig.build.json scripts";
    execFileSync("sh", ["-c", `git -C '${projectRoot}' archive ${sha} ${files} | tar -x -C '${dir}'`]);
    try {
      if (existsSync(join(dir, "scripts/build.mjs"))) {
        // tsc and the bundled `maqet` (dist/src/bin/), with this checkout's node_modules.
        symlinkSync(join(projectRoot, "node_modules"), join(dir, "node_modules"));
        execFileSync(process.execPath, [join(dir, "scripts/build.mjs")], { cwd: dir, stdio: "inherit" });
      } else {
        const tsc = join(projectRoot, "node_modules/typescript/bin/tsc");
        execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: dir, stdio: "inherit" });
      }
    } catch {
      rmSync(dir, { recursive: true, force: true });
      console.error(`bench: commit ${sha} does not build; pick another with --rev.`);
      process.exit(2);
    }
  }
  return join(dir, "dist");
}

const quiet = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
};
function machine() {
  const pgRoot = "/usr/lib/postgresql";
  const pgVersions = existsSync(pgRoot) ? readdirSync(pgRoot).sort((a, b) => Number(b) - Number(a)) : [];
  const pg = pgVersions[0] ? quiet(join(pgRoot, pgVersions[0], "bin", "postgres"), ["--version"]) : "none";
  const pglite = JSON.parse(readFileSync(join(projectRoot, "node_modules/@electric-sql/pglite/package.json"), "utf8"));
  const dirty = quiet("git", ["-C", projectRoot, "status", "--porcelain", "--", "src", "migrations"]);
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    qemu: quiet("/usr/bin/qemu-system-x86_64", ["--version"]).split("\n")[0],
    postgres: pg,
    pglite: pglite.version,
    commit: rev
      ? basename(resolve(distSource, "..")).replace("bench-src-", "")
      : quiet("git", ["-C", projectRoot, "rev-parse", "--short", "HEAD"]),
    uncommittedSrc: !rev && dirty !== "" && dirty !== "unknown",
    dist: distSource,
  };
}

/** Pids (not ours) whose command line contains `needle`. */
function processesNaming(needle) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      if (cmd.includes(needle)) found.push({ pid: Number(entry), cmd });
    } catch {}
  }
  return found;
}

/** --timeout, or the measure's own (longer) `timeoutS` for this mode. */
function timeoutOf(measure) {
  return Math.max(measureTimeoutMs, (measure.timeoutS?.[quick ? "quick" : "full"] ?? 0) * 1000);
}

function runChild(measure, ctx) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(benchDir, measure.file)], {
      env: { ...process.env, BENCH_CTX: JSON.stringify(ctx) },
      stdio: "inherit",
    });
    current = child;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 15_000).unref();
    }, timeoutOf(measure));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolvePromise({ code, signal, timedOut });
    });
  });
}

let current;
const root = mkdtempSync("/tmp/mqb-");
const snapshot = join(projectRoot, ".tmp", `bench-dist-${process.pid}`);
let cleaned = false;
async function cleanup() {
  if (cleaned) return [];
  cleaned = true;
  // A measure's PostgreSQL watchdog needs a second or two after its process is gone.
  let left = processesNaming(root);
  for (let i = 0; i < 50 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesNaming(root);
  }
  for (const p of left) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {}
  }
  rmSync(root, { recursive: true, force: true });
  for (const entry of readdirSync("/tmp")) {
    if (entry.startsWith(`${basename(root)}-pg-`)) rmSync(join("/tmp", entry), { recursive: true, force: true });
  }
  rmSync(snapshot, { recursive: true, force: true });
  return left;
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    current?.kill("SIGTERM");
    setTimeout(() => cleanup().finally(() => process.exit(130)), 2000);
  });
}

const started = Date.now();
mkdirSync(join(projectRoot, ".tmp"), { recursive: true });
// Tests rebuild dist/ while they run; measure one fixed copy (its node_modules resolve upward),
// with its package.json beside it as an install has (the agent reads its version there: without
// it, "unknown", and every CLI call handed to the agent would be refused as another version's).
cpSync(distSource, join(snapshot, "dist"), { recursive: true });
cpSync(join(distSource, "..", "package.json"), join(snapshot, "package.json"));
const info = machine();
const results = [];
console.log(`# maqet bench${quick ? " (--quick)" : ""}, ${new Date().toISOString()}`);
console.log(
  `${info.cpus} CPUs (${info.cpuModel}), ${info.memoryGiB} GiB; Node ${info.node}; ${info.qemu}; ` +
    `${info.postgres}; PGlite ${info.pglite}; maqet ${info.commit}${info.uncommittedSrc ? " + uncommitted src/" : ""}`,
);
const loadavgStart = loadavg();
console.log(`load average at start: ${loadavgStart.map((l) => l.toFixed(2)).join(" ")}`);
console.log("ratio = maqet / baseline, in the row's unit (ms: lower is better; events/s: higher is better)\n");

let failed = 0;
for (const measure of MEASURES) {
  if (only && !only.includes(measure.name)) continue;
  const resultFile = join(root, `${measure.name}.json`);
  const ctx = {
    quick,
    dist: join(snapshot, "dist"),
    root: join(root, measure.name),
    pgPrefix: `${root}-pg-`,
    resultFile,
  };
  mkdirSync(ctx.root, { mode: 0o700 });
  const t0 = Date.now();
  const exit = await runChild(measure, ctx);
  let result;
  try {
    result = JSON.parse(readFileSync(resultFile, "utf8"));
  } catch {
    result = {
      name: measure.name,
      title: measure.file,
      error: exit.timedOut ? `timed out after ${timeoutOf(measure) / 1000} s` : `exited ${exit.code ?? exit.signal}`,
    };
  }
  result.seconds = (Date.now() - t0) / 1000;
  result.loadavgAfter = loadavg()[0];
  if (result.error) failed++;
  results.push(result);
  const took = `(${result.seconds.toFixed(1)} s, load average ${result.loadavgAfter.toFixed(2)})`;
  console.log(`${formatResult(result)}\n  ${took}\n`);
}

const leftovers = await cleanup();
const seconds = (Date.now() - started) / 1000;
console.log(
  leftovers.length === 0
    ? "leftover QEMU/PostgreSQL processes: none"
    : `leftover processes killed: ${leftovers.map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`).join("; ")}`,
);
mkdirSync(resolve(jsonOut, ".."), { recursive: true });
const report = { date: new Date().toISOString(), quick, machine: info, loadavgStart, seconds, results };
writeFileSync(jsonOut, JSON.stringify(report, null, 2));
console.log(`total ${seconds.toFixed(0)} s; results written to ${jsonOut}`);
process.exit(failed > 0 || leftovers.length > 0 ? 1 : 0);
