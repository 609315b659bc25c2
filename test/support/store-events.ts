/**
 * Events for store tests: `event()` builds what a caller appends (schema 1 unless `extra` says
 * otherwise), `prepared()` what appendToStream takes (id and metadata filled in, as the store
 * fills them).
 *
 * @example
 * ```ts
 * await store.append("vm-1", [event("vm.started"), event("vm.stopped", { code: 0 }, { id })]);
 * await appendToStream(trx, "vm-2", [prepared("held")], "no_stream");
 * ```
 */
import { foldVmEvents, type VmView } from "../../src/actors/vm-view.ts";
import type { PreparedEvent } from "../../src/events/append-to-stream.ts";
import type { EventActor, NewEvent, StoredEvent } from "../../src/events/envelope.ts";

/** The actor the store tests record (a fixed one, so stored envelopes can be compared). */
export const testActor: EventActor = { user: "tester", uid: 4242, host: "test-host", pid: 99 };

/** A new event of `type` with `data` (default `{}`); `extra` adds an id, metadata or another schema version. */
export const event = (type: string, data: unknown = {}, extra: Partial<NewEvent> = {}): NewEvent => ({
  type,
  schemaVersion: 1,
  data,
  ...extra,
});

/** An event ready for appendToStream: a fresh id, schema 1, the test actor. */
export const prepared = (type: string, data: unknown = {}): PreparedEvent => ({
  id: crypto.randomUUID(),
  type,
  schemaVersion: 1,
  data,
  metadata: { actor: testActor },
});

/**
 * `events` as the store returns them from one stream: versions `first`, `first + 1`..., recorded
 * one second apart from 2026-01-01T00:00:00Z (version n at n seconds), the test actor. For code
 * that folds or reacts to stored facts without a store.
 *
 * @example
 * ```ts
 * foldVmEvents(storedStream("vm-1", [vmEvent("vm.defined", data)]));
 * ```
 */
export function storedStream(streamId: string, events: readonly NewEvent[], first = 0): StoredEvent[] {
  return events.map((e, i) => ({
    id: e.id ?? `${streamId}@${first + i}`,
    streamId,
    streamVersion: first + i,
    globalPosition: first + i + 1,
    type: e.type,
    schemaVersion: e.schemaVersion,
    data: e.data,
    metadata: { actor: testActor, ...e.metadata },
    recordedAt: new Date(Date.UTC(2026, 0, 1) + (first + i) * 1000),
  }));
}

export interface FoldOptions {
  /** When version 0 was recorded (ms since the epoch; default 2026-01-01T00:00:00Z). */
  fromMs?: number;
  /** Between two versions' `recordedAt` (default 1000 ms). */
  stepMs?: number;
  /** What the store gives back of an event's data (default: a deep copy; `toJsonb` for jsonb's semantics). */
  data?: (data: unknown) => unknown;
}

/**
 * The VM's view after `events`, folded as the store would give them back (one stream, versions
 * 0.., each a copy of its data, the test actor). Throws when they define no VM.
 *
 * @example
 * ```ts
 * foldedView([vmEvent("vm.defined", { vmId: "1", name: "web", config })]).status; // "defined"
 * ```
 */
export function foldedView(events: readonly NewEvent[], options: FoldOptions = {}): VmView {
  const from = options.fromMs ?? Date.UTC(2026, 0, 1);
  const step = options.stepMs ?? 1000;
  const copy = options.data ?? structuredClone;
  const stored = storedStream("vm-1", events).map((e, v) => ({
    ...e,
    data: copy(e.data),
    recordedAt: new Date(from + v * step),
  }));
  const view = foldVmEvents(stored);
  if (view === undefined)
    throw new Error(`${events.length} event(s) define no VM: ${events.map((e) => e.type).join(", ")}`);
  return view;
}
