/**
 * Parses `maqet [global options] <command> [args] [options]` against the command registry.
 * Options may come before or after the command; `--opt=value` and `--opt value` both work;
 * `--` ends options. Anything unknown is an INVALID_ARGUMENT error (exit 3) that says what to type.
 *
 * @example
 * ```ts
 * parseArgs(["stop", "web", "--force"]); // { command: stop spec, input: { vm: "web", force: true }, global: {...} }
 * ```
 */
import { COMMANDS, type CommandInput, type CommandSpec, findCommand, type OptionSpec } from "../api/commands.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { CLI_COMMANDS, type CommandDescription, commandGroups, groupCommands } from "./cli-commands.ts";
import { COLOR_MODES, type ColorMode } from "./color.ts";
import { didYouMean, nearest } from "./suggest.ts";

export interface GlobalOptions {
  db?: string;
  dataDir?: string;
  runtimeDir?: string;
  /** Directory of the global config (`config.yaml`); MAQET's `--maqet-config-dir`. */
  configDir?: string;
  /** `--agent PATH`: go through this agent (see src/cli/agent-target.ts). */
  agent?: string;
  /** `--no-agent`: run in-process even when an agent answers. */
  noAgent?: boolean;
  json: boolean;
  help: boolean;
  version: boolean;
  /** MAQET's `--format`: auto (default), json, yaml, plain, table. `json` also sets `json`. */
  format?: OutputFormat;
  /** `-v` 1, `-vv` 2, `-vvv` 3 (MAQET: warnings, info, debug; maqet prints warnings always). */
  verbosity: number;
  /** Full stack traces on errors. */
  debug: boolean;
  /** Append a debug log of the run (argv, outcome, warnings) to this file. */
  logFile?: string;
  /** `--color auto|always|never` (default auto: on a terminal only, NO_COLOR respected). */
  color?: ColorMode;
}

export const OUTPUT_FORMATS = ["auto", "json", "yaml", "plain", "table"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  {
    name: "db",
    type: "string",
    value: "URL",
    description: "PostgreSQL server URL (default: embedded store; env MAQET_DATABASE_URL)",
  },
  {
    name: "data-dir",
    aliases: ["maqet-data-dir"],
    type: "string",
    value: "DIR",
    description: "data directory of the embedded store (default $XDG_DATA_HOME/maqet)",
  },
  {
    name: "runtime-dir",
    aliases: ["maqet-runtime-dir"],
    type: "string",
    value: "DIR",
    description: "root of per-VM runtime dirs (default $XDG_RUNTIME_DIR/maqet)",
  },
  {
    name: "config-dir",
    aliases: ["maqet-config-dir"],
    type: "string",
    value: "DIR",
    description: "directory of the global config.yaml (default $XDG_CONFIG_HOME/maqet)",
  },
  {
    name: "agent",
    type: "string",
    value: "PATH",
    description:
      "go through the agent on this socket (env MAQET_AGENT; default: the agent's default socket when one answers)",
  },
  { name: "no-agent", type: "boolean", description: "run in this process even when an agent answers" },
  { name: "json", type: "boolean", description: "print JSON instead of tables" },
  {
    name: "output",
    aliases: ["format"],
    type: "string",
    value: "FORMAT",
    description: "auto (default), json, yaml, plain or table (MAQET's --format; a command's own --format wins)",
  },
  { name: "verbose", type: "boolean", description: "-v, -vv, -vvv: more detail on errors (-vvv: as --debug)" },
  { name: "debug", type: "boolean", description: "print full stack traces on errors" },
  { name: "log-file", type: "string", value: "FILE", description: "append a debug log of this run to FILE" },
  {
    name: "color",
    type: "string",
    value: "WHEN",
    description: "auto (default: on a terminal, unless NO_COLOR is set), always or never",
  },
  { name: "help", type: "boolean", description: "show help" },
  { name: "version", type: "boolean", description: "print the version" },
];

export interface ParsedArgs {
  /** The command name as typed (`demo` is a CLI-only command, so it is kept as a name). */
  commandName?: string;
  command?: CommandSpec;
  input: CommandInput;
  global: GlobalOptions;
}

const SHORT: Record<string, string> = { "-h": "--help", "-V": "--version", "-f": "--force", "-i": "--interactive" };

