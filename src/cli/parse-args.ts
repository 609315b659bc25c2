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
import { type CommandInput, type CommandSpec, findCommand, type OptionSpec } from "../api/commands.ts";
import { MaqetError } from "../errors/maqet-error.ts";

export interface GlobalOptions {
  db?: string;
  dataDir?: string;
  runtimeDir?: string;
  /** `--agent PATH`: go through this agent (see src/cli/agent-target.ts). */
  agent?: string;
  /** `--no-agent`: run in-process even when an agent answers. */
  noAgent?: boolean;
  json: boolean;
  help: boolean;
  version: boolean;
}

export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  {
    name: "db",
    type: "string",
    value: "URL",
    description: "PostgreSQL server URL (default: embedded store; env MAQET_DATABASE_URL)",
  },
  {
    name: "data-dir",
    type: "string",
    value: "DIR",
    description: "data directory of the embedded store (default $XDG_DATA_HOME/maqet)",
  },
  {
    name: "runtime-dir",
    type: "string",
    value: "DIR",
    description: "root of per-VM runtime dirs (default $XDG_RUNTIME_DIR/maqet)",
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

const SHORT: Record<string, string> = { "-h": "--help", "-V": "--version", "-f": "--force" };

/** CLI-only commands that are not library operations. */
export const CLI_ONLY_COMMANDS = ["demo", "help"] as const;

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const global: GlobalOptions = { json: false, help: false, version: false };
  const positionals: string[] = [];
  const raw: Array<[string, string | undefined]> = [];
  let onlyPositionals = false;
  let positionalsBeforeDashDash = Number.POSITIVE_INFINITY;
  for (let i = 0; i < argv.length; i++) {
    const token = SHORT[argv[i]!] ?? argv[i]!;
    if (onlyPositionals || !token.startsWith("-") || token === "-") {
      positionals.push(token);
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
    } else {
      throw usage(`unknown option '${argv[i]}'`, positionals[0]);
    }
  }
  // A two-word command (`snapshot create`, `qmp keys`) wins over a one-word one, unless `--`
  // comes before its second word: `maqet qmp -- keys query-status` is raw QMP on a VM named keys.
  const twoWords =
    positionals.length >= 2 && positionalsBeforeDashDash >= 2 ? `${positionals[0]} ${positionals[1]}` : undefined;
  const commandName = twoWords !== undefined && findCommand(twoWords) ? twoWords : positionals[0];
  positionals.splice(0, commandName === undefined ? 0 : commandName.split(" ").length);
  const command = commandName === undefined ? undefined : findCommand(commandName);
  if (
    commandName !== undefined &&
    command === undefined &&
    !(CLI_ONLY_COMMANDS as readonly string[]).includes(commandName)
  ) {
    throw usage(`unknown command '${commandName}'`, undefined);
  }
  const input: CommandInput = {};
  for (const [name, value] of raw) {
    // A command's own option wins over a global one of the same name (`history --version N`).
    const commandSpec = command?.options.find((o) => o.name === name);
    const globalSpec = commandSpec ? undefined : GLOBAL_OPTIONS.find((o) => o.name === name);
    const spec = commandSpec ?? globalSpec;
    if (spec === undefined) throw usage(`unknown option '--${name}'`, commandName);
    const converted = convert(spec, value, commandName);
    if (globalSpec) assignGlobal(global, name, converted);
    else input[name] = converted;
  }
  if (command && !global.help) {
    for (const p of command.positionals) {
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
  } else if (commandName === "help") {
    input.topic = positionals.shift();
  }
  return { commandName, command, input, global };
}

function optionSpec(name: string, seen: readonly string[]): OptionSpec | undefined {
  const command = (seen.length >= 2 ? findCommand(`${seen[0]} ${seen[1]}`) : undefined) ?? findCommand(seen[0] ?? "");
  return command?.options.find((o) => o.name === name) ?? GLOBAL_OPTIONS.find((o) => o.name === name);
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

function assignGlobal(global: GlobalOptions, name: string, value: string | number | boolean): void {
  if (name === "db") global.db = String(value);
  else if (name === "data-dir") global.dataDir = String(value);
  else if (name === "runtime-dir") global.runtimeDir = String(value);
  else if (name === "agent") global.agent = String(value);
  else if (name === "no-agent") global.noAgent = value === true;
  else if (name === "json") global.json = value === true;
  else if (name === "help") global.help = value === true;
  else if (name === "version") global.version = value === true;
}

function usage(problem: string, commandName: string | undefined): MaqetError {
  const hint = commandName
    ? `Run \`maqet ${commandName} --help\` for its usage.`
    : "Run `maqet --help` for the list of commands.";
  return new MaqetError("INVALID_ARGUMENT", `Invalid arguments: ${problem}. ${hint}`);
}
