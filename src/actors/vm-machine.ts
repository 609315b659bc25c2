/**
 * The VM machine (XState v5): `stopped -> starting -> running (active | paused) -> stopping ->
 * stopped`, `removed` final. Every effect is a named, invoked actor (`record`, `launch`,
 * `reattach`, `stop`, `finish`, `watch`) that {@link createVmActor} provides for real and unit
 * tests replace with `.provide()`. Each lifecycle transition completes only after its fact was
 * recorded (decide -> append -> apply); if recording fails the state does not advance and the
 * operation fails with the store's error.
 *
 * This file is the chart, read top to bottom; its longer states are in vm-machine-starting.ts,
 * vm-machine-running.ts (and `migrating`) and vm-machine-stopping.ts (`stopping`, `ending`,
 * `recordingExit`), its effects, actions and guards in vm-machine-setup.ts, the facts it records
 * are built in vm-facts.ts and its vocabulary lives in vm-machine-types.ts.
 *
 * @example
 * ```ts
 * const actor = createActor(vmMachine.provide({ actors: fakes }), { input: { view } }).start();
 * actor.send({ type: "START", opId: "1", timeoutMs: 30000 });
 * ```
 */
import { assign } from "xstate";
import { vmEvent } from "../events/vm-events.ts";
import { runtimePaths } from "./runtime-paths.ts";
import { goneFacts, reattachFacts } from "./vm-facts.ts";
import { migratingState, runningState } from "./vm-machine-running.ts";
import { applied, vmMachineSetup } from "./vm-machine-setup.ts";
import { startingState } from "./vm-machine-starting.ts";
import { endingState, recordingExitState, stoppingState } from "./vm-machine-stopping.ts";

export type { RecordInput } from "./vm-machine-setup.ts";
export type {
  FinishInput,
  RecordedEvent,
  VmCommand,
  VmMachineContext,
  VmMachineEvent,
  VmOutcome,
} from "./vm-machine-types.ts";

export const vmMachine = vmMachineSetup.createMachine({
  id: "vm",
  context: ({ input }) => ({
    view: input.view,
    recoveredFrom: input.recoveredFrom,
    observedRunning: input.view.status !== "paused",
  }),
  initial: "boot",
  on: {
    RECORDED: { actions: assign({ view: ({ context, event }) => applied(context.view, event.events) }) },
  },
  states: {
    boot: {
      always: [
        { guard: "removed", target: "removed" },
        { guard: "mayHaveProcess", target: "reconciling" },
        { target: "stopped" },
      ],
    },

    reconciling: {
      invoke: {
        src: "reattach",
        input: ({ context }) => ({
          pid: context.view.pid,
          marker: context.view.vmId,
          qmpSocket: context.view.qmpSocket,
          // A start interrupted before vm.started left no pid in the stream: look in its pidfile.
          pidFile:
            context.view.status === "starting" && context.view.runtimeDir
              ? runtimePaths(context.view.runtimeDir).pidFile
              : undefined,
        }),
        onDone: [
          {
            guard: ({ event }) => event.output.kind === "attached" && event.output.status === "shutdown",
            target: "ending",
            actions: assign({
              session: ({ event }) => (event.output.kind === "attached" ? event.output.session : undefined),
              shutdown: { guest: true, reason: "guest-shutdown" },
            }),
          },
          {
            guard: ({ event }) => event.output.kind === "gone",
            target: "recordingGone",
            actions: assign({ gone: ({ event }) => (event.output.kind === "gone" ? event.output : undefined) }),
          },
          {
            target: "running",
            actions: [
              assign({
                session: ({ event }) => (event.output.kind === "attached" ? event.output.session : undefined),
                observedRunning: ({ event }) => event.output.kind !== "attached" || event.output.running,
              }),
              // Paused or resumed while nobody watched: the stream learns it now.
              {
                type: "observe",
                params: ({ context, event }) => ({
                  events: reattachFacts(context.view, event.output, context.recoveredFrom),
                }),
              },
            ],
          },
        ],
        onError: { target: "running" },
      },
    },

    recordingGone: {
      invoke: {
        src: "record",
        input: ({ context }) => ({ events: goneFacts(context.view, context.gone) }),
        onDone: {
          target: "stopped",
          actions: assign({ view: ({ context, event }) => applied(context.view, event.output) }),
        },
        onError: { target: "stopped", actions: assign({ failure: ({ event }) => event.error }) },
      },
    },

    stopped: {
      entry: [
        "closeSession",
        assign({ session: undefined, launched: undefined, shutdown: undefined, exit: undefined }),
      ],
      on: {
        START: { target: "starting", actions: assign({ op: ({ event }) => event }) },
        STOP: { actions: assign({ outcome: ({ event }) => ({ opId: event.opId, ok: true, noop: true }) }) },
        REMOVE: { target: "removing", actions: assign({ op: ({ event }) => event }) },
      },
    },

    starting: startingState,

    running: runningState,

    migrating: migratingState,

    /** The VM is another QEMU's now (maybe another host's): this machine is done with it. */
    migratedAway: { type: "final" },

    stopping: stoppingState,

    ending: endingState,

    recordingExit: recordingExitState,

    removing: {
      invoke: {
        src: "record",
        input: ({ context }) => ({
          events: [vmEvent("vm.removed", { force: context.op?.type === "REMOVE" ? context.op.force : false })],
        }),
        onDone: {
          target: "removed",
          actions: [assign({ view: ({ context, event }) => applied(context.view, event.output) }), "succeed"],
        },
        onError: { target: "stopped", actions: [assign({ failure: ({ event }) => event.error }), "fail"] },
      },
    },

    removed: {
      entry: "closeSession",
      type: "final",
    },
  },
});
