/**
 * Bounded chaos on a cluster of three real agents (one PostgreSQL, real QEMU), aimed: each round
 * sends one command (start, stop, qmp, or an `add` that places a new VM, in turn) and strikes
 * while it is in flight — for start/stop/qmp, the moment the VM's owner has claimed the routed
 * command (or after 3 s), and the owner is the one struck — with a random fault: its agent
 * killed (-9, started again 0.5-4.5 s later), frozen (SIGSTOP for 1-6 s, then SIGCONT), or
 * PostgreSQL restarted (immediate: every connection drops; only on a server of this file's own).
 * Meanwhile other commands (start, stop, qmp) go to random VMs from random hosts. Checked all along from /proc: no VM ever has two QEMU processes. Checked after: every
 * command got an answer, no routed command is left queued or running, none that is unsafe to run
 * again ran twice, every stream is gapless, and every `ha: restart` VM that was meant to run runs.
 * Rounds: MAQET_CHAOS_ROUNDS (default 6; the issue's acceptance run is 30).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { qemuPidsOf } from "../support/agent-helpers.ts";
import { waitFor } from "../support/cli-runner.ts";
import { type SimCluster, type SimHost, startCluster } from "../support/cluster-harness.ts";
import { createTestDatabase, startTestPostgres, type TestPostgres } from "../support/postgres-cluster.ts";

const ROUNDS = Number(process.env.MAQET_CHAOS_ROUNDS ?? 6);
/** An HA VM runs again within this of its host's death (issue 13's goal). */
const HA_GOAL_MS = 60_000;
const HOSTS = ["a", "b", "c"];
const VMS = [
  { name: "h1", ha: true, host: "a" },
  { name: "h2", ha: true, host: "b" },
  { name: "p1", ha: false, host: "c" },
  { name: "p2", ha: false, host: "a" },
];
const vmYaml = (name: string, ha: boolean) =>
  `name: ${name}\nbinary: /usr/bin/qemu-system-x86_64\naccel: tcg\nmemory: 64M\n${ha ? "ha: restart\n" : ""}`;

const databaseUrl = inject("databaseUrl");
// PostgreSQL restarts are a chaos action only on a server of this file's own (never the shared one).
const ownServer = !process.env.MAQET_TEST_DATABASE_URL;

if (!databaseUrl)
  console.log("cluster chaos: skipped: no PostgreSQL server (many hosts need one; see docs/testing.md)");

