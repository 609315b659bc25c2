/**
 * History commands: a VM's recorded events.
 *
 * @example
 * ```ts
 * HISTORY_COMMANDS.map((c) => c.name);
 * ```
 */
import { type CommandSpec, text } from "./command-spec.ts";

export const HISTORY_COMMANDS: readonly CommandSpec[] = [
  {
    name: "history",
    summary: "Print a VM's recorded events in order",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet history web", "maqet history web --json"],
    invoke: (m, i) => m.history(text(i, "vm")),
  },
];
