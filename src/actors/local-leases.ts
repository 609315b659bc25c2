/**
 * Leases for a store with no database behind it (the in-memory store of tests, or an embedding
 * that runs maqet in a single process): every acquire succeeds, nothing crosses processes.
 *
 * @example
 * ```ts
 * const ports = { ...realPorts, leases: localLeases() };
 * ```
 */
import type { VmLeases } from "./ports.ts";

export function localLeases(): VmLeases {
  return {
    acquire: async () => ({}),
    renew: async () => undefined,
    release: async () => undefined,
  };
}
