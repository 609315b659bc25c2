/**
 * The command registry: one definition per operation. The library method is what `invoke`
 * calls; the CLI derives its parser, help and dispatch from the same definition (and the agent
 * will derive its routes from it), so the faces cannot drift apart. Each concern keeps its
 * commands in src/api/commands/<concern>-commands.ts; add a group here with one line.
 *
 * @example
 * ```ts
 * const start = findCommand("start")!;
 * await start.invoke(maqet, { vm: "web", timeout: 10 });
 * ```
 */

import { AUDIT_COMMANDS } from "./commands/audit-commands.ts";
import type { CommandSpec } from "./commands/command-spec.ts";
import { CONSOLE_COMMANDS } from "./commands/console-commands.ts";
import { DISK_COMMANDS } from "./commands/disk-commands.ts";
import { DOCTOR_COMMANDS } from "./commands/doctor-commands.ts";
import { EVENTS_COMMANDS } from "./commands/events-commands.ts";
import { GUEST_COMMANDS } from "./commands/guest-commands.ts";
import { HISTORY_COMMANDS } from "./commands/history-commands.ts";
import { HOST_COMMANDS } from "./commands/host-commands.ts";
import { LIFECYCLE_COMMANDS } from "./commands/lifecycle-commands.ts";
import { MAQET_COMPAT_COMMANDS } from "./commands/maqet-compat-commands.ts";
import { PROJECTION_COMMANDS } from "./commands/projection-commands.ts";
import { QMP_COMMANDS } from "./commands/qmp-commands.ts";
import { SNAPSHOT_COMMANDS } from "./commands/snapshot-commands.ts";
import { STORE_COMMANDS } from "./commands/store-commands.ts";

export type { CommandInput, CommandIo, CommandSpec, OptionSpec, PositionalSpec } from "./commands/command-spec.ts";

export const COMMANDS: readonly CommandSpec[] = [
  ...LIFECYCLE_COMMANDS,
  ...QMP_COMMANDS,
  ...HISTORY_COMMANDS,
  ...EVENTS_COMMANDS,
  ...CONSOLE_COMMANDS,
  ...GUEST_COMMANDS,
  ...AUDIT_COMMANDS,
  ...SNAPSHOT_COMMANDS,
  ...DISK_COMMANDS,
  ...DOCTOR_COMMANDS,
  ...STORE_COMMANDS,
  ...PROJECTION_COMMANDS,
  ...MAQET_COMPAT_COMMANDS,
  ...HOST_COMMANDS,
];

/** A command by name or alias. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
