/**
 * The view of a maqet instance through which one request's operation runs, stamped with its
 * caller and correlation id: `maqet.as(caller)` (the core's per-operation metadata). With a core
 * that has no `as` yet, the instance itself (events then carry the agent's own metadata).
 *
 * @example
 * ```ts
 * await asCaller(maqet, { user: "ada", pid: 4242, source: "cli" }).stop("web");
 * ```
 */
import type { Maqet } from "../api/maqet.ts";
import type { CallerIdentity } from "./caller-identity.ts";

type WithAs = Maqet & { as?: (caller: CallerIdentity) => Maqet };

export function asCaller(maqet: Maqet, caller: CallerIdentity): Maqet {
  const as = (maqet as WithAs).as;
  return typeof as === "function" ? as.call(maqet, caller) : maqet;
}

/** True when the core stamps each operation with its own caller (`maqet.as`). */
export function hasPerCallerMetadata(maqet: Maqet): boolean {
  return typeof (maqet as WithAs).as === "function";
}
