/**
 * Cluster host commands (docs/cluster.md): `host ls`, `host drain`, `host restore`, `host rm`,
 * `host mark-dead`. A PostgreSQL server only; on the embedded store each says CLUSTER_NEEDS_SERVER.
 *
 * @example
 * ```ts
 * HOST_COMMANDS.map((c) => c.name); // ["host ls", "host drain", ...]
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CommandInput, type CommandSpec, list, text } from "./command-spec.ts";

const HOST = { name: "name", description: "host name, as `maqet host ls` lists it" };

export const HOST_COMMANDS: readonly CommandSpec[] = [
  {
    name: "host ls",
    aliases: ["hosts"],
    summary: "List the cluster's hosts: state (up, suspected, down, fenced, left), labels, capacity, VMs, last renewal",
    positionals: [],
    options: [],
    examples: ["maqet host ls", "maqet host ls --json"],
    invoke: (m) => m.hosts(),
  },
  {
    name: "host drain",
    summary:
      "Take no new VMs on a host and move its VMs away (stop there, start elsewhere; --live: migrate the running ones live)",
    positionals: [HOST],
    options: [
      {
        name: "live",
        type: "boolean",
        description:
          "Move running VMs by live migration (the guests keep running); stopped ones are just placed elsewhere",
      },
    ],
    examples: ["maqet host drain lab2", "maqet host drain lab2 --live"],
    invoke: (m, i) => m.drainHost(text(i, "name"), i.live === true ? { live: true } : undefined),
  },
  {
    name: "host restore",
    summary: "Let a drained host take new VMs again",
    positionals: [HOST],
    options: [],
    examples: ["maqet host restore lab2"],
    invoke: (m, i) => m.restoreHost(text(i, "name")),
  },
  {
    name: "host mark-dead",
    summary: "Confirm a host is dead (powered off, its VMs gone): its `ha: restart` VMs restart elsewhere",
    positionals: [HOST],
    options: [],
    examples: ["maqet host mark-dead lab3"],
    invoke: (m, i) => m.markHostDead(text(i, "name")),
  },
  {
    name: "host rm",
    summary: "Forget a host that is gone and owns no VMs",
    positionals: [HOST],
    options: [],
    examples: ["maqet host rm lab3"],
    invoke: (m, i) => m.removeHost(text(i, "name")),
  },
];

/**
 * `--constraint k=v` values as a label map; INVALID_ARGUMENT naming the bad one.
 *
 * @example
 * ```ts
 * constraintsOf({ constraint: ["zone=a"] }); // { zone: "a" }
 * ```
 */
export function constraintsOf(input: CommandInput, option = "constraint"): Record<string, string> | undefined {
  const given = list(input, option);
  if (given.length === 0) return undefined;
  return labelsOf(given, `--${option}`);
}

/**
 * `k=v` words as a label map (keys and values: letters, digits, `._-/`).
 *
 * @example
 * ```ts
 * labelsOf(["zone=a", "disk=ssd"], "--label"); // { zone: "a", disk: "ssd" }
 * ```
 */
export function labelsOf(words: readonly string[], flag: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const word of words) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._/-]{0,62})=([A-Za-z0-9._/-]{0,63})$/.exec(word);
    if (!m) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Invalid arguments: ${flag} takes KEY=VALUE (letters, digits, . _ - /), e.g. ${flag} zone=a (got '${word}').`,
      );
    }
    labels[m[1]!] = m[2]!;
  }
  return labels;
}
