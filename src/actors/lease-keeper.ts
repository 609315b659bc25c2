/**
 * Keeps a VM's lease fresh while its actor lives: holders on other hosts are judged by when they
 * last renewed. A failed renewal is left to the next one (the lease store's time to live is three
 * renewals long).
 *
 * @example
 * ```ts
 * const timer = keepLease(ports.leases, vmId);
 * // ... on close:
 * clearInterval(timer);
 * ```
 */
import type { VmLeases } from "./ports.ts";
import { LEASE_RENEW_MS } from "./vm-actor-types.ts";

/** Renews `vmId`'s lease every `everyMs` (default {@link LEASE_RENEW_MS}) until the timer is cleared. */
export function keepLease(
  leases: Pick<VmLeases, "renew">,
  vmId: string,
  everyMs = LEASE_RENEW_MS,
): ReturnType<typeof setInterval> {
  const timer = setInterval(() => {
    leases.renew(vmId).catch(() => undefined);
  }, everyMs);
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
