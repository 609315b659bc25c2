/**
 * The CLI's help pages, rendered from the command registry: the command list, one command's
 * usage, or a group's commands (`maqet snapshot --help`). Columns are as wide as their longest
 * entry, so descriptions line up whatever the names.
 *
 * @example
 * ```ts
 * renderHelp();            // the command list
 * renderHelp("snapshot");  // the snapshot commands
 * renderHelp("start");     // start's usage, arguments and options
 * ```
 */
import type { OptionSpec } from "../api/commands.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import {
  allCommandDescriptions,
  type CommandDescription,
  commandGroups,
  findCommandDescription,
  groupCommands,
} from "./cli-commands.ts";
import { GLOBAL_OPTIONS } from "./parse-args.ts";
import { didYouMean } from "./suggest.ts";

const GROUP_SUMMARIES: Record<string, string> = {
  snapshot: "Snapshots of a VM's qcow2 drives: offline (qemu-img) when it is stopped, live (QMP) when it runs.",
  disk: "Disk images outside a VM's config (qemu-img).",
  qmp: "QMP commands and helpers for a running VM.",
  audit: "The audit trail and its hash-chain check.",
  projections: "Read models: lag and health, and rebuilding one.",
};

/** Rows of `[left, right]` as two columns: the left one padded to its longest entry. */
export function columns(rows: ReadonlyArray<readonly [string, string]>, indent = "  "): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}  ${right}`.trimEnd());
}

/** `--name VALUE` as help shows it (with its short form when it has one). */
export function optionLabel(option: OptionSpec): string {
  const short = SHORT_FORMS[option.name];
  return `${short ? `${short}, ` : ""}--${option.name}${option.value ? ` ${option.value}` : ""}`;
}

const SHORT_FORMS: Record<string, string> = { help: "-h", version: "-V", force: "-f", interactive: "-i" };

/** `<vm> [drive] [name]` */
export function usageArguments(command: CommandDescription): string {
  return command.positionals
    .map((p) => {
      const name = p.variadic ? `${p.name}…` : p.name;
      return p.optional ? `[${name}]` : `<${name}>`;
    })
    .join(" ");
}

/**
 * The help page for a topic: nothing (the command list), a command, or a group. An unknown
 * topic is an INVALID_ARGUMENT error naming the nearest command.
 */
export function renderHelp(topic?: string): string {
  if (topic === undefined) return overview();
  const command = findCommandDescription(topic);
  const group = groupCommands(topic);
  if (command === undefined && group.length === 0) {
    const names = [...allCommandDescriptions().map((c) => c.name), ...commandGroups()];
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid arguments: no command or group '${topic}'.${didYouMean(topic, names)} Run \`maqet --help\` for the list of commands.`,
    );
  }
  if (command === undefined) return groupHelp(topic, group);
  return commandHelp(command, group);
}

function overview(): string {
  const commands = allCommandDescriptions();
  return [
    "Usage: maqet <command> [arguments] [options]",
    "",
    "Event-sourced QEMU orchestration: VMs from YAML, driven over QMP, every transition recorded.",
    "",
    "Commands:",
    ...columns(commands.map((c) => [c.name, c.summary])),
    "",
    "Global options:",
    ...globalOptions(),
    "",
    "Exit codes: 0 ok, 1 failure, 2 timeout, 3 invalid input or not found, 4 refused for security.",
    "Run `maqet <command> --help` for a command's options, `maqet <group> --help` for a group's commands.",
  ].join("\n");
}

function groupHelp(group: string, commands: readonly CommandDescription[]): string {
  return [
    `Usage: maqet ${group} <command> [arguments] [options]`,
    "",
    GROUP_SUMMARIES[group] ?? `The ${group} commands.`,
    "",
    "Commands:",
    ...subcommandRows(commands),
    "",
    `Run \`maqet ${group} <command> --help\` for a command's arguments and options.`,
  ].join("\n");
}

function subcommandRows(commands: readonly CommandDescription[]): string[] {
  return columns(commands.map((c) => [`${c.name} ${usageArguments(c)}`.trim(), c.summary]));
}

function commandHelp(command: CommandDescription, subcommands: readonly CommandDescription[]): string {
  const args = usageArguments(command);
  const aliases = command.aliases?.length ? ["", `Aliases: ${command.aliases.join(", ")}`] : [];
  // One width for arguments, options and global options: the page reads as one table.
  const rows: Array<readonly [string, string]> = [
    ...command.positionals.map((p) => [p.name, p.description] as const),
    ...command.options.map((o) => [optionLabel(o), o.description] as const),
    ...GLOBAL_OPTIONS.map((o) => [optionLabel(o), o.description] as const),
  ];
  const aligned = columns(rows);
  const nPos = command.positionals.length;
  const nOpt = command.options.length;
  return [
    `Usage: maqet ${command.name}${args ? ` ${args}` : ""}${nOpt ? " [options]" : ""}`,
    "",
    command.summary,
    ...aliases,
    "",
    ...(nPos ? ["Arguments:", ...aligned.slice(0, nPos), ""] : []),
    ...(nOpt ? ["Options:", ...aligned.slice(nPos, nPos + nOpt), ""] : []),
    "Global options:",
    ...aligned.slice(nPos + nOpt),
    ...(subcommands.length ? ["", "Commands:", ...subcommandRows(subcommands)] : []),
    ...(command.examples.length ? ["", "Examples:", ...command.examples.map((e) => `  ${e}`)] : []),
  ].join("\n");
}

function globalOptions(): string[] {
  return columns(GLOBAL_OPTIONS.map((o) => [optionLabel(o), o.description]));
}
