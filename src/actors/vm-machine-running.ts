/**
 * The VM machine's `running` state (active or paused, as QEMU's events say; each pause, resume,
 * reset or panic observed and recorded), and `migrating`: a live migration out holds the session
 * meanwhile.
 *
 * @example
 * ```ts
 * vmMachineSetup.createMachine({ states: { running: runningState, migrating: migratingState, ... } });
 * ```
 */
import { assign } from "xstate";
import { MaqetError } from "../errors/maqet-error.ts";
import { vmEvent } from "../events/vm-events.ts";
import { pausedDetailOf } from "./paused-detail.ts";
import { vmMachineSetup } from "./vm-machine-setup.ts";

/** Pauses a host command causes (`stop`, a live snapshot job); any other STOP is the guest's. */
const HOST_PAUSES = ["paused", "snapshot"];

export const runningState = vmMachineSetup.createStateConfig({
  invoke: {
    src: "watch",
    input: ({ context }) =>
      context.session && context.view.pid !== undefined
        ? { pid: context.view.pid, marker: context.view.vmId, session: context.session, launched: context.launched }
        : undefined,
  },
  initial: "resolving",
  on: {
    START: {
      actions: [
        assign({
          op: ({ event }) => event,
          failure: ({ context }) =>
            new MaqetError(
              "VM_INVALID_STATE",
              `VM '${context.view.name}' is already running (pid ${context.view.pid}).`,
            ),
        }),
        "fail",
      ],
    },
    STOP: { target: "stopping", actions: assign({ op: ({ event }) => event }) },
    "MIGRATION.BEGIN": { target: "migrating" },
    REMOVE: [
      {
        guard: ({ event }) => event.force,
        target: "stopping",
        actions: assign({ op: ({ event }) => event }),
      },
      {
        actions: [
          assign({
            op: ({ event }) => event,
            failure: ({ context }) =>
              new MaqetError(
                "VM_INVALID_STATE",
                `VM '${context.view.name}' is running. Stop it first with \`maqet stop ${context.view.name}\`, or remove it anyway with \`maqet rm --force ${context.view.name}\`.`,
              ),
          }),
          "fail",
        ],
      },
    ],
    "QMP.SHUTDOWN": {
      target: "ending",
      actions: assign({ shutdown: ({ event }) => ({ guest: event.guest, reason: event.reason }) }),
    },
    "PROCESS.EXITED": {
      target: "recordingExit",
      actions: assign({ exit: ({ event }) => ({ exitCode: event.exitCode, signal: event.signal }) }),
    },
    "QMP.LOST": { target: "reconciling", actions: ["closeSession", assign({ session: undefined })] },
    "QMP.RESET": {
      actions: {
        type: "observe",
        params: ({ event }) => ({
          events: [vmEvent("vm.reset", { guest: event.guest, reason: event.reason })],
          spontaneous: event.guest,
        }),
      },
    },
    "QMP.GUEST_PANICKED": {
      actions: {
        type: "observe",
        params: ({ event }) => ({
          events: [vmEvent("vm.guest-panicked", { action: event.action })],
          spontaneous: true,
        }),
      },
    },
  },
  states: {
    resolving: {
      always: [{ guard: ({ context }) => !context.observedRunning, target: "paused" }, { target: "active" }],
    },
    active: {
      on: {
        "QMP.SUSPEND": {
          target: "paused",
          actions: [
            assign({ observedRunning: false }),
            {
              type: "observe",
              params: {
                events: [vmEvent("vm.paused", { detail: "suspended", reason: "suspended" })],
                spontaneous: true,
              },
            },
          ],
        },
        "QMP.STOP": {
          target: "paused",
          actions: [
            assign({ observedRunning: false }),
            {
              type: "observe",
              params: ({ event }) => ({
                events: [vmEvent("vm.paused", { detail: pausedDetailOf(event.status), reason: event.status })],
                // io-error, watchdog, guest-panicked: the guest's doing, not a command's.
                spontaneous: event.status !== undefined && !HOST_PAUSES.includes(event.status),
              }),
            },
          ],
        },
      },
    },
    paused: {
      on: {
        "QMP.RESUME": {
          target: "active",
          actions: [
            assign({ observedRunning: true }),
            { type: "observe", params: { events: [vmEvent("vm.resumed", {})] } },
          ],
        },
        "QMP.WAKEUP": {
          target: "active",
          actions: [
            assign({ observedRunning: true }),
            { type: "observe", params: { events: [vmEvent("vm.resumed", { reason: "wakeup" })] } },
          ],
        },
      },
    },
  },
});

/**
 * A live migration out holds QEMU's session and reads its events itself (migrate-out.ts): the
 * source's STOP at switchover is the migration's, not a pause to record.
 */
export const migratingState = vmMachineSetup.createStateConfig({
  on: {
    "MIGRATION.END": [
      { guard: ({ event }) => event.moved, target: "migratedAway" },
      { target: "running", actions: assign({ observedRunning: ({ event }) => event.running }) },
    ],
  },
});
