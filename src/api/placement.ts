/**
 * Placing VMs in a cluster: the candidate hosts as the scheduler sees them (state, labels,
 * capacity, VMs placed and the memory they ask for), and the choice for a new or moving VM.
 *
 * @example
 * ```ts
 * const host = await chooseHost(cluster, orchestrator, { constraints: { zone: "a" }, memory: "2G" });
 * ```
 */
import type { Orchestrator } from "../actors/orchestrator.ts";
import { type HostCandidate, pickHost } from "../actors/scheduler.ts";
import { sizeInBytes } from "../adapters/disk-provisioner.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ClusterRuntime } from "./cluster-runtime.ts";

/** Every host with what the scheduler needs to know about it. */
export async function hostCandidates(cluster: ClusterRuntime, orchestrator: Orchestrator): Promise<HostCandidate[]> {
  const [hosts, placements, views] = await Promise.all([
    cluster.hosts.list(),
    cluster.placements.all(),
    orchestrator.views(),
  ]);
  const memoryOf = new Map(views.map((v) => [v.vmId, bytes(v.config.memory)]));
  const used = new Map<string, number>();
  for (const p of placements) used.set(p.host, (used.get(p.host) ?? 0) + (memoryOf.get(p.vmId) ?? 0));
  return hosts.map((h) => ({
    name: h.name,
    state: h.state,
    draining: h.draining,
    labels: h.labels,
    capacity: h.capacity,
    vms: h.vms,
    memoryUsedBytes: used.get(h.name) ?? 0,
  }));
}

/** The host for a VM: `pinned` (checked to exist and not be gone) or the scheduler's pick. */
export async function chooseHost(
  cluster: ClusterRuntime,
  orchestrator: Orchestrator,
  options: { pinned?: string; constraints?: Record<string, string>; memory?: string; exclude?: string[] },
): Promise<string> {
  if (options.pinned !== undefined) {
    const host = await cluster.hosts.get(options.pinned);
    if (host.state === "left" || host.state === "fenced") {
      throw new MaqetError(
        "HOST_INVALID_STATE",
        `Host '${host.name}' is ${host.state}: a VM cannot be placed there. Pick another (\`maqet host ls\`), or start its agent again.`,
        { details: { name: host.name, state: host.state } },
      );
    }
    return host.name;
  }
  const candidates = await hostCandidates(cluster, orchestrator);
  return pickHost(candidates, {
    constraints: options.constraints,
    memoryBytes: bytes(options.memory),
    exclude: options.exclude,
  }).host;
}

function bytes(memory: string | undefined): number {
  if (memory === undefined) return 0;
  try {
    return sizeInBytes(memory);
  } catch {
    return 0;
  }
}
