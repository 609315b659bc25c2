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
