/**
 * The ways a running VM ends: `stopping` (our stop or remove: record the request, escalate, record
 * the stop), `ending` (QEMU shut down on its own: end the process, record it) and `recordingExit`
 * (QEMU exited without SHUTDOWN: a crash).
 *
 * @example
 * ```ts
 * vmMachineSetup.createMachine({ states: { stopping: stoppingState, ending: endingState, ... } });
 * ```
 */
import { assign } from "xstate";
import { vmEvent } from "../events/vm-events.ts";
import { crashFacts, shutdownFacts } from "./vm-facts.ts";
import { applied, vmMachineSetup } from "./vm-machine-setup.ts";
import type { VmCommand } from "./vm-machine-types.ts";

export const stoppingState = vmMachineSetup.createStateConfig({
  initial: "requesting",
  states: {
    requesting: {
      invoke: {
        src: "record",
        input: ({ context }) => {
          const op = context.op as Extract<VmCommand, { type: "STOP" | "REMOVE" }>;
          const request = vmEvent("vm.stop-requested", { force: op.force, timeoutMs: op.timeoutMs });
          // A forced stop's one step is known now: recorded with the request (one append).
          return { events: op.force ? [request, vmEvent("vm.stop-step", { step: "sigkill" })] : [request] };
        },
        onDone: {
          target: "escalating",
          actions: assign({ view: ({ context, event }) => applied(context.view, event.output) }),
        },
        onError: { target: "#vm.running", actions: [assign({ failure: ({ event }) => event.error }), "fail"] },
      },
    },
    escalating: {
      invoke: {
        src: "stop",
        input: ({ context }) => {
          const op = context.op as Extract<VmCommand, { type: "STOP" | "REMOVE" }>;
          return {
            name: context.view.name,
            pid: context.view.pid ?? -1,
            marker: context.view.vmId,
            session: context.session,
            launched: context.launched,
            force: op.force,
            timeoutMs: op.timeoutMs,
            ...(op.force ? { recordedStep: "sigkill" as const } : {}),
          };
        },
        onDone: { target: "recording", actions: assign({ stopOutcome: ({ event }) => event.output }) },
        onError: { target: "#vm.running", actions: [assign({ failure: ({ event }) => event.error }), "fail"] },
      },
    },
    recording: {
      invoke: {
        src: "record",
        input: ({ context }) => ({ events: [vmEvent("vm.stopped", context.stopOutcome!)] }),
        onDone: [
          {
            guard: ({ context }) => context.op?.type === "REMOVE",
            target: "#vm.removing",
            actions: assign({
              view: ({ context, event }) => applied(context.view, event.output),
              stopOutcome: undefined,
            }),
          },
          {
            target: "#vm.stopped",
            actions: [
              assign({ view: ({ context, event }) => applied(context.view, event.output), stopOutcome: undefined }),
              "succeed",
            ],
          },
        ],
        onError: { target: "#vm.stopped", actions: [assign({ failure: ({ event }) => event.error }), "fail"] },
      },
    },
  },
});

/** QEMU reported SHUTDOWN on its own (guest power-off, or a host `quit`/signal): end the process. */
export const endingState = vmMachineSetup.createStateConfig({
  initial: "finishing",
  states: {
    finishing: {
      invoke: {
        src: "finish",
        input: ({ context }) => ({
          name: context.view.name,
          pid: context.view.pid ?? -1,
          marker: context.view.vmId,
          session: context.session,
        }),
        onDone: {
          target: "recording",
          actions: assign({
            shutdown: ({ context, event }) => ({ guest: false, ...context.shutdown, method: event.output }),
          }),
        },
        onError: { target: "recording" },
      },
    },
    recording: {
      invoke: {
        src: "record",
        input: ({ context }) => ({
          events: shutdownFacts(context.view, context.shutdown),
          spontaneous: context.shutdown?.guest === true,
        }),
        onDone: {
          target: "#vm.stopped",
          actions: assign({ view: ({ context, event }) => applied(context.view, event.output) }),
        },
        onError: { target: "#vm.stopped" },
      },
    },
  },
});

/** QEMU exited under our eyes without SHUTDOWN: a crash. */
export const recordingExitState = vmMachineSetup.createStateConfig({
  invoke: {
    src: "record",
    input: ({ context }) => ({
      events: crashFacts(context.view, context.exit),
      spontaneous: true,
    }),
    onDone: {
      target: "stopped",
      actions: assign({ view: ({ context, event }) => applied(context.view, event.output) }),
    },
    onError: { target: "stopped" },
  },
});
