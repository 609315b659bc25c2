/**
 * The VM machine wired to real effects: launching, reattaching, stopping and watching QEMU
 * through the ports, and the recording and observing the actor does (src/actors/vm-actor.ts).
 * Unit tests of the chart provide fakes instead (test/support/vm-chart.ts).
 *
 * @example
 * ```ts
 * const machine = provideVmEffects(ports, { record, observe, onStopStep });
 * const actor = createActor(machine, { input: { view } });
 * ```
 */
import { fromCallback, fromPromise } from "xstate";
import type { StoredEvent } from "../events/envelope.ts";
import { launchQemu } from "./launch-qemu.ts";
import type { VmPorts } from "./ports.ts";
import { reattachQemu } from "./reattach-qemu.ts";
import { escalateStop, type StopStep, stopQemu } from "./stop-qemu.ts";
import { type RecordInput, vmMachine } from "./vm-machine.ts";
import { watchQemu } from "./watch-qemu.ts";

/** What the actor does for the machine: record a fact, observe one, tell a stop's step. */
export interface VmEffectHooks {
  /** Appends the facts (a lifecycle transition waits for this). */
  record(input: RecordInput): Promise<StoredEvent[]>;
  /** Records an observation in order, without holding the machine up. */
  observe(input: RecordInput): void;
  /** A stop (or the end after a shutdown) reached `step`, waiting up to `waitMs` for it. */
  /** A stop's step; `recorded` is the step already recorded with the request (a forced stop's kill). */
  onStopStep(step: StopStep, waitMs: number, recorded?: StopStep): void;
}

/** {@link vmMachine} with every effect provided. */
export function provideVmEffects(ports: VmPorts, hooks: VmEffectHooks) {
  const onStep = (step: StopStep, waitMs: number) => hooks.onStopStep(step, waitMs);
  return vmMachine.provide({
    actors: {
      record: fromPromise(({ input }) => hooks.record(input)),
      launch: fromPromise(({ input, signal }) => launchQemu(ports, { ...input, signal })),
      reattach: fromPromise(({ input, signal }) => reattachQemu(ports, { ...input, signal })),
      stop: fromPromise(({ input, signal }) =>
        stopQemu(ports, {
          ...input,
          signal,
          onStep: (step, waitMs) => hooks.onStopStep(step, waitMs, input.recordedStep),
        }),
      ),
      finish: fromPromise(({ input, signal }) => escalateStop(ports, { ...input, signal, onStep }, "quit")),
      watch: fromCallback(({ input, sendBack }) => (input ? watchQemu(ports, input, sendBack) : undefined)),
    },
    actions: {
      observe: (_args, params: RecordInput) => hooks.observe(params),
    },
  });
}
