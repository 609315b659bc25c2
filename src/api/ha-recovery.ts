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
}

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
  const fenced = (await cluster.hosts.list()).filter((h) => h.state === "fenced");
  if (fenced.length === 0) return [];
  const onFenced = new Map(fenced.map((h) => [h.name, h]));
  const placements = (await cluster.placements.all()).filter((p) => onFenced.has(p.host));
  if (placements.length === 0) return [];
  const views = new Map((await orchestrator.views()).map((v) => [v.vmId, v]));
  const recovered: string[] = [];
  for (const placement of placements) {
    const view = views.get(placement.vmId);
    if (view === undefined) continue;
    if (view.config.ha !== "restart" || !meantToRun(view)) continue;
    const from = onFenced.get(placement.host)!;
    let target: string;
    try {
      target = await chooseHost(cluster, orchestrator, { memory: view.config.memory, exclude: [from.name] });
    } catch (error) {
      deps.warn(
        `HA: VM '${view.name}' cannot be recovered yet: ${error instanceof Error ? error.message : String(error)}`,
      );
      continue;
    }
    try {
      const placed = await cluster.placements.place(view.vmId, target, "recovery", {
        expectFrom: from.name,
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
    try {
      await deps.execute({
        id: crypto.randomUUID(),
        vmId: view.vmId,
        host: target,
        method: "start",
        args: [view.vmId, {}],
        caller: { source: "ha", user: "maqet-ha" },
        idempotent: true,
        attempts: 1,
      });
      recovered.push(view.name);
    } catch (error) {
      deps.warn(
        `HA: VM '${view.name}' did not start on ${target}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  return recovered;
}
