/**
 * Text output of `events`: one line per event, printed as it comes (so no table: columns are
 * padded to fixed widths instead of measured).
 *
 *     1207  2026-11-22 10:15:02.114  web           vm.started              pid=41873 accel=tcg qemu=7.2.22 in 73ms
 *
 * @example
 * ```ts
 * EVENTS_RENDERERS.events(line); // "  1207  2026-11-22 10:15:02.114  web  vm.started  pid=…"
 * ```
 */
import type { EventLine } from "../../api/commands/events-commands.ts";
import { summarize } from "./history-renderers.ts";
import type { Renderer } from "./renderer.ts";

export const EVENTS_RENDERERS: Record<string, Renderer> = {
  events: (result) => renderEventLine(result as EventLine),
};

/**
 * One event as one line: position, time, VM name (or stream id), type, summary of its data.
 *
 * @example
 * ```ts
 * renderEventLine(line);
 * ```
 */
export function renderEventLine(line: EventLine): string {
  const time = line.at.replace("T", " ").replace("Z", "");
  const who = line.vm ?? line.streamId;
  return [String(line.position).padStart(6), time, who.padEnd(12), line.type.padEnd(22), summarize(line)]
    .join("  ")
    .trimEnd();
}
