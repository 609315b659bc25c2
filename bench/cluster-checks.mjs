// The cluster-scale measure's checks (bench/cluster-scale.mjs): its HTTP client, the QEMU
// processes under a scratch directory, a /proc watcher, and the verdict on every command sent,
// from the store (command rows, events) and from /proc. Each violation is one sentence; the
// measure fails on any.
import { readdirSync, readFileSync } from "node:fs";
import { socketHttp } from "./harness.mjs";

/** One request on its own connection, with headers; rejects after `timeoutMs` (a lost answer). */
export function call(socket, method, path, body, headers = {}, timeoutMs = 300_000) {
  return socketHttp(socket, method, path, body, headers, timeoutMs);
}

export async function ok(socket, method, path, body) {
  const r = await call(socket, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.text ? JSON.parse(r.text) : null;
}

export const rssMiB = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
};

/** Every QEMU under `root`: `{ pid, host, args }` (host from its runtime directory rt-X). */
export function qemus(root) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let args;
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (!args.includes("qemu-system") || !args.includes(root)) continue;
    const host = new RegExp(`${root}/rt-([a-z])/`).exec(args)?.[1];
    found.push({ pid: Number(entry), host, args });
  }
  return found;
}

/** At most `limit` of `tasks` (functions) at a time. */
export async function pool(limit, tasks) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/** The events a command appends at most once each (per correlation id). */
const ONCE = [
  "vm.start-requested",
  "vm.started",
  "vm.start-failed",
  "vm.stop-requested",
  "vm.stopped",
  "vm.paused",
  "vm.resumed",
  "qmp.command-executed",
];

/**
 * Scans /proc every 250 ms until `stop()`: a VM (`ids`: vmId → name) with two QEMU processes at
 * once, or one on a host it is not placed on (`hostOf`: name → host), is a violation; each
 * agent's peak RSS goes to its `rssMax`.
 */
