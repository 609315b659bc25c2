/**
 * A host's membership in the cluster, run by the agent (`maqet agent --host NAME`): join, renew
 * the lease every third of its time to live, watch the other hosts, claim the commands routed
 * here, and fence itself when the lease is lost (docs/cluster.md, "Failure").
 *
 * Lease judgement on this side uses only this process's monotonic clock, measured from the START
 * of the last successful renewal (River's rule): the database's expiry is never earlier than
 * that start + TTL, so "valid until start + TTL - margin" is safe without comparing clocks.
 * - past `start + TTL - margin`: stop taking commands at once (`serving = false`);
 * - past `start + TTL + fenceAfter`: stop every QEMU of the VMs placed here (SIGKILL), record
 *   `host.fenced{method: self}` when the database answers. Observers elsewhere confirm fencing
 *   only at `expiry + fenceAfter + TTL/2` by the database clock, which comes later.
 *
 * @example
 * ```ts
 * const member = await startClusterMember({ cluster, orchestrator, fenceQemu, execute, options, warn });
 * // ... serve ...
 * await member.leave();
 * ```
 */
import { performance } from "node:perf_hooks";
import type { Subscription } from "rxjs";
import type { Orchestrator } from "../actors/orchestrator.ts";
import type { FenceGuard } from "../adapters/fence-guard-control.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import { type ClaimedCommand, COMMANDS_CHANNEL, type CommandOutcome } from "../events/command-queue.ts";
import type { HostCapacity } from "../events/host-events.ts";
import { abortableSleep } from "../util/abortable-sleep.ts";
import { CLUSTER_DEFAULTS, type ClusterOptions } from "./cluster-options.ts";
import type { ClusterRuntime } from "./cluster-runtime.ts";
import { meantToRun, recoverHaVms } from "./ha-recovery.ts";

export interface ClusterMemberDeps {
  cluster: ClusterRuntime;
  orchestrator: Orchestrator;
  /**
   * Kills every QEMU process of this host (chosen by its runtime root on the command line, as the
   * fence guard does; src/adapters/fence-guard.ts) and returns their pids. Never by a pid from
   * the store: by then another host may have recorded its own pid for a VM this one lost.
   */
  fenceQemu(): Promise<number[]>;
  capacity: HostCapacity;
  /** Runs a claimed command on this instance's facade (acting as its caller). */
  execute(command: ClaimedCommand): Promise<unknown>;
  options: ClusterOptions;
  warn(message: string): void;
  /** Starts this host's fence guard (a watchdog process; src/adapters/fence-guard-control.ts). */
  startGuard?: () => Promise<FenceGuard>;
  /** Settles this host's half of live migrations others own now (settle-migration.ts `sweepMigrations`). */
  sweepMigrations?: () => Promise<string[]>;
}

export interface ClusterMember {
  readonly name: string;
  readonly term: number;
  /** Stops the loops and leaves the cluster (VMs keep running, placed here). */
  leave(): Promise<void>;
  /** Stops the loops without leaving (a crash-like stop, for tests). */
  halt(): Promise<void>;
}

