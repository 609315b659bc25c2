/**
 * VM names are claimed in the append's own transaction: a trigger on `maqet_events`
 * (migrations/0003-projections.ts) keeps `maqet_vm_names` (name primary key) in step with
 * `vm.defined` and `vm.removed`. An append that would give a second live VM the same name fails
 * on that key and writes nothing; this recognises that failure, whichever error wraps it.
 *
 * @example
 * ```ts
 * try { await store.append(vmStreamId(id), [defined], { expectedVersion: "no_stream" }); }
 * catch (e) { if (isVmNameTaken(e)) throw new MaqetError("VM_EXISTS", "..."); throw e; }
 * ```
 */

/** The primary key whose violation means "this name is held by another live VM". */
export const VM_NAME_CLAIM_CONSTRAINT = "maqet_vm_names_pkey";

/**
 * True when `error` (or any error in its `cause` chain) is the name claim's unique violation.
 *
 * @example
 * ```ts
 * isVmNameTaken(new Error("x", { cause: { code: "23505", constraint: "maqet_vm_names_pkey" } })); // true
 * ```
 */
export function isVmNameTaken(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== null && typeof current === "object" && !seen.has(current)) {
    seen.add(current);
    const e = current as { code?: unknown; constraint?: unknown; cause?: unknown };
    if (e.code === "23505" && e.constraint === VM_NAME_CLAIM_CONSTRAINT) return true;
    current = e.cause;
  }
  return false;
}
