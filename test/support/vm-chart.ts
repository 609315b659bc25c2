/**
 * The VM state chart (src/actors/vm-machine.ts) driven by itself, every effect a recording fake
 * (`.provide()`): what the chart asks each effect, what it records and observes. Used by
 * test/unit/vm-machine*.test.ts.
 *
 * @example
 * ```ts
 * const m = driveVmChart(viewOf(), { launch: async () => launchedVm() });
 * m.actor.send({ type: "START", opId: "1", timeoutMs: 100 });
 * await m.settled("running");
 * ```
 */
import { type AnyActorRef, createActor, fromCallback, fromPromise, waitFor } from "xstate";
import type { LaunchedVm } from "../../src/actors/launch-qemu.ts";
import type { LaunchedProcess, QmpSession } from "../../src/actors/ports.ts";
import type { ReattachResult } from "../../src/actors/reattach-qemu.ts";
import type { StopOutcome } from "../../src/actors/stop-qemu.ts";
import { type FinishInput, type RecordInput, vmMachine } from "../../src/actors/vm-machine.ts";
import { foldVmEvents, type VmView } from "../../src/actors/vm-view.ts";
import { validateVmConfig } from "../../src/config/parse-vm-config.ts";
import type { NewEvent, StoredEvent } from "../../src/events/envelope.ts";
import { type VmEventData, type VmEventType, vmEvent } from "../../src/events/vm-events.ts";
import { storedStream } from "./store-events.ts";

export const vmId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
export const config = validateVmConfig({ name: "web", memory: "64M" }, { source: "test", baseDir: "/tmp" });
export const ev = <K extends VmEventType>(type: K, data: VmEventData[K]) => vmEvent(type, data);

/** Stored facts of the VM's stream from version `first` on. */
export const storedFrom = (events: NewEvent[], first: number): StoredEvent[] =>
  storedStream(`vm-${vmId}`, events, first);

/** The view of a stream of these facts (vm.defined first). */
export function viewOf(...events: NewEvent[]): VmView {
  return foldVmEvents(storedFrom([ev("vm.defined", { vmId, name: "web", config }), ...events], 0))!;
}

export const startRequested = ev("vm.start-requested", { timeoutMs: 5000, runtimeDir: "/run/maqet/web" });
/** The run the fake launch starts (pid 4242), as vm.started records it. */
const run = {
  pid: 4242,
  qmpSocket: "/run/maqet/web/qmp.sock",
  runtimeDir: "/run/maqet/web",
  pidFile: "/run/maqet/web/qemu.pid",
  argv: [],
  binary: "qemu-system-x86_64",
  accel: "tcg",
  durationMs: 1,
};
export const started = ev("vm.started", run);

export function fakeSession(): QmpSession & { closes: number } {
  const session = {
    closes: 0,
    isClosed: false,
    close: async () => {
      session.closes += 1;
    },
  };
  return session as unknown as QmpSession & { closes: number };
}

export interface Effects {
  launch?: () => Promise<LaunchedVm>;
  reattach?: () => Promise<ReattachResult>;
  stop?: () => Promise<StopOutcome>;
  finish?: () => Promise<"powerdown" | "quit" | "sigterm" | "sigkill" | "none">;
  record?: (input: RecordInput) => Promise<void>;
}

/** The chart with recording fakes for every effect, started on `view`. */
export function drive(view: VmView, effects: Effects = {}) {
  const recorded: RecordInput[] = [];
  const observed: RecordInput[] = [];
  const inputs: Record<string, unknown[]> = { launch: [], reattach: [], stop: [], finish: [], watch: [] };
  let version = view.version;
  const machine = vmMachine.provide({
    actors: {
      record: fromPromise<StoredEvent[], RecordInput>(async ({ input }) => {
        await effects.record?.(input);
        recorded.push(input);
        const stored = storedFrom(input.events, version + 1);
        version += input.events.length;
        return stored;
      }),
      launch: fromPromise(async ({ input }) => {
        inputs.launch!.push(input);
        if (!effects.launch) throw new Error("no launch in this test");
        return effects.launch();
      }),
      reattach: fromPromise(async ({ input }) => {
        inputs.reattach!.push(input);
        if (!effects.reattach) throw new Error("no reattach in this test");
        return effects.reattach();
      }),
      stop: fromPromise(async ({ input }) => {
        inputs.stop!.push(input);
        if (!effects.stop) throw new Error("no stop in this test");
        return effects.stop();
      }),
      finish: fromPromise<"powerdown" | "quit" | "sigterm" | "sigkill" | "none", FinishInput>(async ({ input }) => {
        inputs.finish!.push(input);
        return effects.finish ? effects.finish() : "none";
      }),
      watch: fromCallback(({ input }) => {
        inputs.watch!.push(input);
        return () => undefined;
      }),
    },
    actions: {
      observe: (_args, params: RecordInput) => {
        observed.push(params);
      },
    },
  });
  const actor = createActor(machine, { input: { view } }).start();
  const settled = (state: string) =>
    waitFor(
      actor as AnyActorRef,
      // There, with no effect still pending (the watch runs for as long as the VM does).
      (s) =>
        s.matches(state) &&
        Object.values(s.children as Record<string, { src: unknown }>).every((c) => c.src === "watch"),
      { timeout: 5000 },
    );
  const types = () => recorded.flatMap((r) => r.events.map((e) => e.type));
  return { actor, recorded, observed, inputs, settled, types };
}

export const launchedVm = (session = fakeSession()): LaunchedVm => ({
  ...run,
  session,
  launched: { pid: run.pid } as unknown as LaunchedProcess,
  qemuVersion: "9.2.0",
  disksCreated: [],
});
