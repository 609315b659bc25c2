/**
 * Store commands: schema migrations.
 *
 * @example
 * ```ts
 * STORE_COMMANDS.map((c) => c.name);
 * ```
 */
import type { CommandSpec } from "./command-spec.ts";

export const STORE_COMMANDS: readonly CommandSpec[] = [
  {
    name: "migrate",
    summary: "Apply pending event-store schema migrations (also done automatically on open)",
    positionals: [],
    options: [],
    examples: ["maqet migrate", "maqet migrate --db postgres://localhost/maqet"],
    invoke: async (m) => ({ applied: await m.migrate() }),
  },
];
