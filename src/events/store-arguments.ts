/**
 * What the PostgreSQL event store checks of its callers' arguments before it asks the database:
 * an append's events (prepared here: id and metadata filled in), its expected version, and a
 * read's cursor and limits. Every refusal is an INVALID_ARGUMENT that names the value and the fix.
 *
 * @example
 * ```ts
 * validateExpectedVersion("vm-1", expected);
 * const prepared = prepareEvents("vm-1", events, { actor: () => me, source: "cli" });
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import type { PreparedEvent } from "./append-to-stream.ts";
import { isCheckpoint } from "./checkpoint.ts";
import type { EventActor, EventMetadata, NewEvent } from "./envelope.ts";
import type { ExpectedVersion, ReadAllOptions } from "./event-store.ts";
import { uuidv7 } from "./uuidv7.ts";

/** Recorded when no actor supplier is given (the adapters always give one). */
export const UNKNOWN_ACTOR: EventActor = Object.freeze({ user: "unknown", uid: -1, host: "unknown", pid: -1 });

/** Where an event's default metadata comes from (PostgresEventStoreOptions' `actor` and `source`). */
export interface MetadataDefaults {
  actor?: () => EventActor;
  source?: string;
}

/**
 * An append's events ready to store: each checked (a type, a schemaVersion >= 1), given an id
 * (uuidv7) when it has none, and metadata with the actor and source under its own keys; no id
 * may appear twice.
 *
 * @example
 * ```ts
 * prepareEvents("vm-1", [{ type: "vm.added", schemaVersion: 1, data: {} }], {})[0].metadata.actor; // UNKNOWN_ACTOR
 * ```
 */
export function prepareEvents(
  streamId: string,
  events: readonly NewEvent[],
  defaults: MetadataDefaults,
): PreparedEvent[] {
  const prepared = events.map((e, i) => prepareEvent(streamId, e, i, defaults));
  assertUniqueIds(streamId, prepared);
  return prepared;
}

function prepareEvent(streamId: string, event: NewEvent, index: number, defaults: MetadataDefaults): PreparedEvent {
  if (typeof event.type !== "string" || event.type === "") {
    throw invalid(streamId, `event #${index} has no type`, "give every event a dotted type such as 'vm.started'");
  }
  if (!Number.isInteger(event.schemaVersion) || event.schemaVersion < 1) {
    throw invalid(
      streamId,
      `event #${index} (${event.type}) has schemaVersion ${String(event.schemaVersion)}`,
      "use an integer >= 1",
    );
  }
  const metadata: EventMetadata = { actor: defaults.actor?.() ?? UNKNOWN_ACTOR };
  if (defaults.source !== undefined) metadata.source = defaults.source;
  for (const [key, value] of Object.entries(event.metadata ?? {})) if (value !== undefined) metadata[key] = value;
  return {
    id: event.id ?? uuidv7(),
    type: event.type,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata,
  };
}

/**
 * Refuses an expected version that is none of 'any', 'no_stream', 'stream_exists' or an integer >= -1.
 *
 * @example
 * ```ts
 * validateExpectedVersion("vm-1", -2); // throws INVALID_ARGUMENT
 * ```
 */
export function validateExpectedVersion(streamId: string, expected: ExpectedVersion): void {
  if (expected === "any" || expected === "no_stream" || expected === "stream_exists") return;
  if (Number.isInteger(expected) && expected >= -1) return;
  throw invalid(
    streamId,
    `expectedVersion ${JSON.stringify(expected)} is not valid`,
    "use 'any', 'no_stream', 'stream_exists' or an integer >= -1",
  );
}

function assertUniqueIds(streamId: string, events: readonly PreparedEvent[]): void {
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.id))
      throw invalid(streamId, `event id ${e.id} appears twice in one append`, "give each event its own id");
    seen.add(e.id);
  }
}

/**
 * Refuses a read cursor that is neither a position >= 0 nor a checkpoint.
 *
 * @example
 * ```ts
 * assertAfter({ transactionId: "7", position: 3 }); // fine
 * ```
 */
export function assertAfter(after: ReadAllOptions["after"]): void {
  if (after === undefined) return;
  if (typeof after === "number") assertCount("after", after);
  else if (!isCheckpoint(after)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid after: ${JSON.stringify(after)}. Use a position >= 0 or a checkpoint {transactionId, position}.`,
      { details: { after } },
    );
  }
}

/**
 * Refuses a count (a limit, a version, a position) that is not an integer >= 0.
 *
 * @example
 * ```ts
 * assertCount("limit", -1); // throws INVALID_ARGUMENT
 * ```
 */
export function assertCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new MaqetError("INVALID_ARGUMENT", `Invalid ${name}: ${String(value)}. Use an integer >= 0.`, {
      details: { [name]: value },
    });
  }
}

function invalid(streamId: string, what: string, fix: string): MaqetError {
  return new MaqetError("INVALID_ARGUMENT", `Append to stream '${streamId}' refused: ${what}; ${fix}.`, {
    details: { streamId },
  });
}
