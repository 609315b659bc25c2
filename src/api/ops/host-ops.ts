/**
 * The cluster's hosts (docs/cluster.md): list them, drain one (no new VMs; its VMs move: stop
 * there, start elsewhere), restore it, mark a dead one dead (the operator's fencing
 * confirmation), remove one. A PostgreSQL server only: on PGlite each says CLUSTER_NEEDS_SERVER.
 *
 * @example
 * ```ts
 * for (const h of await maqet.hosts()) console.log(h.name, h.state, h.vms);
 * await maqet.drainHost("lab2");
 * ```
 */
import { isMaqetError } from "../../errors/maqet-error.ts";
import type { HostInfoRow } from "../../events/host-registry.ts";
import type { ClusterRuntime } from "../cluster-runtime.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { chooseHost } from "../placement.ts";
import { clusterNeedsServer, withRouting } from "../route-commands.ts";
import type { Runtime } from "../runtime.ts";
import { lifecycleOps } from "./lifecycle-ops.ts";
import { migrationOps } from "./migration-ops.ts";

/** One host as `maqet host ls --json` shows it. Field names are a contract: add, never rename. */
export interface HostListing {
  name: string;
  /** up | suspected | down | fenced | left */
  state: string;
  labels: Record<string, string>;
  capacity: { memoryBytes: number; cpus: number };
  /** VMs placed on this host (not removed). */
  vms: number;
  /** When its lease was last renewed (ISO time, the database's clock). */
  lastRenewal: string;
  draining: boolean;
  term: number;
  /** How its fencing was confirmed (`self`, `grace`, `mark-dead`); null unless fenced. */
  fenceMethod: string | null;
}

/** What a drain did with each VM. */
export interface DrainReport {
  host: string;
  moved: Array<{ vm: string; to: string; restarted: boolean; live?: boolean; downtimeMs?: number }>;
  /** VMs left where they are, and why. */
  skipped: Array<{ vm: string; reason: string }>;
}

export interface HostOps {
  /** Every host of the cluster with its state, labels, capacity, VM count and last renewal. */
  hosts(): Promise<HostListing[]>;
  /**
   * No new VMs on the host; each of its VMs moves: stopped there, placed elsewhere, started again
   * if it ran. `live`: a running VM is live-migrated instead (its guest keeps running).
   */
  drainHost(name: string, options?: { live?: boolean }): Promise<DrainReport>;
  /** The host takes new VMs again. */
  restoreHost(name: string): Promise<HostListing>;
  /** The operator confirms the host is dead (its VMs may be recovered elsewhere: `ha: restart`). */
  markHostDead(name: string): Promise<HostListing>;
  /** Forgets a host that is not up and owns no VMs. */
  removeHost(name: string): Promise<{ name: string; removed: true }>;
}

export function hostOps(ctx: MaqetContext): HostOps {
  const cluster = async (feature: string): Promise<{ rt: Runtime; cluster: ClusterRuntime }> => {
    const rt = await ctx.open();
    if (rt.cluster === undefined) throw clusterNeedsServer(feature);
    return { rt, cluster: rt.cluster };
  };
  return {
    hosts: async () => (await (await cluster("host ls")).cluster.hosts.list()).map(toListing),
    restoreHost: async (name) =>
      toListing(await (await cluster("host restore")).cluster.hosts.setDraining(name, false)),
    markHostDead: async (name) => {
      const { cluster: c } = await cluster("host mark-dead");
      const host = await c.hosts.markDead(name);
      // What it was running: re-queued (to the VM's owner now) or failed by rule; then what is
      // queued for it fails.
      await c.commands.sweepOrphans();
      await c.commands.failHost(name, "was marked dead");
      return toListing(host);
    },
    removeHost: async (name) => {
      await (await cluster("host rm")).cluster.hosts.remove(name);
      return { name, removed: true };
    },
    drainHost: async (name, options = {}) => {
      const { rt, cluster: c } = await cluster("host drain");
      const host = await c.hosts.setDraining(name, true);
      const lifecycle = withRouting(ctx, lifecycleOps(ctx));
      const migration = withRouting(ctx, migrationOps(ctx));
      const report: DrainReport = { host: name, moved: [], skipped: [] };
      const views = new Map((await rt.orchestrator.views()).map((v) => [v.vmId, v]));
      for (const placement of await c.placements.all()) {
        if (placement.host !== name) continue;
        const view = views.get(placement.vmId);
        if (!view) continue;
        const running = view.status !== "stopped";
        if (running && host.state !== "up" && host.state !== "fenced") {
          report.skipped.push({
            vm: view.name,
            reason: `its host is ${host.state}: it cannot be stopped there; mark the host dead first`,
          });
          continue;
        }
        try {
          // Its `--constraint` labels hold wherever it runs; a VM no host can take is not stopped.
          const constraints = await c.placements.constraintsOf(view.vmId);
          const to = await chooseHost(c, rt.orchestrator, {
            memory: view.config.memory,
            exclude: [name],
            ...(constraints ? { constraints } : {}),
          });
          if (options.live === true && running && host.state === "up") {
            const moved = await migration.migrateVm(view.vmId, { to });
            report.moved.push({ vm: view.name, to, restarted: false, live: true, downtimeMs: moved.downtimeMs });
            continue;
          }
          if (running && host.state === "up") await lifecycle.stop(view.vmId, {});
          const placed = await c.placements.place(view.vmId, to, "evacuation", {
            expectFrom: name,
            ...(constraints ? { constraints } : {}),
          });
          c.learn(view.vmId, placed.host, placed.epoch);
          if (running) await lifecycle.start(view.vmId, {});
          report.moved.push({ vm: view.name, to, restarted: running });
        } catch (error) {
          if (!isMaqetError(error)) throw error;
          report.skipped.push({ vm: view.name, reason: error.message });
        }
      }
      return report;
    },
  };
}

function toListing(h: HostInfoRow): HostListing {
  return {
    name: h.name,
    state: h.state,
    labels: h.labels,
    capacity: h.capacity,
    vms: h.vms,
    lastRenewal: h.lastRenewal,
    draining: h.draining,
    term: h.term,
    fenceMethod: h.fenceMethod,
  };
}
