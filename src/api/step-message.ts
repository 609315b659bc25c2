/**
 * The words for one step of a long wait (src/actors/operation-scope.ts `OperationStep`): what it
 * did, what it waits for, and for how long at most. Shown by the CLI while it waits (a live line
 * on a terminal, plain lines otherwise) and carried on `progress$` for library callers.
 *
 * @example
 * ```ts
 * stepMessage("web", { operation: "vm.stop", step: "powerdown", waitMs: 30000 });
 * // "stopping VM 'web': ACPI powerdown sent, waiting up to 30s for the guest to power off"
 * ```
 */
import type { OperationStep } from "../actors/operation-scope.ts";

export function stepMessage(vmName: string, step: OperationStep): string {
  const upTo = `up to ${seconds(step.waitMs)}`;
  const pid = step.pid === undefined ? "" : ` (pid ${step.pid})`;
  if (step.operation === "vm.migrate") return `migrating VM '${vmName}': ${step.message ?? step.step}`;
  if (step.operation === "vm.start") {
    return `starting VM '${vmName}': QEMU is up${pid}, waiting ${upTo} for ${conditionWords(step.condition)}`;
  }
  switch (step.step) {
    case "powerdown":
      return `stopping VM '${vmName}': ACPI powerdown sent, waiting ${upTo} for the guest to power off`;
    case "quit":
      return `stopping VM '${vmName}': the guest did not power off; QMP quit sent, waiting ${upTo}`;
    case "sigterm":
      return `stopping VM '${vmName}': SIGTERM sent to QEMU${pid}, waiting ${upTo}`;
    case "sigkill":
      return `stopping VM '${vmName}': SIGKILL sent to QEMU${pid}, waiting ${upTo}`;
    default:
      return `stopping VM '${vmName}': ${step.step}, waiting ${upTo}`;
  }
}

function conditionWords(condition: string | undefined): string {
  if (condition === undefined || condition === "qmp") return "QMP and the guest running";
  if (condition.startsWith("serial:")) return `serial output matching /${condition.slice(7)}/`;
  if (condition.startsWith("file:")) return `the file ${condition.slice(5)} to appear`;
  if (condition.startsWith("ssh:")) {
    return `its SSH server: an SSH-2.0 banner on ${condition.slice(4)} (forwarded to guest port 22)`;
  }
  return condition;
}

/** 30000 → "30s", 57700 → "58s", 400 → "1s": whole seconds, as a person reads a wait. */
function seconds(ms: number): string {
  return `${ms <= 0 ? 0 : Math.max(1, Math.round(ms / 1000))}s`;
}
