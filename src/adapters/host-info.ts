/**
 * Facts about this host the VM actor needs: whether KVM is usable (for `accel: auto`).
 *
 * @example
 * ```ts
 * if (await createHostInfo().kvmUsable()) console.log("KVM available");
 * ```
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { availableParallelism, hostname, totalmem } from "node:os";
import type { HostInfo } from "../actors/ports.ts";

export function createHostInfo(kvmDevice = "/dev/kvm"): HostInfo {
  let cached: Promise<boolean> | undefined;
  return {
    kvmUsable: () => {
      cached ??= access(kvmDevice, constants.R_OK | constants.W_OK).then(
        () => true,
        () => false,
      );
      return cached;
    },
  };
}

/**
 * What this host offers VMs in a cluster: its memory and CPUs (`maqet host ls`, the scheduler).
 *
 * @example
 * ```ts
 * hostCapacity(); // { memoryBytes: 16777216000, cpus: 8 }
 * ```
 */
export function hostCapacity(): { memoryBytes: number; cpus: number } {
  return { memoryBytes: totalmem(), cpus: availableParallelism() };
}

/**
 * This host's name, as the kernel has it (`uname -n`).
 *
 * @example
 * ```ts
 * hostName(); // "web01"
 * ```
 */
export function hostName(): string {
  return hostname();
}