describe.skipIf(!databaseUrl)(
  `cluster chaos: ${ROUNDS} rounds of kill -9, SIGSTOP and PostgreSQL restarts`,
  { timeout: 1_200_000 },
  () => {
    let cluster: SimCluster;
    let url = "";
    let dropDb: () => Promise<void>;
    let server: TestPostgres | undefined;
    const ids = new Map<string, string>();
    const maxRunning = new Map<string, number>();
    let watching = true;
    let watcher: Promise<void> | undefined;
    const frozen = new Set<string>();

    beforeAll(async () => {
      // Durable commits: a server that forgets commits it acknowledged (the throwaway default,
      // synchronous_commit off) is one no coordination survives, and not the one maqet asks for
      // (docs/cluster.md): its restarts lost finished commands' outcomes and VMs' facts here.
      server = ownServer ? await startTestPostgres({ durableCommits: true }) : undefined;
      const db = await createTestDatabase(server?.url ?? databaseUrl);
      url = db.url;
      dropDb = db.drop;
      cluster = await startCluster(HOSTS, { url, agentArgs: () => ["--lease-ttl", "3", "--fence-after", "2"] });
      // Restarts of a server that forgets acknowledged commits would test something else (above).
      if (server) for (const host of cluster.hosts.values()) expect(host.log).not.toContain("synchronous_commit = off");
      for (const vm of VMS) {
        await writeFile(join(cluster.home, `${vm.name}.yaml`), vmYaml(vm.name, vm.ha));
        const added = await cluster.cli("a", ["add", `${vm.name}.yaml`, "--host", vm.host, "--json"]);
        expect(added.code, added.stderr).toBe(0);
        ids.set(vm.name, added.json<{ id: string }>().id);
        const started = await cluster.cli("b", ["start", vm.name]);
        expect(started.code, started.stderr).toBe(0);
      }
      watcher = (async () => {
        while (watching) {
          for (const id of ids.values()) {
            maxRunning.set(id, Math.max(maxRunning.get(id) ?? 0, (await qemuPidsOf(id)).length));
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
    }, 600_000);
    afterAll(async () => {
      watching = false;
      await watcher;
      await cluster?.stop();
      if (process.env.MAQET_CLUSTER_LOGS && url) await dumpCommands(url, process.env.MAQET_CLUSTER_LOGS);
      await dropDb?.();
      await server?.stop();
    }, 120_000);

    it("no double run, no lost or duplicated command, gapless histories, HA VMs running again", async () => {
      const random = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
      const answers: Array<{ cmd: string; code: number | null; error?: string; stderr?: string; ms?: number }> = [];
      let stop = false;
      const load = (async () => {
        while (!stop) {
          const from = random(
            HOSTS.filter((h) => {
              const p = cluster.hosts.get(h)!.process;
              return !frozen.has(h) && p.exitCode === null && p.signalCode === null;
            }),
          );
          if (from === undefined) {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
          const vm = random(VMS).name;
          const cmd = random([
            ["start", vm],
            ["stop", vm, "--force"],
            ["qmp", vm, "query-status"],
          ]);
          const sent = Date.now();
          const r = await cluster.cli(from, cmd).catch((error: unknown) => ({ code: null, error }));
          answers.push({ cmd: `${from}: ${cmd.join(" ")}`, code: r.code, ...whyNoAnswer(r), ...said(r, sent) });
        }
      })();
      const live = (h: string) => {
        const p = cluster.hosts.get(h)!.process;
        return !frozen.has(h) && p.exitCode === null && p.signalCode === null;
      };
      const probe = await openPgDatabase({ url });
      // The VM's owner, and whether it has a routed command running there (claimed), from the
      // database; undefined while the server restarts.
      const ownerOf = async (vmId: string) =>
        (
          await sql<{ host: string }>`select host from maqet_placements where vm_id = ${vmId}`
            .execute(probe.db)
            .catch(() => undefined)
        )?.rows[0]?.host;
      const claimed = async (vmId: string) =>
        ((
          await sql<{
            n: number;
          }>`select count(*)::int as n from maqet_commands where vm_id = ${vmId} and state = 'running'`
            .execute(probe.db)
            .catch(() => undefined)
        )?.rows[0]?.n ?? 0) > 0;
      const faults = server ? (["kill", "freeze", "restart-db"] as const) : (["kill", "freeze"] as const);
      // When each host was struck (killed, frozen, or all at a server restart): an HA VM's
      // restart time runs from there.
      const strikes: Array<{ host: string; at: number; fault: string }> = [];
      const aimed: Array<{
        round: number;
        action: string;
        fault: string;
        victim: string;
        from: string;
        code: number | null;
      }> = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const action = (["start", "stop", "qmp", "placement"] as const)[round % 4]!;
          const fault = random(faults);
          let victim: string;
          let cmd: string[];
          let vmId: string | undefined;
          if (action === "placement") {
            victim = random(HOSTS);
            const name = `n${round}`;
            await writeFile(join(cluster.home, `${name}.yaml`), vmYaml(name, false));
            cmd = ["add", `${name}.yaml`, "--json"];
          } else {
            const vm = random(VMS).name;
            vmId = ids.get(vm)!;
            victim = (await ownerOf(vmId)) ?? random(HOSTS);
            cmd =
              action === "start"
                ? ["start", vm]
                : action === "stop"
                  ? ["stop", vm, "--force"]
                  : ["qmp", vm, "query-status"];
          }
          const from = random(HOSTS.filter((h) => h !== victim && live(h))) ?? random(HOSTS.filter(live));
          if (from === undefined) continue;
          const sent = Date.now();
          const issued = cluster.cli(from, cmd).catch((error: unknown) => ({ code: null, error, stdout: "" }));
          // Strike while it is in flight: at the owner's claim (routed commands), or a moment after an add.
          if (vmId !== undefined) {
            await waitFor(() => claimed(vmId), 3000).catch(() => undefined);
          } else {
            await new Promise((r) => setTimeout(r, Math.random() * 300));
          }
          const host: SimHost = cluster.hosts.get(victim)!;
          if (fault === "restart-db") {
            // Every host's lease: a restart long enough fences them all (then their HA VMs move).
            strikes.push({ host: "*", at: Date.now(), fault });
            await server!.restart();
          } else if (fault === "kill") {
            strikes.push({ host: victim, at: Date.now(), fault });
            await cluster.killAgent(victim);
            await new Promise((r) => setTimeout(r, 500 + Math.random() * 4000));
            await cluster.startAgent(victim);
          } else {
            frozen.add(victim);
            strikes.push({ host: victim, at: Date.now(), fault });
            host.process.kill("SIGSTOP");
            await new Promise((r) => setTimeout(r, 1000 + Math.random() * 5000));
            host.process.kill("SIGCONT");
            frozen.delete(victim);
          }
          const r = await issued;
          answers.push({ cmd: `${from}: ${cmd.join(" ")} (aimed)`, code: r.code, ...whyNoAnswer(r), ...said(r, sent) });
          aimed.push({ round, action, fault, victim, from, code: r.code });
          if (action === "placement" && r.code === 0) {
            const added = JSON.parse(r.stdout) as { id: string };
            ids.set(`n${round}`, added.id);
          }
          await new Promise((r) => setTimeout(r, 2000));
        }
      } finally {
        await probe.close();
      }
      console.log(
        `chaos rounds: ${aimed.map((a) => `${a.round}:${a.action}/${a.fault}@${a.victim} from ${a.from} -> ${a.code}`).join("; ")}`,
      );
      stop = true;
      await load;
      if (process.env.MAQET_CLUSTER_LOGS) {
        await writeFile(
          join(process.env.MAQET_CLUSTER_LOGS, "answers.json"),
          JSON.stringify({ answers, strikes }, null, 1),
        );
      }

      // Every command got an answer (an exit code: success or a typed error), none hung.
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.filter((a) => a.code === null)).toEqual([]);

      // Settled: every host up again; every HA VM that is meant to run runs (within the goal).
      // Re-joining takes a lease period or two after a freeze or a kill; on a machine at load 8-10
      // (a full suite beside it) 60 s was not always enough (it took 36 s for the whole test at
      // load 3), so the settle gets 180 s and its failure names each host's last state.
      let lastHosts = "";
      await waitFor(
        async () => {
          const hosts = (await cluster.cli("a", ["host", "ls", "--json"])).json<
            Array<{ name: string; state: string }>
          >();
          lastHosts = hosts.map((h) => `${h.name}=${h.state}`).join(" ");
          return hosts.every((h) => h.state === "up");
        },
        180_000,
        "every host up",
      ).catch((error: unknown) => {
        throw new Error(`not every host came back up: ${lastHosts}`, { cause: error });
      });
      for (const vm of VMS.filter((v) => v.ha)) {
        await cluster.cli("a", ["start", vm.name]);
        await waitFor(async () => (await qemuPidsOf(ids.get(vm.name)!)).length === 1, 60_000, `${vm.name} running`);
      }

      const db = await openPgDatabase({ url });
      let haTimes: Array<{ vm: string; ms: number }> = [];
      try {
        // No routed command lost: every one queued ends (one whose caller gave up on it — a
        // server restart while it waited, its agent killed — still runs: a claim re-queued at a
        // re-join is claimed again, an orphan is swept). Once every host is up again a queued
        // command waits for at most the commands of its VM before it, so it ends within a
        // lease period and a few commands; 60 s at load 30.
        let open: Array<{ method: string; host: string; state: string; vm_id: string }> = [];
        await waitFor(
          async () => {
            open = (
              await sql<{ method: string; host: string; state: string; vm_id: string }>`
              select method, host, state, vm_id from maqet_commands where state in ('queued', 'running')`.execute(db.db)
            ).rows;
            return open.length === 0;
          },
          60_000,
          "every routed command ended",
        ).catch(() => undefined);
        expect(open).toEqual([]);
        // None unsafe to repeat ran more than once.
        const { rows: repeated } = await sql<{ n: number }>`
        select count(*)::int as n from maqet_commands where not idempotent and attempts > 1`.execute(db.db);
        expect(repeated[0]!.n).toBe(0);
        // Every stream gapless: versions 0..n-1.
        const { rows: gaps } = await sql<{ stream_id: string }>`
        select stream_id from maqet_events group by stream_id
        having count(*) <> max(stream_version) + 1 or min(stream_version) <> 0`.execute(db.db);
        expect(gaps).toEqual([]);
        // Every HA recovery (vm.recovering) was followed by a vm.started of the VM, within the
        // goal from the moment its host was struck.
        const { rows: events } = await sql<{ stream_id: string; type: string; from: string | null; at: Date }>`
        select stream_id, type, data->>'from' as "from", recorded_at as at from maqet_events
         where type in ('vm.recovering', 'vm.started') order by global_position`.execute(db.db);
        haTimes = events.flatMap((e, i) => {
          if (e.type !== "vm.recovering") return [];
          const struck = strikes
            .filter((s) => (s.host === e.from || s.host === "*") && s.at <= new Date(e.at).getTime())
            .at(-1);
          const started = events.slice(i + 1).find((n) => n.stream_id === e.stream_id && n.type === "vm.started");
          const vm = [...ids].find(([, id]) => `vm-${id}` === e.stream_id)?.[0] ?? e.stream_id;
          return [
            { vm, ms: started && struck ? new Date(started.at).getTime() - struck.at : Number.POSITIVE_INFINITY },
          ];
        });
        expect(haTimes.filter((t) => !(t.ms <= HA_GOAL_MS))).toEqual([]);
      } finally {
        await db.close();
      }
      for (const id of ids.values()) expect(maxRunning.get(id) ?? 0).toBeLessThanOrEqual(1);
      const count = (fault: string) => aimed.filter((a) => a.fault === fault).length;
      console.log(
        `chaos: ${ROUNDS} rounds (${count("kill")} kills, ${count("freeze")} freezes, ${count("restart-db")} PostgreSQL restarts), ` +
          `${answers.length} commands answered (${answers.filter((a) => a.code === 0).length} ok), ` +
          `${haTimes.length} HA recoveries (max ${Math.max(0, ...haTimes.map((t) => t.ms))} ms from the strike to vm.started), ` +
          `max QEMU per VM ${JSON.stringify(Object.fromEntries([...ids].map(([n, id]) => [n, maxRunning.get(id)])))}`,
      );
    });
  },
);

/** The routed commands and the VM/host facts, kept beside the agents' logs for a failure's evidence. */
async function dumpCommands(url: string, dir: string): Promise<void> {
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
function said(r: { code: number | null; stderr?: string }, sent: number): { stderr?: string; ms: number } {
  const line = r.code !== 0 && r.stderr ? r.stderr.split("\n")[0]!.slice(0, 300) : undefined;
  return { ms: Date.now() - sent, ...(line ? { stderr: line } : {}) };
}

/** What the CLI runner said when a command got no exit code (timed out, killed by a signal...): the failure says why. */
function whyNoAnswer(r: { code: number | null; error?: unknown; signal?: unknown }): { error?: string } {
  if (r.code !== null) return {};
  if ("error" in r) return { error: String((r.error as Error)?.message ?? r.error).slice(0, 500) };
  // Ended by a signal the runner did not send (its own time limit throws, above).
  return { error: `the CLI process was killed by ${String(r.signal)}` };
}
