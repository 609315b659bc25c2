/**
 * History commands: a VM's recorded events, and (with `--at` / `--version`) its state at that
 * point, replayed through the actor's own fold.
 *
 * @example
 * ```ts
 * HISTORY_COMMANDS.map((c) => c.name);
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CommandSpec, text } from "./command-spec.ts";
import { parseTimeArg } from "./time-arg.ts";

export const HISTORY_COMMANDS: readonly CommandSpec[] = [
  {
    name: "history",
    summary: "Print a VM's recorded events in order; with --at or --version, its state at that point",
    positionals: [{ name: "vm", description: "VM name or id (a removed VM's too)" }],
    options: [
      {
        name: "at",
        type: "string",
        value: "TIME",
        description: "state after the last event at or before TIME (ISO 8601, or 15m / 2h / 7d ago)",
      },
      { name: "version", type: "number", value: "N", description: "state after stream version N (0 = vm.defined)" },
    ],
    examples: [
      "maqet history web",
      "maqet history web --json",
      "maqet history web --at 2026-11-22T10:15:00Z",
      "maqet history web --at 2h",
      "maqet history web --version 4 --json",
    ],
    // One JSON shape with or without a point (docs/cli.md#history): {vm, point, version, events,
    // state, config}; without one, every event and the state now (point: {at: null, version: null}).
    invoke: async (m, i) => {
      if (i.at === undefined && i.version === undefined) {
        const events = await m.history(text(i, "vm"));
        const now = await m.historyAt(text(i, "vm"), { version: events.at(-1)?.version ?? 0 });
        return { ...now, point: { at: null, version: null }, events };
      }
      if (i.at !== undefined && i.version !== undefined) {
        throw new MaqetError("INVALID_ARGUMENT", "Give --at or --version, not both.");
      }
      return m.historyAt(text(i, "vm"), {
        at: parseTimeArg(i.at, "--at"),
        version: i.version === undefined ? undefined : Number(i.version),
      });
    },
  },
];
