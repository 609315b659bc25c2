/**
 * How a maqet instance takes part in a cluster (many hosts on one PostgreSQL; docs/cluster.md).
 *
 * @example
 * ```ts
 * createMaqet({ databaseUrl, supervise: true, cluster: { host: "lab1", member: true, labels: { zone: "a" } } });
 * ```
 */

export interface ClusterOptions {
  /** This process's host name (default: the machine's hostname). VMs placed elsewhere are routed there. */
  host?: string;
  /**
   * Join as a host (what `maqet agent --host` does): hold a lease, own the VMs placed here (their
   * owner epoch stamped on every event), claim the commands routed here, watch the other hosts.
   * Needs `supervise` and a PostgreSQL server.
   */
  member?: boolean;
  /** The host's labels (`--label k=v`), matched by `add --constraint`. */
  labels?: Record<string, string>;
  /** Lease time to live (default 10 000 ms): renewed every third of it, judged by the database clock. */
  leaseTtlMs?: number;
  /** After the lease ran out, how long before the agent stops its VMs' QEMU (self-fence; default 5000 ms). */
  fenceAfterMs?: number;
  /** How often this member looks at the other hosts (default 1000 ms). */
  observeEveryMs?: number;
  /**
   * The address a live migration's source reaches this host at (`--migration-address`): the
   * destination QEMU listens there on a free TCP port. Default 127.0.0.1 (hosts on one machine).
   */
  migrationAddress?: string;
}

/** The defaults, in one place (docs/cluster.md quotes them). */
export const CLUSTER_DEFAULTS = { leaseTtlMs: 10_000, fenceAfterMs: 5_000, observeEveryMs: 1_000 } as const;

/** Where `add` places the new VM in a cluster. */
export interface PlacementOptions {
  /** Pin to this host (`add --host NAME`). */
  host?: string;
  /** Only hosts carrying every one of these labels (`add --constraint k=v`). */
  constraints?: Record<string, string>;
}
