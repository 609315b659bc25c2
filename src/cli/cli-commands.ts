/**
 * Commands the CLI has that are not library operations (`demo`, `help`, `completion`, `schema`):
 * their help and completion come from these descriptions, the same shape as the registry's.
 *
 * @example
 * ```ts
 * allCommandDescriptions().map((c) => c.name); // ["add", "start", …, "demo", "help", "completion", "schema"]
 * ```
 */
import { AGENT_FLAGS } from "../agent/agent-args.ts";
import { COMMANDS, type CommandSpec } from "../api/commands.ts";

/** What help, completion and the docs test need of a command (a registry entry has more). */
export type CommandDescription = Pick<
  CommandSpec,
  "name" | "aliases" | "summary" | "positionals" | "options" | "examples"
>;

export const CLI_COMMANDS: readonly CommandDescription[] = [
  {
    name: "agent",
    summary: "Run the agent: one long-lived maqet serving the HTTP API that every command then goes through",
    positionals: [],
    // --db/--data-dir/--runtime-dir are the global options; the agent's own flags follow.
    options: AGENT_FLAGS.filter((f) => !["db", "data-dir", "runtime-dir"].includes(f.name)).map((f) => ({
      name: f.name,
      type: "string" as const,
      description: f.description,
      ...(f.value ? { value: f.value } : {}),
    })),
    examples: [
      "maqet agent",
      "maqet agent --log-format json",
      "maqet agent --socket /run/maqet/agent.sock --group maqet",
      "maqet agent --listen 127.0.0.1:7420 --token-file /etc/maqet/token",
    ],
  },
  {
    name: "demo",
    summary: "Add, start, query, stop and show the history of the example VM",
    positionals: [],
    options: [],
    examples: ["maqet demo"],
  },
  {
    name: "help",
    summary: "Show help for maqet, a command or a command group",
    positionals: [{ name: "topic", description: "a command (start) or a group (snapshot)", optional: true }],
    options: [],
    examples: ["maqet help", "maqet help snapshot", "maqet help snapshot create"],
  },
  {
    name: "completion",
    summary: "Print a shell completion script (bash, zsh or fish)",
    positionals: [{ name: "shell", description: "bash, zsh or fish" }],
    options: [],
    examples: [
      'eval "$(maqet completion bash)"  # in ~/.bashrc',
      "maqet completion zsh > ~/.zfunc/_maqet",
      "maqet completion fish > ~/.config/fish/completions/maqet.fish",
    ],
  },
  {
    name: "schema",
    summary: "Print the JSON Schema of a VM config (for editors: completion and checks of YAML)",
    positionals: [],
    options: [],
    examples: ["maqet schema > vm-config.schema.json"],
  },
];

/** Registry commands, then the CLI's own. */
export function allCommandDescriptions(): readonly CommandDescription[] {
  return [...COMMANDS, ...CLI_COMMANDS];
}

/** A command (registry or CLI-only) by name or alias. */
export function findCommandDescription(name: string): CommandDescription | undefined {
  return allCommandDescriptions().find((c) => c.name === name || c.aliases?.includes(name));
}

/** Two-word commands share a first word: that word is a group (`snapshot`, `disk`, `qmp`). */
export function commandGroups(): string[] {
  const groups = new Set<string>();
  for (const c of allCommandDescriptions()) if (c.name.includes(" ")) groups.add(c.name.split(" ")[0]!);
  return [...groups];
}

/** The commands of a group (`snapshot` → snapshot create, load, …), empty when it is none. */
export function groupCommands(group: string): CommandDescription[] {
  return allCommandDescriptions().filter((c) => c.name.startsWith(`${group} `));
}
