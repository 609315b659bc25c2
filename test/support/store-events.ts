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
import type { PreparedEvent } from "../../src/events/append-to-stream.ts";
import type { EventActor, NewEvent } from "../../src/events/envelope.ts";

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
