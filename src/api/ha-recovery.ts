/**
 * HA restart (docs/cluster.md): a VM with `ha: restart` whose host is confirmed fenced (the grace
 * passed, or `maqet host mark-dead`) and that was meant to run (running, paused, starting or
 * stopping when its host was lost, or stopped by a crash rather than by a user) is placed on
 * another host and started there: `vm.recovering` -> `vm.placed{reason: recovery}` (one
 * transaction, epoch + 1, only if still owned by the fenced host: of many observers one wins) ->
 * `vm.started` from the new owner.
 *
 * @example
 * ```ts
 * await recoverHaVms({ cluster, orchestrator, execute, warn: console.warn });
 * ```
 */
import type { Orchestrator } from "../actors/orchestrator.ts";
import type { VmView } from "../actors/vm-view.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import type { ClaimedCommand } from "../events/command-queue.ts";
import type { ClusterRuntime } from "./cluster-runtime.ts";
import { chooseHost } from "./placement.ts";

export interface HaRecoveryDeps {
  cluster: ClusterRuntime;
  orchestrator: Orchestrator;
  execute(command: ClaimedCommand): Promise<unknown>;
  warn(message: string): void;
  /** VMs placed by a recovery whose start failed: tried again at the next passes (vmId -> attempts). */
  retries?: Map<string, number>;
}

/** A recovered VM's start is tried this many times in all. */
const MAX_START_ATTEMPTS = 5;

/** True when the VM was meant to run when its host was lost. */
export function meantToRun(view: VmView): boolean {
  if (
    view.status === "running" ||
    view.status === "paused" ||
    view.status === "starting" ||
    view.status === "stopping"
  ) {
    return true;
  }
  return (
    view.status === "stopped" &&
    (view.lastStop?.detail === "crashed" || view.lastStop?.detail === "exited-unsupervised")
  );
}

/** One pass: recovers what can be recovered now; returns the names started elsewhere. */
export async function recoverHaVms(deps: HaRecoveryDeps): Promise<string[]> {
  const { cluster, orchestrator } = deps;
  const recovered: string[] = [];
  for (const [vmId, attempts] of deps.retries ?? []) {
    if (await startRecovered(deps, vmId, vmId, attempts + 1)) recovered.push(vmId);
  }
  const fenced = (await cluster.hosts.list()).filter((h) => h.state === "fenced");
  if (fenced.length === 0) return [];
  const onFenced = new Map(fenced.map((h) => [h.name, h]));
  const placements = (await cluster.placements.all()).filter((p) => onFenced.has(p.host));
  if (placements.length === 0) return [];
  const views = new Map((await orchestrator.views()).map((v) => [v.vmId, v]));
  for (const placement of placements) {
    const view = views.get(placement.vmId);
    if (view === undefined) continue;
    if (view.config.ha !== "restart" || !meantToRun(view)) continue;
    const from = onFenced.get(placement.host)!;
    let target: string;
    // Its `--constraint` labels hold wherever it runs: a recovery goes only to a host carrying them.
    const constraints = await cluster.placements.constraintsOf(view.vmId);
    try {
      target = await chooseHost(cluster, orchestrator, {
        memory: view.config.memory,
        exclude: [from.name],
        ...(constraints ? { constraints } : {}),
      });
    } catch (error) {
      deps.warn(
        `HA: VM '${view.name}' cannot be recovered yet: ${error instanceof Error ? error.message : String(error)}`,
      );
      continue;
    }
    try {
      const placed = await cluster.placements.place(view.vmId, target, "recovery", {
        expectFrom: from.name,
        expectFenced: true,
        ...(constraints ? { constraints } : {}),
        before: [{ type: "vm.recovering", data: { from: from.name, fenceMethod: from.fenceMethod ?? "unknown" } }],
      });
      cluster.learn(view.vmId, placed.host, placed.epoch);
    } catch (error) {
      if (isMaqetError(error, "CONCURRENCY_CONFLICT")) continue; // another observer recovered it
      throw error;
    }
    deps.warn(
      `HA: VM '${view.name}' placed on ${target} (its host ${from.name} was fenced: ${from.fenceMethod}); starting it`,
    );
    if (await startRecovered(deps, view.vmId, view.name, 1)) recovered.push(view.name);
  }
  return recovered;
}

/** Starts a recovered VM on its new owner (routed there); a failure is retried at later passes. */
async function startRecovered(deps: HaRecoveryDeps, vmId: string, name: string, attempt: number): Promise<boolean> {
  try {
    await deps.execute({
      id: crypto.randomUUID(),
      vmId,
      host: "", // not from the queue: routed to the VM's new owner (route-commands.ts executeRouted)
      method: "start",
      args: [vmId, {}],
      caller: { source: "ha", user: "maqet-ha" },
      idempotent: true,
      attempts: attempt,
    });
    deps.retries?.delete(vmId);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (isMaqetError(error, "VM_INVALID_STATE")) {
      // Not startable from where it is now: already running (an earlier attempt's routed start
      // finished after its caller gave up on it, or someone started it), or removed. Nothing to retry.
      deps.retries?.delete(vmId);
      deps.warn(`HA: VM '${name}' not started again: ${message}`);
      return false;
    }
    if (attempt >= MAX_START_ATTEMPTS) {
      deps.retries?.delete(vmId);
      deps.warn(`HA: VM '${name}' did not start after ${attempt} attempts, giving up: ${message}`);
    } else {
      deps.retries?.set(vmId, attempt);
      deps.warn(`HA: VM '${name}' did not start (attempt ${attempt}), trying again: ${message}`);
    }
    return false;
  }
}
