/**
 * A VM's past: its events and its state at a point in time or at a stream version (`historyAt`,
 * `maqet history --at/--version`), and a replay of its stream as an Observable of
 * `{ event, state }` (`replay`). Both fold through src/actors/replay-vm.ts, the fold the VM actor
 * uses, so the state shown for the past is the state the actor would have rehydrated then.
 *
 * @example
 * ```ts
 * const { state } = await maqet.historyAt("web", { at: new Date("2026-11-22T10:00:00Z") });
 * maqet.replay("web", { until: new Date() }).subscribe(({ event, state }) => console.log(event.type, state.state));
 * ```
 */
import { defer, from, mergeMap, type Observable } from "rxjs";
import { replayVmEvents } from "../../actors/replay-vm.ts";
import type { VmView } from "../../actors/vm-view.ts";
import type { VmConfig } from "../../config/vm-config.ts";
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import { vmStreamId } from "../../events/vm-events.ts";
import { type HistoryEntry, toHistoryEntry } from "../history-entry.ts";
import type { MaqetContext } from "../maqet-context.ts";
import type { Runtime } from "../runtime.ts";
import { toVmStatus, type VmStatus } from "../vm-status.ts";

export interface HistoryPoint {
  /** The state after the last event recorded at or before this time. */
  at?: Date;
  /** The state after this stream version (0 = `vm.defined`). */
  version?: number;
}

export interface ReplayStep {
  event: HistoryEntry;
  /** The VM as it was right after `event` (what `status` would have shown). */
  state: VmStatus;
}

export interface HistoryAt {
  vm: string;
  /** The point asked for. */
  point: { at: string | null; version: number | null };
  /** The stream version the state is at (the last event included). */
  version: number;
  /** The events up to the point, in order. */
  events: HistoryEntry[];
  state: VmStatus;
  /** The VM's whole config at that point (a later `vm.reconfigured` does not show here). */
  config: VmConfig;
}

export interface TimeTravelOps {
  /** Events and state at a point: exactly one of `at` or `version`. */
  historyAt(name: string, point: HistoryPoint): Promise<HistoryAt>;
  /** Replays the VM's stream (up to `until` / `version`), one `{ event, state }` per event, then completes. */
  replay(name: string, options?: { until?: Date; version?: number }): Observable<ReplayStep>;
}

export function timeTravelOps(ctx: MaqetContext): TimeTravelOps {
  const steps = async (
    name: string,
    limit: HistoryPoint,
  ): Promise<{ vm: string; steps: ReplayStep[]; config?: VmConfig }> =>
    ctx.operation(async (rt) => {
      const view = await findIncludingRemoved(rt, name);
      const events = await rt.store.readStream(vmStreamId(view.vmId));
      const out: ReplayStep[] = [];
      let config: VmConfig | undefined;
      for (const { event, view: state } of replayVmEvents(events, { until: limit.at, version: limit.version })) {
        // Only a stream that does not start with vm.defined folds to nothing; history shows it anyway.
        if (state) out.push({ event: toHistoryEntry(event), state: toVmStatus(state) });
        config = state?.config ?? config;
      }
      return { vm: view.name, steps: out, config };
    });
  return {
    historyAt: async (name, point) => {
      if ((point.at === undefined) === (point.version === undefined)) {
        throw new MaqetError("INVALID_ARGUMENT", "Give exactly one of --at TIME or --version N.");
      }
      if (point.at !== undefined && Number.isNaN(point.at.getTime())) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "Invalid --at time: use an ISO 8601 time such as 2026-11-22T10:15:00Z.",
        );
      }
      if (point.version !== undefined && (!Number.isInteger(point.version) || point.version < 0)) {
        throw new MaqetError("INVALID_ARGUMENT", `Invalid --version ${point.version}: a stream version, 0 or more.`);
      }
      const { vm, steps: all, config } = await steps(name, point);
      const last = all.at(-1);
      if (last === undefined) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `VM '${name}' did not exist yet at ${point.at?.toISOString() ?? `version ${point.version}`}. Run \`maqet history ${name}\` for its first event.`,
          { details: { name } },
        );
      }
      return {
        vm,
        point: { at: point.at?.toISOString() ?? null, version: point.version ?? null },
        version: last.event.version,
        events: all.map((s) => s.event),
        state: last.state,
        config: config!,
      };
    },
    replay: (name, options = {}) =>
      defer(() => from(steps(name, { at: options.until, version: options.version }))).pipe(
        mergeMap(({ steps: all }) => from(all)),
      ),
  };
}

/** A VM by name or id; a removed VM too (its history stays), the most recently defined first. */
async function findIncludingRemoved(rt: Runtime, name: string): Promise<VmView> {
  try {
    return await rt.orchestrator.find(name);
  } catch (error) {
    if (!isMaqetError(error, "VM_NOT_FOUND")) throw error;
    const removed = (await rt.orchestrator.views({ includeRemoved: true })).filter(
      (v) => v.status === "removed" && (v.name === name || v.vmId === name),
    );
    const latest = removed.sort((a, b) => b.definedAt.getTime() - a.definedAt.getTime())[0];
    if (latest === undefined) throw error;
    return latest;
  }
}
