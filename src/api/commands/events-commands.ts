/**
 * `maqet events`: the CLI face of the store's subscription. Prints what is stored (every stream,
 * or one VM's) in the store's read order and exits; with `--follow`, keeps printing events as
 * they commit, from any process, until Ctrl-C.
 *
 * @example
 * ```ts
 * await findCommand("events")!.invoke(maqet, { vm: "web", from: 40 }); // a streamed result
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import type { Checkpoint } from "../../events/checkpoint.ts";
import type { EventMetadata } from "../../events/envelope.ts";
import type { EventsMessage } from "../ops/events-ops.ts";
import type { CommandSpec } from "./command-spec.ts";
import { streamedValues } from "./streamed-values.ts";

/** One printed event: a line of text, or with `--json` this object on one line (JSONL). */
export interface EventLine {
  position: number;
  /** ISO time the event was recorded. */
  at: string;
  streamId: string;
  /** The VM's name, for a VM stream. */
  vm: string | null;
  version: number;
  type: string;
  schemaVersion: number;
  id: string;
  data: unknown;
  actor: EventMetadata["actor"] | null;
  correlationId: string | null;
  source: string | null;
  /** Where to resume after this event (see docs/events.md "Checkpoints"). */
  checkpoint: Checkpoint;
}

export const EVENTS_COMMANDS: readonly CommandSpec[] = [
  {
    name: "events",
    summary: "Print stored events of every VM (or one) in order; --follow keeps printing new ones",
    positionals: [],
    options: [
      { name: "follow", type: "boolean", description: "then print events as they commit, until Ctrl-C" },
      { name: "vm", type: "string", value: "NAME", description: "only this VM's events" },
      {
        name: "from",
        type: "number",
        value: "POSITION",
        description: "start after the event at this global position (the last one you have); default: the start",
      },
    ],
    examples: [
      "maqet events",
      "maqet events --vm web --json",
      "maqet events --follow",
      "maqet events --from 1200 --follow --json",
    ],
    invoke: async (m, i) => {
      const from = i.from;
      if (from !== undefined && (typeof from !== "number" || !Number.isSafeInteger(from) || from < 0)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `--from must be a global position (an integer >= 0), got ${String(from)}. ` +
            "Use the position of the last event you have; 0 starts from the first.",
          { details: { from } },
        );
      }
      // rxjs is loaded here, not at import: the CLI's path through the agent imports the registry.
      const { filter, map } = await import("rxjs");
      const messages = m.subscribe({
        vm: typeof i.vm === "string" ? i.vm : undefined,
        from: typeof from === "number" ? from : "start",
        follow: i.follow === true,
      });
      return streamedValues(
        messages.pipe(
          filter((msg): msg is Extract<EventsMessage, { kind: "event" }> => msg.kind === "event"),
          map(toEventLine),
        ),
      );
    },
  },
];

/**
 * The printed form of a subscription's event.
 *
 * @example
 * ```ts
 * maqet.subscribe().pipe(filter((m) => m.kind === "event"), map(toEventLine));
 * ```
 */
export function toEventLine(message: Extract<EventsMessage, { kind: "event" }>): EventLine {
  const { event, checkpoint, vmName } = message;
  return {
    position: event.globalPosition,
    at: event.recordedAt.toISOString(),
    streamId: event.streamId,
    vm: vmName,
    version: event.streamVersion,
    type: event.type,
    schemaVersion: event.schemaVersion,
    id: event.id,
    data: event.data,
    actor: event.metadata?.actor ?? null,
    correlationId: event.metadata?.correlationId ?? null,
    source: event.metadata?.source ?? null,
    checkpoint,
  };
}
