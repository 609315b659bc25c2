/**
 * Time travel over one VM's stream: each event with the VM's state right after it, computed by
 * the very fold the actor rehydrates with (`applyVmEvent` in vm-view.ts), so history and the
 * live actor can never disagree about what a stream means. Pure and deterministic: replaying
 * the same events twice gives equal states.
 *
 * @example
 * ```ts
 * for (const { event, view } of replayVmEvents(events, { version: 3 })) console.log(event.type, view?.status);
 * ```
 */
import type { StoredEvent } from "../events/envelope.ts";
import { applyVmEvent, type VmView } from "./vm-view.ts";

export interface ReplayLimit {
  /** Stop after the last event recorded at or before this time. */
  until?: Date;
  /** Stop after this stream version (inclusive). */
  version?: number;
}

/** The events of a stream up to the limit, each with the view folded through it. */
export function* replayVmEvents(
  events: readonly StoredEvent[],
  limit: ReplayLimit = {},
): Generator<{ event: StoredEvent; view: VmView | undefined }> {
  let view: VmView | undefined;
  for (const event of events) {
    if (limit.version !== undefined && event.streamVersion > limit.version) return;
    if (limit.until !== undefined && event.recordedAt.getTime() > limit.until.getTime()) return;
    view = applyVmEvent(view, event);
    yield { event, view };
  }
}
