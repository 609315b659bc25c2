/**
 * Where a new VM goes in a cluster (Incus's default): among the hosts that are `up`, not
 * draining, carry every `--constraint` label and have the VM's memory free, the one with the
 * fewest VMs, ties broken at random. Pure: the caller gives the hosts and the random source.
 *
 * @example
 * ```ts
 * const { host } = pickHost(hosts, { constraints: { zone: "a" }, memoryBytes: 2 ** 30 });
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";

export interface HostCandidate {
  name: string;
  state: string;
  draining: boolean;
  labels: Record<string, string>;
  capacity: { memoryBytes: number; cpus: number };
  /** VMs placed there now. */
  vms: number;
  /** Memory the VMs placed there ask for. */
  memoryUsedBytes: number;
}

export interface PickOptions {
  constraints?: Record<string, string>;
  /** The VM's memory (bytes); 0 or absent: not checked. */
  memoryBytes?: number;
  /** Hosts not to use (the one a VM is moved away from). */
  exclude?: readonly string[];
  /** In [0, 1); default Math.random. */
  random?: () => number;
}

/** Why a host was not chosen. */
export function skipReason(host: HostCandidate, options: PickOptions): string | undefined {
  if (options.exclude?.includes(host.name)) return "excluded (the VM is moving away from it)";
  if (host.state !== "up") return `it is ${host.state}`;
  if (host.draining) return "it is draining";
  for (const [key, value] of Object.entries(options.constraints ?? {})) {
    if (host.labels[key] !== value) return `label ${key}=${host.labels[key] ?? "(unset)"}, not ${value}`;
  }
  const need = options.memoryBytes ?? 0;
  if (need > 0 && host.capacity.memoryBytes > 0 && host.memoryUsedBytes + need > host.capacity.memoryBytes) {
    return `not enough free memory (${host.capacity.memoryBytes - host.memoryUsedBytes} of ${need} bytes)`;
  }
  return undefined;
}

/**
 * The chosen host; NO_HOST_AVAILABLE (details.hosts: each host and why it was skipped) if none fits.
 *
 * @example
 * ```ts
 * pickHost([{ name: "a", state: "up", draining: false, labels: {}, capacity, vms: 2, memoryUsedBytes: 0 }], {}).host; // "a"
 * ```
 */
export function pickHost(hosts: readonly HostCandidate[], options: PickOptions = {}): { host: string } {
  const fit = hosts.filter((h) => skipReason(h, options) === undefined);
  if (fit.length === 0) {
    const why = hosts.map((h) => ({ name: h.name, reason: skipReason(h, options)! }));
    const constraint = Object.entries(options.constraints ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(", ");
    throw new MaqetError(
      "NO_HOST_AVAILABLE",
      `No host can take the VM${constraint ? ` (constraints: ${constraint})` : ""}: ${
        why.length ? why.map((w) => `${w.name}: ${w.reason}`).join("; ") : "no host has joined"
      }. Start an agent (\`maqet agent --host NAME\`), relax --constraint, or \`maqet host restore\` a drained host.`,
      { details: { hosts: why, constraints: options.constraints ?? {} } },
    );
  }
  const fewest = Math.min(...fit.map((h) => h.vms));
  const tied = fit.filter((h) => h.vms === fewest);
  const random = options.random ?? Math.random;
  return { host: tied[Math.min(tied.length - 1, Math.floor(random() * tied.length))]!.name };
}