/** CLI-only commands that are not library operations (described in cli-commands.ts). */
export const CLI_ONLY_COMMANDS: readonly string[] = CLI_COMMANDS.map((c) => c.name);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const global: GlobalOptions = { json: false, help: false, version: false, verbosity: 0, debug: false };
  const positionals: string[] = [];
  const raw: Array<[string, string | undefined]> = [];
  let onlyPositionals = false;
  let positionalsBeforeDashDash = Number.POSITIVE_INFINITY;
  for (let i = 0; i < argv.length; i++) {
    const token = SHORT[argv[i]!] ?? argv[i]!;
    if (onlyPositionals || !token.startsWith("-") || token === "-") {
      positionals.push(token);
    } else if (/^-v+$/.test(token)) {
      // MAQET's -v / -vv / -vvv (argparse's count).
      global.verbosity += token.length - 1;
    } else if (token === "--") {
      onlyPositionals = true;
      positionalsBeforeDashDash = positionals.length;
    } else if (token.startsWith("--")) {
      const eq = token.indexOf("=");
      raw.push(eq === -1 ? [token.slice(2), undefined] : [token.slice(2, eq), token.slice(eq + 1)]);
      // A value-taking option consumes the next token when no `=value` was given.
      const name = raw.at(-1)![0];
      const spec = optionSpec(name, positionals);
      if (eq === -1 && spec !== undefined && spec.type !== "boolean") {
        const value = argv[i + 1];
        if (value === undefined)
          throw usage(`option --${name} needs a value (${spec.value ?? spec.type})`, positionals[0]);
        raw[raw.length - 1] = [name, value];
        i++;
      }
      // argparse's nargs '*': `--vm-config a.yaml b.yaml` takes every word up to the next option.
      if (spec?.greedy) {
        while (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("-")) raw.push([name, argv[++i]!]);
      }
    } else {
      throw usage(`unknown option '${argv[i]}'.${didYouMean(argv[i]!, Object.keys(SHORT))}`, positionals[0]);
    }
  }
  // A two-word command (`snapshot create`, `qmp keys`) wins over a one-word one, unless `--`
  // comes before its second word: `maqet qmp -- keys query-status` is raw QMP on a VM named keys.
  const twoWords =
    positionals.length >= 2 && positionalsBeforeDashDash >= 2 ? `${positionals[0]} ${positionals[1]}` : undefined;
  const commandName = twoWords !== undefined && findCommand(twoWords) ? twoWords : positionals[0];
  positionals.splice(0, commandName === undefined ? 0 : commandName.split(" ").length);
  const command = commandName === undefined ? undefined : findCommand(commandName);
  // A one-word command that is also a group (`snapshot VM ACTION…`, MAQET's order, beside
  // `snapshot create VM…`): a near miss of one of the group's words is a typo, not a VM name.
  if (command && !command.name.includes(" ") && positionals.length > 0 && positionalsBeforeDashDash >= 2) {
    const words = groupCommands(command.name).map((c) => c.name.split(" ")[1]!);
    const typo = nearest(positionals[0]!, words);
    if (typo !== undefined && typo !== positionals[0]) {
      throw usage(
        `unknown command '${command.name} ${positionals[0]}'. Did you mean '${command.name} ${typo}'?`,
        command.name,
      );
    }
  }
  // The same command alone (`maqet snapshot`) asks for its page, which lists the group too;
  // one that runs without arguments (`maqet audit`, `maqet projections`) runs.
  if (
    command &&
    positionals.length === 0 &&
    groupCommands(command.name).length > 0 &&
    command.positionals.some((p) => !p.optional)
  ) {
    global.help = true;
  }
  const cliOnly = command ? undefined : CLI_COMMANDS.find((c) => c.name === commandName);
  // A group's name alone (`maqet snapshot`) asks for the group's help.
  const group = commandName !== undefined && !command && !cliOnly && groupCommands(commandName).length > 0;
  if (group && positionals.length > 0) {
    const typed = `${commandName} ${positionals[0]}`;
    const names = groupCommands(commandName!).map((c) => c.name.split(" ")[1]!);
    throw usage(`unknown command '${typed}'.${didYouMean(positionals[0]!, names, `${commandName} `)}`, commandName);
  }
  if (commandName !== undefined && !command && !cliOnly && !group) {
    throw usage(`unknown command '${commandName}'.${didYouMean(commandName, commandNames())}`, undefined);
  }
  const described: CommandDescription | undefined = command ?? cliOnly;
  const input: CommandInput = {};
  for (const [typed, value] of raw) {
    // A command's own option wins over a global one of the same name (`history --version N`).
    const commandSpec = described?.options.find((o) => named(o, typed));
    const globalSpec = commandSpec ? undefined : GLOBAL_OPTIONS.find((o) => named(o, typed));
    const spec = commandSpec ?? globalSpec;
    if (spec === undefined) {
      const known = [...(described?.options ?? []), ...GLOBAL_OPTIONS].map((o) => o.name);
      throw usage(`unknown option '--${typed}'.${didYouMean(typed, known, "--")}`, commandName);
    }
    const converted = convert(spec, value, commandName);
    if (globalSpec) assignGlobal(global, spec.name, converted, commandName);
    else if (spec.multiple)
      input[spec.name] = [...((input[spec.name] as string[] | undefined) ?? []), String(converted)];
    else input[spec.name] = converted;
  }
  if (commandName === "help") {
    input.topic = positionals.length > 0 ? positionals.splice(0).join(" ") : undefined;
  } else if (described && !global.help) {
    for (const p of described.positionals) {
      if (p.variadic) {
        if (positionals.length === 0 && !p.optional)
          throw usage(`missing <${p.name}…> (${p.description})`, commandName);
        // An optional variadic with nothing given stays absent (`list()` reads it as []).
        if (positionals.length > 0) input[p.name] = positionals.splice(0);
        continue;
      }
      const value = positionals.shift();
      if (value === undefined && !p.optional) throw usage(`missing <${p.name}> (${p.description})`, commandName);
      input[p.name] = value;
    }
    if (positionals.length > 0) throw usage(`unexpected argument '${positionals[0]}'`, commandName);
  }
  if (group) global.help = true;
  return { commandName, command, input, global };
}

