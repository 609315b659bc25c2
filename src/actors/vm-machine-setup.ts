/**
 * The VM machine's vocabulary for XState: its context, events and input, the effects it invokes
 * (`record`, `launch`, `reattach`, `stop`, `finish`, `watch`: not provided here, so a machine
 * nobody wired fails with INTERNAL), its actions and guards. The chart (vm-machine.ts) and its
 * states (vm-machine-starting.ts, vm-machine-running.ts, vm-machine-stopping.ts) are built on it.
 *
 * @example
 * ```ts
 * export const someState = vmMachineSetup.createStateConfig({ on: { STOP: { target: "#vm.stopping" } } });
 * ```
 */
import { assign, type EventObject, fromCallback, fromPromise, setup } from "xstate";
import { MaqetError } from "../errors/maqet-error.ts";
import type { NewEvent, StoredEvent } from "../events/envelope.ts";
import type { StopMethod } from "../events/vm-events.ts";
import type { LaunchedVm, LaunchInput } from "./launch-qemu.ts";
import type { LeaseHolder } from "./ports.ts";
import type { ReattachInput, ReattachResult } from "./reattach-qemu.ts";
import type { StopInput, StopOutcome } from "./stop-qemu.ts";
import type { FinishInput, VmMachineContext, VmMachineEvent } from "./vm-machine-types.ts";
import { applyVmEvent, mayHaveProcess, type VmView } from "./vm-view.ts";
import type { WatchInput } from "./watch-qemu.ts";

function notProvided(name: string): never {
  throw new MaqetError("INTERNAL", `VM machine effect '${name}' was not provided.`);
}

/** Applies recorded events to the view; events it already has (by version) are skipped. */
export const applied = (view: VmView, events: StoredEvent[]): VmView =>
  events.reduce<VmView>((v, e) => (e.streamVersion <= v.version ? v : (applyVmEvent(v, e) ?? v)), view);

/**
 * What the machine records or observes. `spontaneous`: QEMU or the guest did it on its own (a
 * crash, a guest reset or power-off, a pause on I/O error): recorded under a correlation id of
 * its own, never as part of whatever operation happens to hold the VM.
 */
export interface RecordInput {
  events: NewEvent[];
  spontaneous?: boolean;
}

export const vmMachineSetup = setup({
  types: {
    context: {} as VmMachineContext,
    events: {} as VmMachineEvent,
    input: {} as { view: VmView; recoveredFrom?: LeaseHolder },
  },
  actors: {
    record: fromPromise<StoredEvent[], RecordInput>(async () => notProvided("record")),
    launch: fromPromise<LaunchedVm, Omit<LaunchInput, "signal">>(async () => notProvided("launch")),
    reattach: fromPromise<ReattachResult, Omit<ReattachInput, "signal">>(async () => notProvided("reattach")),
    stop: fromPromise<StopOutcome, Omit<StopInput, "signal">>(async () => notProvided("stop")),
    finish: fromPromise<StopMethod, FinishInput>(async () => notProvided("finish")),
    watch: fromCallback<EventObject, WatchInput | undefined>(() => notProvided("watch")),
  },
  actions: {
    /** Records an observation (pause/resume) in order, without holding the machine up. */
    observe: (_args, _params: RecordInput) => notProvided("observe"),
    closeSession: ({ context }) => {
      context.session?.close().catch(() => undefined);
    },
    succeed: assign({
      outcome: ({ context }) => (context.op ? { opId: context.op.opId, ok: true } : context.outcome),
      op: undefined,
    }),
    fail: assign({
      outcome: ({ context }) =>
        context.op ? { opId: context.op.opId, ok: false, error: context.failure } : context.outcome,
      op: undefined,
      failure: undefined,
    }),
  },
  guards: {
    removed: ({ context }) => context.view.status === "removed",
    mayHaveProcess: ({ context }) => mayHaveProcess(context.view),
  },
});
