/**
 * Human-readable output of each command's result (`--json` prints the result itself instead).
 * Each concern keeps its renderers in src/cli/renderers/<concern>-renderers.ts; a command with
 * none prints its result as JSON.
 *
 * @example
 * ```ts
 * renderResult("ls", await maqet.list()); // a table
 * ```
 */
import { findCommand } from "../api/commands.ts";
import { NO_PAINT, type Paint } from "./color.ts";
import { AUDIT_RENDERERS } from "./renderers/audit-renderers.ts";
import { CONSOLE_RENDERERS } from "./renderers/console-renderers.ts";
import { DISK_RENDERERS } from "./renderers/disk-renderers.ts";
import { DOCTOR_RENDERERS } from "./renderers/doctor-renderers.ts";
import { EVENTS_RENDERERS } from "./renderers/events-renderers.ts";
import { GUEST_RENDERERS } from "./renderers/guest-renderers.ts";
import { HISTORY_RENDERERS } from "./renderers/history-renderers.ts";
import { HOST_RENDERERS } from "./renderers/host-renderers.ts";
import { LIFECYCLE_RENDERERS } from "./renderers/lifecycle-renderers.ts";
import { MAQET_COMPAT_RENDERERS } from "./renderers/maqet-compat-renderers.ts";
import { PROJECTION_RENDERERS } from "./renderers/projection-renderers.ts";
import { QMP_RENDERERS } from "./renderers/qmp-renderers.ts";
import type { Renderer } from "./renderers/renderer.ts";
import { SNAPSHOT_RENDERERS } from "./renderers/snapshot-renderers.ts";
import { STORE_RENDERERS } from "./renderers/store-renderers.ts";

const RENDERERS: Record<string, Renderer> = {
  ...LIFECYCLE_RENDERERS,
  ...HISTORY_RENDERERS,
  ...EVENTS_RENDERERS,
  ...CONSOLE_RENDERERS,
  ...GUEST_RENDERERS,
  ...AUDIT_RENDERERS,
  ...QMP_RENDERERS,
  ...SNAPSHOT_RENDERERS,
  ...DISK_RENDERERS,
  ...DOCTOR_RENDERERS,
  ...STORE_RENDERERS,
  ...PROJECTION_RENDERERS,
  ...MAQET_COMPAT_RENDERERS,
  ...HOST_RENDERERS,
};

/** The text of a result; `paint` colours it (only given for a terminal, see color.ts). */
export function renderResult(command: string, result: unknown, paint: Paint = NO_PAINT): string {
  const name = findCommand(command)?.name ?? command;
  const render = RENDERERS[name];
  return render ? render(result, paint) : JSON.stringify(result, null, 2);
}
