/**
 * The cluster chaos test's tools (test/e2e/cluster-chaos.qemu.test.ts): the /proc watch for a VM
 * running twice, how long a fault lasts, the hosts' states by the database's clock, and the
 * evidence a failure keeps.
 *
 * @example
 * ```ts
 * const watch = watchQemuCounts(() => ids.values());
 * // ... chaos ...
 * await watch.stop();
 * expect(watch.max.get(id) ?? 0).toBeLessThanOrEqual(1);
 * ```
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type Kysely, sql } from "kysely";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { HOST_STATE_SQL, type HostState } from "../../src/events/host-registry.ts";
import type { Database } from "../../src/events/schema.ts";
import { type QemuSeen, qemuProcesses } from "./qemu-processes.ts";

/**
 * Watches /proc every `everyMs` until stopped: the most QEMU processes seen at once for each id,
 * what was seen each time an id had more than one (the first 20 times), and the longest time
 * between two passes (how closely it looked).
 */
export function watchQemuCounts(
  ids: () => Iterable<string>,
  everyMs = 25,
): {
  max: Map<string, number>;
  doubles: Array<{ at: string; id: string; seen: QemuSeen[] }>;
  sweeps(): number;
  longestGapMs(): number;
  stop(): Promise<void>;
} {
  const max = new Map<string, number>();
  const doubles: Array<{ at: string; id: string; seen: QemuSeen[] }> = [];
  let watching = true;
  let sweeps = 0;
  let longestGapMs = 0;
  let last = 0;
  const done = (async () => {
    while (watching) {
      const now = performance.now();
      if (last) longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
      for (const [id, seen] of qemuProcesses([...ids()])) {
        max.set(id, Math.max(max.get(id) ?? 0, seen.length));
        if (seen.length > 1 && doubles.length < 20) doubles.push({ at: new Date().toISOString(), id, seen });
      }
      sweeps++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    max,
    doubles,
    sweeps: () => sweeps,
    longestGapMs: () => Math.round(longestGapMs),
    stop: async () => {
      watching = false;
      await done;
    },
  };
}

/** CPU seconds (user + system) of a live process, and of its children it has reaped, from /proc. */
export function cpuSeconds(pid: number | string = "self"): { own: number; children: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    // Fields 14-17 of proc(5) (utime stime cutime cstime) are 11-14 here; 100 ticks a second on Linux.
    return { own: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
  } catch {
    return { own: 0, children: 0 };
  }
}

/** Each host's state by the database's clock, as `maqet host ls` computes it; undefined while the server restarts. */
export async function hostStates(db: Kysely<Database>): Promise<Map<string, HostState> | undefined> {
  const result = await sql<{ name: string; state: HostState }>`
    select h.name, ${sql.raw(HOST_STATE_SQL)} as state from maqet_hosts h`
    .execute(db)
    .catch(() => undefined);
  return result && new Map(result.rows.map((r) => [r.name, r.state]));
}

/** Each VM's owner (vm id to host), from the database; undefined while the server restarts. */
export async function owners(db: Kysely<Database>): Promise<Map<string, string> | undefined> {
  const result = await sql<{ vm_id: string; host: string }>`select vm_id, host from maqet_placements`
    .execute(db)
    .catch(() => undefined);
  return result && new Map(result.rows.map((r) => [r.vm_id, r.host]));
}

/**
 * Whether the VM has a routed command running at its owner (claimed), or with `queued` too, one
 * waiting for it; false while the server restarts.
 */
export async function claimed(db: Kysely<Database>, vmId: string, queued = false): Promise<boolean> {
  const states = queued ? ["running", "queued"] : ["running"];
  const result = await sql<{ n: number }>`
    select count(*)::int as n from maqet_commands where vm_id = ${vmId} and state = any(${states})`
    .execute(db)
    .catch(() => undefined);
  return (result?.rows[0]?.n ?? 0) > 0;
}

/** Runs the functions given to it one at a time, in call order (a failed one does not stop the next). */
export function oneAtATime(): <T>(fn: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = last.then(fn);
    last = run.catch(() => undefined);
    return run;
  };
}

/**
 * How long each HA recovery (`vm.recovering`) took to the VM's next `vm.started`, from the moment
 * its host was struck: the last strike of that host before the recovery (faults overlap: a server
 * restart since does not restart the clock), or the last server restart (`host: "*"`) when that
 * host was not struck. Infinity when the VM never started again or no strike explains it.
 */
export function haRestartTimes(
  events: ReadonlyArray<{ stream_id: string; type: string; from: string | null; at: Date }>,
  strikes: ReadonlyArray<{ host: string; at: number }>,
  ids: ReadonlyMap<string, string>,
): Array<{ vm: string; ms: number }> {
  return events.flatMap((e, i) => {
    if (e.type !== "vm.recovering") return [];
    const before = strikes.filter((s) => s.at <= new Date(e.at).getTime());
    const struckAt = (before.filter((s) => s.host === e.from).at(-1) ?? before.filter((s) => s.host === "*").at(-1))
      ?.at;
    const started = events.slice(i + 1).find((n) => n.stream_id === e.stream_id && n.type === "vm.started");
    const vm = [...ids].find(([, id]) => `vm-${id}` === e.stream_id)?.[0] ?? e.stream_id;
    return [{ vm, ms: started && struckAt ? new Date(started.at).getTime() - struckAt : Number.POSITIVE_INFINITY }];
  });
}

/**
 * How long a fault lasts, by class, for agents run with `--lease-ttl 3 --fence-after 2` (renewed
 * every second): `short` ends while the lease still holds; `mid` outlasts the lease (the host
 * turns suspected, its agent stops taking commands) but not the self-fence at TTL + fence-after
 * (4-5 s after the strike, by when the last renewal began); `long` outlasts the fencing the other
 * hosts confirm (expiry + fence-after + TTL/2: 5.5-6.5 s after the strike, seen within a second),
 * so an `ha: restart` VM of that host is restarted elsewhere. A kill's time is the agent's
 * downtime before it is started again (its start-up, about a second, comes on top).
 */
export function faultMs(fault: "kill" | "freeze", cls: FaultClass): number {
  const [from, to] = FAULT_MS[fault][cls];
  return from + Math.random() * (to - from);
}
export type FaultClass = "short" | "mid" | "long";
export const FAULT_CLASSES: readonly FaultClass[] = ["short", "mid", "long"];
const FAULT_MS = {
  kill: { short: [200, 1200], mid: [2000, 2800], long: [6500, 8500] },
  freeze: { short: [300, 2000], mid: [3100, 3900], long: [7500, 9000] },
} as const;

/** One command's answer, as the chaos test records it. */
export interface Answer {
  cmd: string;
  code: number | null;
  error?: string;
  stderr?: string;
  ms?: number;
}

/**
 * Sends start, stop --force or qmp query-status of random VMs from random live hosts, one at a
 * time, until stopped; every answer goes to `answers`.
 */
export function randomCommands(
  hosts: readonly string[],
  vms: ReadonlyArray<{ name: string }>,
  live: (host: string) => boolean,
  cli: (host: string, args: string[]) => Promise<{ code: number | null; stderr?: string }>,
  answers: Answer[],
): { stop(): Promise<void> } {
  const random = <T>(list: readonly T[]): T | undefined => list[Math.floor(Math.random() * list.length)];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const from = random(hosts.filter(live));
      if (from === undefined) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const vm = random(vms)!.name;
      const cmd = random([
        ["start", vm],
        ["stop", vm, "--force"],
        ["qmp", vm, "query-status"],
      ])!;
      const sent = Date.now();
      const r = await cli(from, cmd).catch((error: unknown) => ({ code: null, error }));
      answers.push({ cmd: `${from}: ${cmd.join(" ")}`, code: r.code, ...whyNoAnswer(r), ...said(r, sent) });
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** The routed commands and the VM/host facts, kept beside the agents' logs for a failure's evidence. */
export async function dumpCommands(url: string, dir: string): Promise<void> {
  const db = await openPgDatabase({ url }).catch(() => undefined);
  if (!db) return;
  try {
    const { rows: commands } = await sql`select * from maqet_commands order by created_at`.execute(db.db);
    const { rows: events } = await sql`
      select global_position, stream_id, stream_version, type, data, recorded_at from maqet_events
       order by global_position`.execute(db.db);
    await writeFile(join(dir, "commands.json"), JSON.stringify(commands, null, 1));
    await writeFile(join(dir, "events.json"), JSON.stringify(events, null, 1));
  } catch {
    // evidence only
  } finally {
    await db.close();
  }
}

/** When it was sent, how long it took, and (a failure) the first line of what it printed on stderr. */
export function said(r: { code: number | null; stderr?: string }, sent: number): { stderr?: string; ms: number } {
  const line = r.code !== 0 && r.stderr ? r.stderr.split("\n")[0]!.slice(0, 300) : undefined;
  return { ms: Date.now() - sent, ...(line ? { stderr: line } : {}) };
}

/** What the CLI runner said when a command got no exit code (timed out, killed by a signal...): the failure says why. */
export function whyNoAnswer(r: { code: number | null; error?: unknown; signal?: unknown }): { error?: string } {
  if (r.code !== null) return {};
  if ("error" in r) return { error: String((r.error as Error)?.message ?? r.error).slice(0, 500) };
  // Ended by a signal the runner did not send (its own time limit throws, above).
  return { error: `the CLI process was killed by ${String(r.signal)}` };
}
