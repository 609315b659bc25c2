/**
 * The VM machine's `starting` state: record the request, launch QEMU, record that it started (or
 * why it did not); a QEMU whose start could not be recorded is stopped again, so no VM runs
 * unrecorded.
 *
 * @example
 * ```ts
 * vmMachineSetup.createMachine({ states: { starting: startingState, ... } });
 * ```
 */
import { assign } from "xstate";
import { vmEvent } from "../events/vm-events.ts";
import { failedStartFacts, startedFacts } from "./vm-facts.ts";
import { applied, vmMachineSetup } from "./vm-machine-setup.ts";

export const startingState = vmMachineSetup.createStateConfig({
  initial: "requesting",
  states: {
    requesting: {
      invoke: {
        src: "record",
        input: ({ context }) => ({
          events: [
            vmEvent("vm.start-requested", {
              timeoutMs: context.op?.type === "START" ? context.op.timeoutMs : 0,
              ...(context.op?.type === "START" && context.op.runtimeDir ? { runtimeDir: context.op.runtimeDir } : {}),
            }),
          ],
        }),
        onDone: {
          target: "launching",
          actions: assign({ view: ({ context, event }) => applied(context.view, event.output) }),
        },
        onError: { target: "#vm.stopped", actions: [assign({ failure: ({ event }) => event.error }), "fail"] },
      },
    },
    launching: {
      invoke: {
        src: "launch",
        input: ({ context }) => ({
          vmId: context.view.vmId,
          name: context.view.name,
          config: context.view.config,
          timeoutMs: context.op?.type === "START" ? context.op.timeoutMs : 30_000,
        }),
        onDone: { target: "recording", actions: assign({ launchResult: ({ event }) => event.output }) },
        onError: { target: "recordingFailure", actions: assign({ failure: ({ event }) => event.error }) },
      },
    },
    recording: {
      invoke: {
        src: "record",
        input: ({ context }) => ({ events: startedFacts(context.launchResult!) }),
        onDone: {
          target: "#vm.running",
          actions: [
            assign({
              view: ({ context, event }) => applied(context.view, event.output),
              session: ({ context }) => context.launchResult?.session,
              launched: ({ context }) => context.launchResult?.launched,
              observedRunning: true,
              launchResult: undefined,
            }),
            "succeed",
          ],
        },
        onError: { target: "aborting", actions: assign({ failure: ({ event }) => event.error }) },
      },
    },
    aborting: {
      // QEMU runs but its fact could not be recorded: do not leave an unrecorded VM behind.
      invoke: {
        src: "stop",
        input: ({ context }) => {
          const r = context.launchResult!;
          return {
            name: context.view.name,
            pid: r.pid,
            marker: context.view.vmId,
            session: r.session,
            launched: r.launched,
            force: true,
            timeoutMs: 0,
          };
        },
        onDone: { target: "#vm.stopped", actions: ["fail", assign({ launchResult: undefined })] },
        onError: { target: "#vm.stopped", actions: ["fail", assign({ launchResult: undefined })] },
      },
    },
    recordingFailure: {
      invoke: {
        src: "record",
        input: ({ context }) => ({ events: failedStartFacts(context.failure) }),
        onDone: {
          target: "#vm.stopped",
          actions: [assign({ view: ({ context, event }) => applied(context.view, event.output) }), "fail"],
        },
        onError: { target: "#vm.stopped", actions: "fail" },
      },
    },
  },
});
