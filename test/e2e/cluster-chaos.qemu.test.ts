/**
 * Bounded chaos on a cluster of three real agents (one PostgreSQL, real QEMU), aimed: each round
 * sends one command (start, stop, qmp, or an `add` that places a new VM, in turn) and strikes
 * while it is in flight — for start/stop/qmp, the moment the VM's owner has claimed the routed
 * command, and the owner is the one struck — with a random fault: its agent killed (-9, started
 * again after a while), frozen (SIGSTOP, then SIGCONT), or PostgreSQL restarted (immediate: every
 * connection drops; only on a server of this file's own). A fault lasts a short, a mid or a long
 * time (chaos-support.ts `faultMs`): within the lease, past it, or past the fencing the other hosts
 * confirm. Rounds overlap: the next one is aimed, at a VM whose owner is up and under no fault,
 * while the last one's struck agent is still down or frozen, so at most two hosts are struck at
 * once and a third always serves. Meanwhile other commands (start, stop, qmp) go to random VMs
 * from random hosts. Checked all along from /proc: no VM ever has two QEMU processes. Checked
 * after: every command got an answer, no routed command is left queued or running, none that is
 * unsafe to run again ran twice, every stream is gapless, and every `ha: restart` VM that was
 * meant to run runs, each HA restart within 60 s of the strike on its host.
 * Rounds: MAQET_CHAOS_ROUNDS (default 30, issue 13's acceptance).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openPgDatabase } from "../../src/adapters/pg-database.ts";
import { qemuPidsOf } from "../support/agent-helpers.ts";
import {
  type Answer,
  claimed,
  cpuSeconds,
  dumpCommands,
  FAULT_CLASSES,
  type FaultClass,
  faultMs,
  haRestartTimes,
  hostStates,
  oneAtATime,
  owners,
  randomCommands,
  said,
  watchQemuCounts,
  whyNoAnswer,
} from "../support/chaos-support.ts";
import { waitFor } from "../support/cli-runner.ts";
import { type SimCluster, startCluster } from "../support/cluster-harness.ts";
import { firmwareVmYaml } from "../support/firmware-vm.ts";
import { waitUntil } from "../support/poll.ts";
import { createTestDatabase, startTestPostgres, type TestPostgres } from "../support/postgres-cluster.ts";

const ROUNDS = Number(process.env.MAQET_CHAOS_ROUNDS ?? 30);
/** An HA VM runs again within this of its host's death (issue 13's goal). */
const HA_GOAL_MS = 60_000;
const HOSTS = ["a", "b", "c"];
const VMS = [
  { name: "h1", ha: true, host: "a" },
  { name: "h2", ha: true, host: "b" },
  { name: "p1", ha: false, host: "c" },
  { name: "p2", ha: false, host: "a" },
];
// No QEMU defaults (NIC, VGA, CD-ROM): SeaBIOS then finds nothing to boot and idles, where its
// network boot kept each VM at ~20% of a core, a core for the file on a 2-core machine.
const vmYaml = (name: string, ha: boolean) => firmwareVmYaml(name, `args: [-nodefaults]\n${ha ? "ha: restart\n" : ""}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    let watch: ReturnType<typeof watchQemuCounts> | undefined;
    let setupMs = 0;

    beforeAll(async () => {
      const began = Date.now();
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
      await Promise.all(
        VMS.map(async (vm) => {
          await writeFile(join(cluster.home, `${vm.name}.yaml`), vmYaml(vm.name, vm.ha));
          const added = await cluster.cli("a", ["add", `${vm.name}.yaml`, "--host", vm.host, "--json"]);
          expect(added.code, added.stderr).toBe(0);
          ids.set(vm.name, added.json<{ id: string }>().id);
          const started = await cluster.cli("b", ["start", vm.name]);
          expect(started.code, started.stderr).toBe(0);
        }),
      );
      // One pass over /proc every 25 ms for every VM at once (the VMs `add` places join as they come).
      watch = watchQemuCounts(() => ids.values());
      setupMs = Date.now() - began;
    }, 600_000);
    afterAll(async () => {
      await watch?.stop();
      await cluster?.stop();
      if (process.env.MAQET_CLUSTER_LOGS && url) await dumpCommands(url, process.env.MAQET_CLUSTER_LOGS);
      await dropDb?.();
      await server?.stop();
    }, 120_000);

    it("no double run, no lost or duplicated command, gapless histories, HA VMs running again", async () => {
      const random = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
      const answers: Answer[] = [];
      // Hosts whose agent is killed (until it listens again) or frozen (until SIGCONT).
      const struck = new Set<string>();
      const live = (h: string) => {
        const p = cluster.hosts.get(h)!.process;
        return !struck.has(h) && p.exitCode === null && p.signalCode === null;
      };
      // Meanwhile: start, stop or qmp of random VMs from random live hosts, one at a time.
      const load = randomCommands(HOSTS, VMS, live, (from, cmd) => cluster.cli(from, cmd), answers);
      const probe = await openPgDatabase({ url });
      // A PostgreSQL restart and an agent's start-up never overlap: a killed agent starts again on
      // a server that is up, as one whose host rebooted would (a restart while it starts is not
      // what a round aims at).
      const alone = oneAtATime();
      // Sends a command from a host; its answer is recorded (and awaited before the checks).
      const answered: Array<Promise<void>> = [];
      const send = (from: string, cmd: string[], label: string, adds?: string) => {
        const sent = Date.now();
        let settled: { code: number | null; stderr?: string } | undefined;
        const issued = cluster
          .cli(from, cmd)
          .catch((error: unknown) => ({ code: null, error, stdout: "", stderr: "" }))
          .then((r) => {
            settled = r;
            answers.push({
              cmd: `${from}: ${cmd.join(" ")} (${label})`,
              code: r.code,
              ...whyNoAnswer(r),
              ...said(r, sent),
            });
            if (adds && r.code === 0) ids.set(adds, (JSON.parse(r.stdout) as { id: string }).id);
            return r;
          });
        answered.push(issued.then(() => undefined));
        return { issued, settled: () => settled };
      };
      const faults = server ? (["kill", "freeze", "restart-db"] as const) : (["kill", "freeze"] as const);
      // When each host was struck (killed, frozen, or all at a server restart): an HA VM's
      // restart time runs from there.
      const strikes: Array<{ host: string; at: number; fault: string }> = [];
      const aimed: Array<{
        round: number;
        action: string;
        fault: string;
        cls: FaultClass;
        victim: string;
        from: string;
        /** The command had no answer yet when the fault began. */
        inFlight: boolean;
        /** What the last command sent said, when it was answered before the strike. */
        early?: string;
        code?: number | null;
      }> = [];
      // The end of each struck host's fault (its agent listening again, or continued), and the
      // answers of the aimed commands: both awaited before the checks.
      const recoveries = new Map<string, Promise<void>>();
      const recoveryErrors: unknown[] = [];
      const spent = { aim: 0, claim: 0, fault: 0, concurrent: 0 };
      const began = Date.now();
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const t0 = Date.now();
          const action = (["start", "stop", "qmp", "placement"] as const)[round % 4]!;
          const fault = random(faults);
          const cls = random(FAULT_CLASSES);
          // Aim: a VM whose owner is up by the database's clock and under no fault, sent from
          // another such host (an add: any two such hosts, one of them struck).
          const target = await waitUntil(
            `round ${round}: a VM owned by a host that is up and under no fault, and another such host to send from`,
            async () => {
              // A host that did not come back ends the wait (then the round fails, below).
              if (recoveryErrors.length) return { vm: undefined, victim: "", from: "" };
              const states = await hostStates(probe.db);
              const placed = await owners(probe.db);
              if (!states || !placed) return undefined;
              const free = HOSTS.filter((h) => states.get(h) === "up" && live(h));
              const pick = (victim: string, vm?: string) => ({
                vm,
                victim,
                from: random(free.filter((h) => h !== victim)),
              });
              if (free.length < 2) return undefined;
              if (action === "placement") return pick(random(free));
              const ok = VMS.filter((v) => free.includes(placed.get(ids.get(v.name)!) ?? ""));
              const vm = ok.length ? random(ok).name : undefined;
              return vm === undefined ? undefined : pick(placed.get(ids.get(vm)!)!, vm);
            },
            Boolean,
            { timeoutMs: 120_000, everyMs: 25 },
          );
          if (recoveryErrors.length) throw recoveryErrors[0];
          const { vm, victim, from } = target!;
          const sent = Date.now();
          spent.aim += sent - t0;
          // Sends the round's command and returns once it is in flight: claimed by the owner (a
          // routed command), or a moment after an add starts. One answered before that (a qmp
          // takes milliseconds) is sent again, up to 4 times, then struck once queued or claimed,
          // so that the fault meets a command still in flight.
          const inFlight = async () => {
            for (let attempt = 0; ; attempt++) {
              const name = attempt ? `n${round}r${attempt}` : `n${round}`;
              if (vm === undefined) await writeFile(join(cluster.home, `${name}.yaml`), vmYaml(name, false));
              const cmd =
                vm === undefined
                  ? ["add", `${name}.yaml`, "--json"]
                  : action === "start"
                    ? ["start", vm]
                    : action === "stop"
                      ? ["stop", vm, "--force"]
                      : ["qmp", vm, "query-status"];
              const command = send(from, cmd, "aimed", vm === undefined ? name : undefined);
              const vmId = vm && ids.get(vm)!;
              await Promise.race([
                vmId
                  ? waitUntil("the claim", () => claimed(probe.db, vmId, attempt > 0), Boolean, {
                      timeoutMs: 5000,
                      everyMs: 2,
                    })
                  : sleep(Math.random() * 300),
                command.issued,
              ]).catch(() => undefined);
              if (command.settled() === undefined || attempt === 3) return command;
            }
          };
          const entry: (typeof aimed)[number] = { round, action, fault, cls, victim, from, inFlight: false };
          aimed.push(entry);
          const strike = (host: string, command: ReturnType<typeof send>) => {
            const at = Date.now();
            spent.claim += at - sent;
            const early = command.settled();
            entry.inFlight = !early;
            if (early)
              entry.early = `exit ${early.code}${early.stderr ? `: ${early.stderr.split("\n")[0]!.slice(0, 200)}` : ""}`;
            strikes.push({ host, at, fault });
            void command.issued.then((r) => Object.assign(entry, { code: r.code }));
            return at;
          };
          if (fault === "restart-db") {
            // Every host's lease: a restart long enough fences them all (then their HA VMs move).
            // Alone: no agent's start-up runs into the restart, and none delays the strike.
            await alone(async () => {
              const at = strike("*", await inFlight());
              await server!.restart();
              spent.fault += Date.now() - at;
            });
          } else {
            const at = strike(victim, await inFlight());
            const host = cluster.hosts.get(victim)!;
            struck.add(victim);
            spent.concurrent = Math.max(spent.concurrent, struck.size);
            const downMs = faultMs(fault, cls);
            let recovery: Promise<void>;
            if (fault === "kill") {
              await cluster.killAgent(victim);
              recovery = sleep(downMs).then(() => alone(() => cluster.startAgent(victim)).then(() => undefined));
            } else {
              host.process.kill("SIGSTOP");
              recovery = sleep(downMs).then(() => void host.process.kill("SIGCONT"));
            }
            recoveries.set(
              victim,
              recovery
                .catch((error: unknown) => void recoveryErrors.push(error))
                .finally(() => {
                  struck.delete(victim);
                  spent.fault += Date.now() - at;
                }),
            );
          }
        }
        await Promise.all(recoveries.values());
        await Promise.all(answered);
        expect(recoveryErrors).toEqual([]);
        const roundsMs = Date.now() - began;
        console.log(
          `chaos rounds: ${aimed.map((a) => `${a.round}:${a.action}/${a.fault}${a.fault === "restart-db" ? "" : `-${a.cls}`}@${a.victim} from ${a.from}${a.inFlight ? "" : ` (answered before the strike: ${a.early})`} -> ${a.code}`).join("; ")}`,
        );
        console.log(
          `chaos timing: set-up ${setupMs} ms; ${aimed.length} rounds in ${roundsMs} ms (${Math.round(roundsMs / Math.max(1, aimed.length))} ms a round): ` +
            `aiming ${spent.aim} ms, to the claim ${spent.claim} ms, faults ${spent.fault} ms (overlapping; at most ${spent.concurrent} hosts struck at once)`,
        );
        await load.stop();
        // Settled: every host up again, by the database's clock (as `maqet host ls` says it).
        // Re-joining takes a lease period or two after a freeze or a kill; on a machine at load
        // 8-10 (a full suite beside it) 60 s was not always enough, so the settle gets 180 s and
        // its failure names each host's last state.
        const settling = Date.now();
        await waitUntil(
          "every host up",
          () => hostStates(probe.db),
          (states) => states !== undefined && HOSTS.every((h) => states.get(h) === "up"),
          { timeoutMs: 180_000, everyMs: 50 },
        );
        // CPU so far: this worker (the /proc watch, the aiming), the processes it ran and reaped (CLI
        // calls, killed agents), the agents alive now. QEMU and PostgreSQL are not its children.
        const me = cpuSeconds();
        const agents =
          Math.round([...cluster.hosts.values()].reduce((n, h) => n + cpuSeconds(h.process.pid!).own, 0) * 100) / 100;
        console.log(
          `chaos timing: every host up ${Date.now() - settling} ms after the last fault ended; CPU ${me.own} s in the test's ` +
            `worker, ${me.children} s in its reaped children, ${agents} s in the live agents`,
        );
      } finally {
        await load.stop();
        await probe.close();
      }
      if (process.env.MAQET_CLUSTER_LOGS) {
        await writeFile(
          join(process.env.MAQET_CLUSTER_LOGS, "answers.json"),
          JSON.stringify({ answers, strikes }, null, 1),
        );
      }

      // Every command got an answer (an exit code: success or a typed error), none hung.
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.filter((a) => a.code === null)).toEqual([]);

      // Every HA VM that is meant to run runs.
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
        // goal from the moment its host was struck: the last strike of that host before the
        // recovery (faults overlap: a server restart since does not restart the clock), or the
        // last server restart when that host was not struck.
        const { rows: events } = await sql<{ stream_id: string; type: string; from: string | null; at: Date }>`
        select stream_id, type, data->>'from' as "from", recorded_at as at from maqet_events
         where type in ('vm.recovering', 'vm.started') order by global_position`.execute(db.db);
        haTimes = haRestartTimes(events, strikes, ids);
        expect(haTimes.filter((t) => !(t.ms <= HA_GOAL_MS))).toEqual([]);
      } finally {
        await db.close();
      }
      await watch!.stop();
      // Never two QEMU for one VM (what /proc showed, each time it did, names the hosts).
      expect(watch!.doubles).toEqual([]);
      for (const id of ids.values()) expect(watch!.max.get(id) ?? 0).toBeLessThanOrEqual(1);
      const count = (fault: string) => aimed.filter((a) => a.fault === fault).length;
      const classes = (fault: string) =>
        FAULT_CLASSES.map((c) => `${aimed.filter((a) => a.fault === fault && a.cls === c).length} ${c}`).join("/");
      console.log(
        `chaos: ${aimed.length} rounds (${count("kill")} kills ${classes("kill")}, ${count("freeze")} freezes ${classes("freeze")}, ` +
          `${count("restart-db")} PostgreSQL restarts; ${aimed.filter((a) => a.inFlight).length} struck with the aimed command in flight, ${answers.filter((a) => a.cmd.endsWith("(aimed)")).length - aimed.length} resent), ` +
          `${answers.length} commands answered (${answers.filter((a) => a.code === 0).length} ok), ` +
          `${haTimes.length} HA recoveries (max ${Math.max(0, ...haTimes.map((t) => t.ms))} ms from the strike to vm.started), ` +
          `${watch!.sweeps()} sweeps of /proc (at most ${watch!.longestGapMs()} ms apart), max QEMU per VM ${JSON.stringify(Object.fromEntries([...ids].map(([n, id]) => [n, watch!.max.get(id)])))}`,
      );
    });
  },
);