export function watchQemus(root, ids, hostOf, agents) {
  const violations = [];
  let scans = 0;
  let watching = true;
  const loop = (async () => {
    while (watching) {
      const byVm = new Map();
      for (const q of qemus(root)) {
        const id = [...ids.keys()].find((i) => q.args.includes(i));
        if (id === undefined) continue;
        byVm.set(id, [...(byVm.get(id) ?? []), q]);
      }
      for (const [id, list] of byVm) {
        const name = ids.get(id);
        if (list.length > 1) {
          violations.push(
            `${name}: ${list.length} QEMU processes at once (${list.map((q) => `${q.pid}@${q.host}`).join(", ")})`,
          );
        }
        for (const q of list) {
          if (q.host !== hostOf.get(name))
            violations.push(`${name}: QEMU ${q.pid} on host ${q.host}, placed on ${hostOf.get(name)}`);
        }
      }
      for (const a of Object.values(agents)) a.rssMax = Math.max(a.rssMax, rssMiB(a.child.pid) || 0);
      scans++;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    violations,
    scans: () => scans,
    stop: async () => {
      watching = false;
      await loop;
    },
  };
}

/** A CLI command's request in its agent's JSON request log (by the CLI's pid): `{ correlationId, code? }`. */
export function cliRequest(agentLog, entry) {
  for (const line of agentLog.split("\n")) {
    if (!line.startsWith("{")) continue;
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      continue;
    }
    if (l.pid === entry.pid && l.method === "POST" && l.path?.startsWith(`/v1/vms/${entry.vm}/`)) return l;
  }
  return undefined;
}

/**
 * Every violation of "each command answered once, run at most once, and only where its VM is",
 * as sentences. `log`: the commands sent (`{ op, vm, from, routed, via, cid, ok, code, lost }`);
 * `db`: a pg client on the cluster's database; `ids`: vmId → name; `hostOf`: name → host;
 * `watch`: the {@link watchQemus} that ran all along (stopped).
 */
export async function commandProblems({ log, db, ids, hostOf, watch }) {
  const problems = [];
  const say = (p) => problems.push(p);
  for (const e of log) {
    if (e.lost) say(`lost: ${e.op} ${e.vm} via ${e.via} from ${e.from}: ${e.lost}`);
    if (e.cid === undefined && !e.lost)
      say(`${e.op} ${e.vm} via cli from ${e.from} (pid ${e.pid}): not in the agent's request log`);
  }
  const { rows: commandRows } = await db.query(
    `select id, vm_id, host, method, state, attempts, claimed_by, caller->>'correlationId' as cid, error->>'code' as code,
            extract(epoch from (claimed_at - created_at)) * 1000 as wait_ms,
            extract(epoch from (finished_at - claimed_at)) * 1000 as run_ms
       from maqet_commands`,
  );
  const rowsByCid = new Map();
  for (const r of commandRows) rowsByCid.set(r.cid, [...(rowsByCid.get(r.cid) ?? []), r]);
  const { rows: events } = await db.query(
    `select stream_id, stream_version::int as v, type, metadata->>'correlationId' as cid
       from maqet_events order by stream_id, stream_version`,
  );
  const streams = [...new Set(events.map((ev) => ev.stream_id))];
  const streamIds = new Map([...ids].map(([id, name]) => [name, streams.find((s) => s.endsWith(id))]));
  const eventsByCid = new Map();
  for (const ev of events) if (ev.cid) eventsByCid.set(ev.cid, [...(eventsByCid.get(ev.cid) ?? []), ev]);
  for (const e of log) {
    if (e.cid === undefined) continue;
    const what = `${e.op} ${e.vm} (${e.routed ? "routed" : "local"}, via ${e.via} from ${e.from}, ${e.cid})`;
    const rows = rowsByCid.get(e.cid) ?? [];
    if (e.routed) {
      if (rows.length !== 1) say(`${what}: ${rows.length} command rows (want 1)`);
      for (const r of rows) {
        if (r.attempts !== 1) say(`${what}: claimed ${r.attempts} times`);
        if (r.host !== hostOf.get(e.vm) || r.claimed_by !== hostOf.get(e.vm))
          say(`${what}: row for ${r.host}, claimed by ${r.claimed_by}`);
        if (!e.lost && (r.state === "done") !== e.ok)
          say(`${what}: row ${r.state} but the answer was ${e.ok ? "ok" : e.code}`);
        if (!["done", "failed"].includes(r.state)) say(`${what}: row left ${r.state}`);
      }
    } else if (rows.length !== 0) {
      say(`${what}: a local command has ${rows.length} command rows`);
    }
    const evs = eventsByCid.get(e.cid) ?? [];
    for (const ev of evs)
      if (ev.stream_id !== streamIds.get(e.vm)) say(`${what}: ${ev.type} in stream ${ev.stream_id}`);
    for (const type of ONCE) {
      const n = evs.filter((ev) => ev.type === type).length;
      if (n > 1) say(`${what}: ${n} × ${type} (run twice)`);
    }
    const has = (t) => evs.some((ev) => ev.type === t);
    if (e.op === "qmp" && e.ok && !has("qmp.command-executed")) say(`${what}: answered ok, no qmp.command-executed`);
    if (has("vm.start-requested") && !has("vm.started") && !has("vm.start-failed"))
      say(`${what}: start requested, no outcome`);
    if (e.op === "start" && e.ok && has("vm.start-requested") && !has("vm.started"))
      say(`${what}: answered ok, not started`);
    if (has("vm.stop-requested") && !has("vm.stopped")) say(`${what}: stop requested, not stopped`);
  }
  for (const r of commandRows) {
    if (!["done", "failed"].includes(r.state)) say(`command ${r.id} (${r.method}) left ${r.state}`);
    if (!log.some((e) => e.cid === r.cid)) say(`command ${r.id} (${r.method}, ${r.cid}) was never sent by the bench`);
  }
  // Histories: gapless; never started twice without a stop between.
  const byStream = new Map();
  for (const ev of events) byStream.set(ev.stream_id, [...(byStream.get(ev.stream_id) ?? []), ev]);
  for (const [stream, evs] of byStream) {
    evs.forEach((ev, i) => {
      if (ev.v !== i) say(`${stream}: version ${ev.v} at position ${i} (a gap)`);
    });
    let up = false;
    for (const ev of evs) {
      if (ev.type === "vm.started") {
        if (up) say(`${stream}: vm.started at version ${ev.v} while already running`);
        up = true;
      } else if (ev.type === "vm.stopped") up = false;
    }
  }
  for (const p of watch.violations) say(p);
  if (watch.scans() < 3) say(`/proc was scanned only ${watch.scans()} times`);
  return { problems, commandRows };
}

/**
 * What the store says against what runs: every VM `running` or `paused` in `list` (GET /v1/vms)
 * has exactly one QEMU, on its host; every `stopped` one has none. `found`: {@link qemus}.
 */
export function stateProblems(list, found, hostOf) {
  const problems = [];
  for (const vm of list) {
    const mine = found.filter((q) => q.args.includes(vm.id));
    const want = vm.state === "running" || vm.state === "paused" ? 1 : vm.state === "stopped" ? 0 : undefined;
    if (want === undefined) problems.push(`${vm.name}: still ${vm.state} after every command was answered`);
    else if (mine.length !== want) problems.push(`${vm.name}: ${vm.state} in the store, ${mine.length} QEMU processes`);
    for (const q of mine) {
      if (q.host !== hostOf.get(vm.name))
        problems.push(`${vm.name}: QEMU ${q.pid} on ${q.host}, placed on ${hostOf.get(vm.name)}`);
    }
  }
  return problems;
}

/**
 * Stops an agent: SIGTERM (a clean stop, which stands its fence guard down), SIGKILL after 20 s;
 * then any fence guard still naming its runtime directory `rt` (one whose agent was killed -9).
 */
export async function stopAgent(child, rt) {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (args.includes("fence-guard") && args.includes(`${rt}/`)) process.kill(Number(entry), "SIGKILL");
    } catch {}
  }
}
