/**
 * The VM machine (XState v5): `stopped -> starting -> running (active | paused) -> stopping ->
 * stopped`, `removed` final. Every effect is a named, invoked actor (`record`, `launch`,
 * `reattach`, `stop`, `finish`, `watch`) that {@link createVmActor} provides for real and unit
 * tests replace with `.provide()`. Each lifecycle transition completes only after its fact was
 * recorded (decide -> append -> apply); if recording fails the state does not advance and the
 * operation fails with the store's error.
 *
 * Why one long file: it is one state chart, read top to bottom; the facts it records are built
 * in vm-facts.ts and its vocabulary lives in vm-machine-types.ts.
 *
 * @example
 * ```ts
 * const actor = createActor(vmMachine.provide({ actors: fakes }), { input: { view } }).start();
 * actor.send({ type: "START", opId: "1", timeoutMs: 30000 });
 * ```
 */
import { assign, type EventObject, fromCallback, fromPromise, setup } from "xstate";
import { MaqetError } from "../errors/maqet-error.ts";
import type { NewEvent, StoredEvent } from "../events/envelope.ts";
import { type StopMethod, vmEvent } from "../events/vm-events.ts";
import type { LaunchedVm, LaunchInput } from "./launch-qemu.ts";
import { pausedDetailOf } from "./paused-detail.ts";
import type { LeaseHolder } from "./ports.ts";
import type { ReattachInput, ReattachResult } from "./reattach-qemu.ts";
import { runtimePaths } from "./runtime-paths.ts";
import type { StopInput, StopOutcome } from "./stop-qemu.ts";
import { crashFacts, failedStartFacts, goneFacts, reattachFacts, shutdownFacts, startedFacts } from "./vm-facts.ts";
import type { FinishInput, VmCommand, VmMachineContext, VmMachineEvent } from "./vm-machine-types.ts";
import { applyVmEvent, mayHaveProcess, type VmView } from "./vm-view.ts";
import type { WatchInput } from "./watch-qemu.ts";

export type {
  FinishInput,
  RecordedEvent,
  VmCommand,
  VmMachineContext,
  VmMachineEvent,
  VmOutcome,
} from "./vm-machine-types.ts";

function notProvided(name: string): never {
  throw new MaqetError("INTERNAL", `VM machine effect '${name}' was not provided.`);
}

/** Applies recorded events to the view; events it already has (by version) are skipped. */
const applied = (view: VmView, events: StoredEvent[]): VmView =>
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

/** Pauses a host command causes (`stop`, a live snapshot job); any other STOP is the guest's. */
const HOST_PAUSES = ["paused", "snapshot"];

export const vmMachine = setup({
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
}).createMachine({
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

    starting: {
      initial: "requesting",
      states: {
        requesting: {
          invoke: {
            src: "record",
            input: ({ context }) => ({
              events: [
                vmEvent("vm.start-requested", {
                  timeoutMs: context.op?.type === "START" ? context.op.timeoutMs : 0,
                  ...(context.op?.type === "START" && context.op.runtimeDir
                    ? { runtimeDir: context.op.runtimeDir }
                    : {}),
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
    },

    running: {
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
    },

    /**
     * A live migration out holds QEMU's session and reads its events itself (migrate-out.ts): the
     * source's STOP at switchover is the migration's, not a pause to record.
     */
    migrating: {
      on: {
        "MIGRATION.END": [
          { guard: ({ event }) => event.moved, target: "migratedAway" },
          { target: "running", actions: assign({ observedRunning: ({ event }) => event.running }) },
        ],
      },
    },

    /** The VM is another QEMU's now (maybe another host's): this machine is done with it. */
    migratedAway: { type: "final" },

    stopping: {
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
    },

    /** QEMU reported SHUTDOWN on its own (guest power-off, or a host `quit`/signal): end the process. */
    ending: {
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
    },

    /** QEMU exited under our eyes without SHUTDOWN: a crash. */
    recordingExit: {
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
    },

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
