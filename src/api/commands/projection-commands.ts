/**
 * Projection commands: each read model's lag and health, and a rebuild from position 0.
 *
 * @example
 * ```ts
 * PROJECTION_COMMANDS.map((c) => c.name); // ["projections", "projections rebuild"]
 * ```
 */
import { type CommandSpec, text } from "./command-spec.ts";

export const PROJECTION_COMMANDS: readonly CommandSpec[] = [
  {
    name: "projections",
    summary: "Show each read model (VM list, audit trail...): checkpoint, events behind, age, stalls",
    positionals: [],
    options: [],
    examples: ["maqet projections", "maqet projections --json"],
    invoke: (m) => m.projections(),
  },
  {
    name: "projections rebuild",
    summary: "Empty a read model and replay every event into it from position 0",
    positionals: [{ name: "name", description: "projection name, as `maqet projections` lists it (e.g. vms)" }],
    options: [],
    examples: ["maqet projections rebuild vms", "maqet projections rebuild audit --json"],
    invoke: (m, i) => m.rebuildProjection(text(i, "name")),
  },
];
