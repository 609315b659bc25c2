/**
 * The facts a VM records when an effect ends (a start, a crash, a shutdown), built from what it returned: pure
 * functions, so the machine stays a map of states and the wording of facts lives in one place.
 *
 * @example
 * ```ts
 * await recorder.record(startedFacts(launched)); // [disk.created…, vm.started]
 * ```
 */
import type { NewEvent } from "../events/envelope.ts";
import { vmEvent } from "../events/vm-events.ts";
import { LaunchError, type LaunchedVm } from "./launch-qemu.ts";
import { pausedDetailOf } from "./paused-detail.ts";
import type { LeaseHolder } from "./ports.ts";
import type { ReattachResult } from "./reattach-qemu.ts";
import type { VmMachineContext } from "./vm-machine-types.ts";
import type { VmView } from "./vm-view.ts";

/** A successful start: the disks it created, then `vm.started` with everything a reattach needs. */
export function startedFacts(r: LaunchedVm): NewEvent[] {
  return [
    ...r.disksCreated.map((d) => vmEvent("disk.created", d)),
    vmEvent("vm.started", {
      pid: r.pid,
      qmpSocket: r.qmpSocket,
      runtimeDir: r.runtimeDir,
      pidFile: r.pidFile,
      argv: r.argv,
      binary: r.binary,
      accel: r.accel,
      qemuVersion: r.qemuVersion,
      durationMs: r.durationMs,
      ...(r.forwards ? { forwards: r.forwards } : {}),
    }),
  ];
}

/** A failed start: the disks it still created (they exist now), then `vm.start-failed` with QEMU's words. */
export function failedStartFacts(failure: unknown): NewEvent[] {
  const launchError = failure instanceof LaunchError ? failure : undefined;
  const error = failure as { code?: string; message?: string } | undefined;
  return [
    ...(launchError?.disksCreated ?? []).map((d) => vmEvent("disk.created", d)),
    vmEvent("vm.start-failed", {
      reason: error?.code ?? "START_FAILED",
      message: error?.message ?? String(failure),
      stderr: launchError?.stderr,
      durationMs: launchError?.durationMs ?? 0,
    }),
  ];
}

/**
 * QEMU found gone by a process that did not watch it: an interrupted start, or an exit nobody
 * saw (`exited-unsupervised`).
 */
export function goneFacts(view: VmView, gone?: Extract<ReattachResult, { kind: "gone" }>): NewEvent[] {
  if (view.status === "starting") {
    const orphan = gone?.orphanKilled;
    return [
      vmEvent("vm.start-failed", {
        reason: "interrupted",
        message:
          orphan === undefined
            ? "The starting process ended before QEMU was up."
            : `The starting process ended before recording the start; its QEMU (pid ${orphan}) was stopped.`,
        durationMs: 0,
      }),
    ];
  }
  return [vmEvent("vm.stopped", { detail: "exited-unsupervised", method: "none", pid: view.pid })];
}

/**
 * What changed while no maqet process watched a VM that is still running: QEMU paused (or
 * resumed) with nobody to record it. Empty when the stream already tells the truth.
 */
export function runStateDrift(view: VmView, found: ReattachResult): NewEvent[] {
  if (found.kind !== "attached") return [];
  if (!found.running && view.status === "running") {
    return [vmEvent("vm.paused", { detail: pausedDetailOf(found.status), reason: found.status })];
  }
  if (found.running && view.status === "paused") return [vmEvent("vm.resumed", { reason: "observed-on-reattach" })];
  return [];
}

/** QEMU reported SHUTDOWN on its own (guest power-off, a host `quit` or signal) and was ended. */
export function shutdownFacts(view: VmView, shutdown: VmMachineContext["shutdown"]): NewEvent[] {
  return [
    vmEvent("vm.stopped", {
      detail: "shutdown",
      guest: shutdown?.guest ?? false,
      reason: shutdown?.reason,
      method: shutdown?.method,
      pid: view.pid,
    }),
  ];
}

/** QEMU exited under a watching process with no SHUTDOWN first. */
export function crashFacts(view: VmView, exit: VmMachineContext["exit"]): NewEvent[] {
  return [
    vmEvent("vm.stopped", {
      detail: "crashed",
      exitCode: exit?.exitCode ?? null,
      signal: exit?.signal ?? null,
      pid: view.pid,
    }),
  ];
}

/**
 * What a process that connects to a live QEMU records: `vm.reattached` when it took the VM over
 * from a dead driver or the stream was mid-operation (starting, stopping), else only a pause or
 * resume that happened unseen.
 */
export function reattachFacts(view: VmView, found: ReattachResult, recoveredFrom?: LeaseHolder): NewEvent[] {
  if (found.kind !== "attached") return [];
  if (recoveredFrom === undefined && view.status !== "stopping" && view.status !== "starting") {
    return runStateDrift(view, found);
  }
  return [
    vmEvent("vm.reattached", {
      pid: found.pid,
      status: found.status,
      running: found.running,
      ...(recoveredFrom
        ? { previousHolder: { host: recoveredFrom.host, pid: recoveredFrom.pid, command: recoveredFrom.command } }
        : {}),
    }),
  ];
}