/** True when `typed` is the option's name or one of its other spellings. */
function named(spec: OptionSpec, typed: string): boolean {
  return spec.name === typed || spec.aliases?.includes(typed) === true;
}

function optionSpec(name: string, seen: readonly string[]): OptionSpec | undefined {
  const command = (seen.length >= 2 ? findCommand(`${seen[0]} ${seen[1]}`) : undefined) ?? findCommand(seen[0] ?? "");
  return command?.options.find((o) => named(o, name)) ?? GLOBAL_OPTIONS.find((o) => named(o, name));
}

function convert(
  spec: OptionSpec,
  value: string | undefined,
  commandName: string | undefined,
): string | number | boolean {
  if (spec.type === "boolean") {
    if (value === undefined || value === "true") return true;
    if (value === "false") return false;
    throw usage(`option --${spec.name} takes no value (got '${value}')`, commandName);
  }
  if (value === undefined) throw usage(`option --${spec.name} needs a value`, commandName);
  if (spec.type === "number") {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw usage(`option --${spec.name} must be a non-negative number (got '${value}')`, commandName);
    return n;
  }
  return value;
}

function assignGlobal(
  global: GlobalOptions,
  name: string,
  value: string | number | boolean,
  commandName: string | undefined,
): void {
  if (name === "db") global.db = String(value);
  else if (name === "data-dir") global.dataDir = String(value);
  else if (name === "runtime-dir") global.runtimeDir = String(value);
  else if (name === "config-dir") global.configDir = String(value);
  else if (name === "agent") global.agent = String(value);
  else if (name === "no-agent") global.noAgent = value === true;
  else if (name === "json") global.json = value === true;
  else if (name === "help") global.help = value === true;
  else if (name === "version") global.version = value === true;
  else if (name === "verbose") global.verbosity += value === true ? 1 : 0;
  else if (name === "debug") global.debug = value === true;
  else if (name === "log-file") global.logFile = String(value);
  else if (name === "color") {
    if (!(COLOR_MODES as readonly string[]).includes(String(value))) {
      throw usage(`--color must be one of ${COLOR_MODES.join(", ")} (got '${String(value)}')`, commandName);
    }
    global.color = value as ColorMode;
  } else if (name === "output") {
    if (!(OUTPUT_FORMATS as readonly string[]).includes(String(value))) {
      throw usage(`--format must be one of ${OUTPUT_FORMATS.join(", ")} (got '${String(value)}')`, commandName);
    }
    global.format = value as OutputFormat;
    if (value === "json") global.json = true;
  }
}

/** Every command, group and alias a user may type first. */
function commandNames(): string[] {
  const names = [...COMMANDS, ...CLI_COMMANDS].flatMap((c) => [c.name, ...(c.aliases ?? [])]);
  return [...names.filter((n) => !n.includes(" ")), ...commandGroups()];
}

function usage(problem: string, commandName: string | undefined): MaqetError {
  const hint = commandName
    ? `Run \`maqet ${commandName} --help\` for its usage.`
    : "Run `maqet --help` for the list of commands.";
  const sentence = problem.endsWith("?") ? problem : `${problem.replace(/\.$/, "")}.`;
  return new MaqetError("INVALID_ARGUMENT", `Invalid arguments: ${sentence} ${hint}`);
}