/** Joins and starts the loops. Throws what the join throws (database unreachable). */
export async function startClusterMember(deps: ClusterMemberDeps): Promise<ClusterMember> {
  const { cluster, options } = deps;
  const name = cluster.host;
  const ttl = options.leaseTtlMs ?? CLUSTER_DEFAULTS.leaseTtlMs;
  const fenceAfter = options.fenceAfterMs ?? CLUSTER_DEFAULTS.fenceAfterMs;
  const observeEvery = options.observeEveryMs ?? CLUSTER_DEFAULTS.observeEveryMs;
  const margin = Math.min(1000, ttl / 4);
  const stop = new AbortController();
  const warn = (m: string) => deps.warn(`cluster: ${m}`);

  const attemptStart = performance.now();
  let { term } = await cluster.hosts.join({
    name,
    labels: options.labels ?? {},
    capacity: deps.capacity,
    leaseTtlMs: ttl,
    fenceAfterMs: fenceAfter,
  });
  cluster.leaseRenewed(attemptStart, ttl - margin);
  let fenced = false;
  /** A self-fence the database did not hear of yet (it was unreachable): recorded at the next renewal. */
  let unrecorded: { reason: string; stopped: number } | undefined;
  /** The self-fence in progress, if any. */
  let fencing: Promise<void> | undefined;
  /** `ha: restart` VMs placed here that the last self-fence stopped: started again here if still placed here after the re-join. */
  const fencedHa = new Set<string>();
  // The guard fires at (renewal start + TTL + fenceAfter) on the system's monotonic clock.
  const fenceAfterNs = BigInt(Math.round((ttl + fenceAfter) * 1e6));
  let guard = await deps.startGuard?.();
  await guard?.arm(
    process.hrtime.bigint() - BigInt(Math.round((performance.now() - attemptStart) * 1e6)) + fenceAfterNs,
  );
  if (!(await cluster.hosts.commitsDurable().catch(() => true))) {
    warn(
      "the database acknowledges commits before they are durable (synchronous_commit = off): a server crash or a failover can forget a routed command's outcome or a VM's facts after they were reported. Turn it on (docs/cluster.md, set-up).",
    );
  }
  const rescued = await cluster.commands.rescue(name, term);
  if (rescued.requeued + rescued.failed > 0) {
    warn(
      `joined as term ${term}: ${rescued.requeued} command(s) of a dead incarnation re-queued, ${rescued.failed} failed`,
    );
  }
  await cluster.refresh();
  cluster.serving = true;

  const loops: Promise<void>[] = [];
  const retries = new Map<string, number>();
  let lastPrune = performance.now();
  const every = (ms: number, body: () => Promise<void>) => {
    loops.push(
      (async () => {
        while (!stop.signal.aborted) {
          await body().catch((error: unknown) => warn(messageOf(error)));
          await sleep(ms, stop.signal);
        }
      })(),
    );
  };

  // Renewal: every third of the TTL. A renewal the database refuses (fenced, superseded) means
  // this incarnation lost its VMs: fence now, then join again under a new term.
  every(ttl / 3, async () => {
    const start = performance.now();
    const startNs = process.hrtime.bigint();
    const renewal = await cluster.hosts.renew(name, term).catch((error: unknown) => {
      warn(`lease renewal failed: ${messageOf(error)}`);
      return undefined;
    });
    if (renewal?.ok && !fenced) {
      cluster.leaseRenewed(start, ttl - margin);
      await guard?.arm(startNs + fenceAfterNs);
      if (!cluster.serving) warn("lease renewed: taking commands again");
      cluster.serving = true;
      return;
    }
    // A self-fence in progress (the local judgement started it) finishes before anything else.
    await fencing;
    if (renewal?.ok && fenced) {
      // It fenced itself while the database was out of reach (a server restart longer than the
      // grace): the lease it renewed belongs to an incarnation whose VMs it killed. Say so now,
      // then come back as a new one, as after a refusal (before, it stayed fenced, not serving,
      // for good, while `host ls` showed it up).
      if (unrecorded) {
        const recorded = await cluster.hosts
          .recordSelfFence(name, term, unrecorded.reason, unrecorded.stopped)
          .catch((error: unknown) => {
            warn(`host.fenced still not recorded: ${messageOf(error)}`);
            return undefined;
          });
        if (recorded === undefined) return;
        unrecorded = undefined;
      }
    }
    if (renewal && !renewal.ok) {
      cluster.serving = false;
      cluster.notServingBecause = `the database says this host was ${renewal.reason}`;
      if (!fenced)
        await selfFence(
          `lease refused: host ${renewal.reason}${renewal.fenceMethod ? ` (${renewal.fenceMethod})` : ""}`,
        );
    }
    if (renewal) {
      // Come back as a new incarnation: VMs moved away stay refused by their epochs. Its lease
      // (and the guard's deadline) runs from this join, not from the renewal that found it lost:
      // that one may have been sent before a freeze, and a deadline from it fenced the new
      // incarnation again at once.
      const joinStart = performance.now();
      const joinStartNs = process.hrtime.bigint();
      const again = await cluster.hosts.join({
        name,
        labels: options.labels ?? {},
        capacity: deps.capacity,
        leaseTtlMs: ttl,
        fenceAfterMs: fenceAfter,
      });
      term = again.term;
      cluster.leaseRenewed(joinStart, ttl - margin);
      fenced = false;
      fencing = undefined;
      guard = await deps.startGuard?.();
      await guard?.arm(joinStartNs + fenceAfterNs);
      await cluster.commands.rescue(name, term);
      await cluster.refresh();
      // The HA VMs its fence stopped and that no other host took meanwhile run again here (the
      // observers' recovery moves only VMs of a host still fenced; the placement re-checks that
      // in its transaction, so a VM is taken back here or moved elsewhere, never both).
      const restart = [...fencedHa].filter((vmId) => cluster.owns(`vm-${vmId}`));
      fencedHa.clear();
      for (const vmId of restart) retries.set(vmId, 0);
      cluster.serving = true;
      warn(
        `re-joined as term ${term} after being fenced${restart.length ? `; starting its ${restart.length} HA VM(s) again` : ""}`,
      );
    }
  });

  // The local judgement: only this process's monotonic clock.
  every(Math.min(250, ttl / 8), async () => {
    const elapsed = cluster.leaseAgeMs();
    if (elapsed > ttl - margin && cluster.serving) {
      cluster.serving = false;
      cluster.notServingBecause = `its lease was last renewed ${Math.round(elapsed)} ms ago`;
      warn(`lease not renewed for ${Math.round(elapsed)} ms: taking no commands`);
    }
    if (elapsed > ttl + fenceAfter && !fenced) await selfFence(`lease not renewed for ${Math.round(elapsed)} ms`);
  });

  // Watching the others: transitions, commands of fenced hosts, HA recovery.
  every(observeEvery, async () => {
    if (!cluster.serving) return;
    for (const fact of await cluster.hosts.observe()) warn(`${fact.host}: ${fact.type}`);
    // Claims of an incarnation that is over: re-queued or failed by rule (a re-join's own rescue
    // may have failed with the database out of reach, and a fenced host never re-joins).
    const orphans = await cluster.commands.sweepOrphans();
    if (orphans.requeued + orphans.failed > 0) {
      warn(`orphaned routed commands: ${orphans.requeued} re-queued, ${orphans.failed} failed`);
    }
    // Commands queued for a host that is gone fail (also those queued after it was fenced).
    for (const h of await cluster.hosts.list()) {
      if (h.state === "fenced" || h.state === "left") await cluster.commands.failHost(h.name, `is ${h.state}`);
    }
    if (performance.now() - lastPrune > 60_000) {
      lastPrune = performance.now();
      await cluster.commands.prune(3_600_000);
    }
    await recoverHaVms({ cluster, orchestrator: deps.orchestrator, execute: deps.execute, warn, retries });
    for (const note of (await deps.sweepMigrations?.()) ?? []) warn(note);
  });

  // The command queue: woken by NOTIFY, polled every second as a fallback. A wake-up that comes
  // while the loop is not waiting (a claim in flight that missed the new row) is kept, and the
  // loop claims again at once instead of sleeping through it.
  let woke = false;
  let wake: (() => void) | undefined;
  const rouse = () => {
    woke = true;
    wake?.();
  };
  const woken: Subscription | undefined = cluster
    .wakeups(COMMANDS_CHANNEL)
    ?.subscribe((w) => (w.reason === "listening" || w.payload === name) && rouse());
  loops.push(
    (async () => {
      const running = new Set<Promise<void>>();
      const runningIds = new Set<string>();
      const start = (command: ClaimedCommand, claimTerm: number) => {
        runningIds.add(command.id);
        const job = run(command, claimTerm).finally(() => {
          running.delete(job);
          runningIds.delete(command.id);
        });
        running.add(job);
      };
      // A failed claim may have committed before the server went away (its answer lost): the
      // command is then claimed under this term and run by nobody, until it is looked for.
      let unsure: number | undefined;
      while (!stop.signal.aborted) {
        woke = false;
        let claimed: ClaimedCommand | undefined;
        if (cluster.serving && unsure === term) {
          const mine = await cluster.commands.claimedBy(name, term).catch(() => undefined);
          if (mine !== undefined) {
            unsure = undefined;
            for (const command of mine.filter((c) => !runningIds.has(c.id))) {
              warn(`running ${command.method} ${command.id}: claimed here when a claim's answer was lost`);
              start(command, term);
            }
          }
        }
        const claimTerm = term;
        if (cluster.serving) {
          claimed = await cluster.commands.claim(name, claimTerm).catch((error: unknown) => {
            warn(`claim failed: ${messageOf(error)}`);
            unsure = claimTerm;
            return undefined;
          });
        }
        if (claimed) {
          start(claimed, claimTerm);
          // Nothing else claimable when it was claimed: a newer command's NOTIFY says so.
          if (claimed.more !== false) continue;
        }
        if (woke || stop.signal.aborted) continue;
        const onAbort = () => wake?.();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          stop.signal.addEventListener("abort", onAbort, { once: true });
        });
        stop.signal.removeEventListener("abort", onAbort);
        wake = undefined;
      }
      await Promise.allSettled([...running]);
    })(),
  );

  async function run(command: ClaimedCommand, claimTerm: number): Promise<void> {
    let outcome: CommandOutcome;
    // Where its VM is, as the claim read it: the routing wrapper looks nothing up again.
    cluster.noteClaim(command);
    try {
      outcome = { state: "done", result: await deps.execute(command) };
    } catch (error) {
      outcome = {
        state: "failed",
        error: isMaqetError(error)
          ? { code: error.code, message: error.message, details: plain(error.details) }
          : { code: "INTERNAL", message: messageOf(error) },
      };
    } finally {
      cluster.forgetClaim(command.id);
    }
    // The outcome is written until the database takes it (or the claim is gone: a re-join
    // re-queued or failed it). Given up after one failure, the row stayed 'running' for good:
    // its caller waited forever and every later command of that VM queued behind it (a
    // PostgreSQL restart in the chaos test).
    let finished = false;
    // A command of the same VM queued behind this one is claimable now (unknown: look anyway).
    let waiting = true;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        ({ finished, waiting } = await cluster.commands.complete(command.id, name, claimTerm, outcome));
        break;
      } catch (error) {
        if (stop.signal.aborted) break;
        if (delay === 100)
          warn(`could not record the outcome of ${command.method} ${command.id} yet: ${messageOf(error)}`);
        await sleep(delay, stop.signal);
      }
    }
    if (!finished) warn(`command ${command.id} (${command.method}) lost its claim before finishing`);
    if (waiting || !finished) rouse();
  }

  /** One self-fence at a time; the renewal loop waits for it before re-joining. */
  function selfFence(reason: string): Promise<void> {
    fencing ??= fence(reason, term);
    return fencing;
  }

  async function fence(reason: string, fencedTerm: number): Promise<void> {
    fenced = true;
    cluster.serving = false;
    cluster.notServingBecause = `it fenced itself (${reason})`;
    // Its own QEMU, found on this machine: a view's pid may be another host's by now (the VM was
    // recovered there while this agent was frozen), and killing it took down the recovered VM.
    const stopped = (await deps.fenceQemu()).length;
    for (const view of await deps.orchestrator.views().catch(() => [])) {
      if (cluster.owns(view.streamId) && view.config.ha === "restart" && meantToRun(view)) fencedHa.add(view.vmId);
    }
    warn(`self-fenced: ${reason}; ${stopped} QEMU process(es) killed`);
    const recorded = await cluster.hosts.recordSelfFence(name, fencedTerm, reason, stopped).catch((error: unknown) => {
      warn(`host.fenced not recorded (database unreachable?): ${messageOf(error)}`);
      return undefined;
    });
    if (recorded === undefined) unrecorded = { reason, stopped };
  }

  const halt = async () => {
    stop.abort();
    woken?.unsubscribe();
    await Promise.allSettled(loops);
  };
  return {
    name,
    get term() {
      return term;
    },
    halt,
    leave: async () => {
      await halt();
      await guard?.standDown().catch(() => undefined);
      await cluster.hosts.leave(name, term).catch((error: unknown) => warn(`leave not recorded: ${messageOf(error)}`));
    },
  };
}

function plain(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (details === undefined) return undefined;
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Sleeps `ms`, or less when `signal` aborts (then resolves: the loops look at the signal themselves). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return abortableSleep(ms, signal).catch(() => undefined);
}
