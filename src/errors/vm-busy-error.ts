/**
 * The one wording of VM_BUSY, used by the lease store (which knows ids) and re-raised by the
 * orchestrator with the VM's name.
 */
import type { LeaseHolder } from "../actors/ports.ts";
import { MaqetError } from "./maqet-error.ts";

/**
 * VM_BUSY for a VM another live process drives, naming it ("being driven by pid P on host H
 * since T"). The orchestrator re-raises it with the VM's name (the lease table knows only ids).
 *
 * @example
 * ```ts
 * throw vmBusyError("web", vmId, holder);
 * ```
 */
export function vmBusyError(name: string, vmId: string, holder: LeaseHolder): MaqetError {
  return new MaqetError(
    "VM_BUSY",
    `VM '${name}' is being driven by pid ${holder.pid} on host ${holder.host} since ${holder.acquiredAt.toISOString()}` +
      `${holder.command ? ` (${holder.command})` : ""}. Wait for it to finish, or stop that process.`,
    { details: { vmId, holder } },
  );
}
