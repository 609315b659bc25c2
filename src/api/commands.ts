/**
 * The command registry: one definition per operation. The library method is what `invoke`
 * calls; the CLI derives its parser, help and dispatch from the same definition (and the agent
 * will derive its routes from it), so the faces cannot drift apart.
 *
 * @example
 * ```ts
 * const start = findCommand("start")!;
 * await start.invoke(maqet, { vm: "web", timeout: 10 });
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import type { Maqet } from "./maqet.ts";

export interface PositionalSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export interface OptionSpec {
  name: string;
  type: "boolean" | "string" | "number";
  description: string;
  /** Placeholder shown in help, e.g. SECONDS. */
  value?: string;
}

export type CommandInput = Record<string, string | number | boolean | undefined>;

export interface CommandSpec {
  name: string;
  aliases?: string[];
  summary: string;
  positionals: PositionalSpec[];
  options: OptionSpec[];
  examples: string[];
  invoke(maqet: Maqet, input: CommandInput): Promise<unknown>;
}

const seconds = (value: unknown): number | undefined =>
  typeof value === "number" ? Math.round(value * 1000) : undefined;
const text = (input: CommandInput, key: string): string => String(input[key]);

/** A wait that must last some time: `--timeout 0` would fail before QEMU had a chance. */
function positiveSeconds(value: unknown, what: string): number | undefined {
  const ms = seconds(value);
  if (ms !== undefined && ms <= 0) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--timeout must be more than 0 seconds for ${what} (got ${String(value)}).`,
    );
  }
  return ms;
}

function parseJsonObject(raw: unknown): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(raw));
  } catch (error) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--args is not valid JSON (${(error as Error).message}). Example: --args '{"filename": "/tmp/shot.ppm"}'.`,
      {
        cause: error,
      },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--args must be a JSON object, like '{"key": "value"}' (got ${String(raw)}).`,
    );
  }
  return parsed as Record<string, unknown>;
}

const TIMEOUT: OptionSpec = { name: "timeout", type: "number", value: "SECONDS", description: "how long to wait" };

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "add",
    summary: "Define a VM from a YAML config file",
    positionals: [{ name: "config", description: "path of the VM's YAML config" }],
    options: [{ name: "name", type: "string", value: "NAME", description: "VM name (overrides `name:` in the file)" }],
    examples: ["maqet add examples/demo.yaml", "maqet add vm.yaml --name web"],
    invoke: (m, i) => m.add(text(i, "config"), { name: i.name === undefined ? undefined : String(i.name) }),
  },
  {
    name: "start",
    summary: "Start a VM (QEMU detached; returns once QMP answers and the guest runs)",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [{ ...TIMEOUT, description: "how long to wait for QEMU's QMP socket (default 30)" }],
    examples: ["maqet start web", "maqet start web --timeout 60"],
    invoke: (m, i) => m.start(text(i, "vm"), { timeoutMs: positiveSeconds(i.timeout, "start") }),
  },
  {
    name: "stop",
    summary: "Stop a VM: ACPI powerdown, then quit, SIGTERM, SIGKILL",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [
      { name: "force", type: "boolean", description: "kill QEMU at once (SIGKILL)" },
      { ...TIMEOUT, description: "how long the guest gets to power off (default 30)" },
    ],
    examples: ["maqet stop web", "maqet stop web --timeout 5", "maqet stop web --force"],
    invoke: (m, i) => m.stop(text(i, "vm"), { force: i.force === true, timeoutMs: seconds(i.timeout) }),
  },
  {
    name: "rm",
    aliases: ["remove"],
    summary: "Remove a VM (its history stays in the store)",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [
      { name: "force", type: "boolean", description: "remove a running VM too: kill its QEMU first (SIGKILL)" },
    ],
    examples: ["maqet rm web", "maqet rm web --force"],
    invoke: async (m, i) => {
      await m.remove(text(i, "vm"), { force: i.force === true });
      return { name: text(i, "vm"), removed: true };
    },
  },
  {
    name: "ls",
    aliases: ["list"],
    summary: "List VMs with their state",
    positionals: [],
    options: [],
    examples: ["maqet ls", "maqet ls --json"],
    invoke: (m) => m.list(),
  },
  {
    name: "status",
    summary: "Show one VM's state, pid and last stop reason",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet status web", "maqet status web --json"],
    invoke: (m, i) => m.status(text(i, "vm")),
  },
  {
    name: "qmp",
    summary: "Run a QMP command on a running VM and print its answer as JSON",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "command", description: "QMP command, e.g. query-status" },
    ],
    options: [
      { name: "args", type: "string", value: "JSON", description: "arguments as a JSON object" },
      { ...TIMEOUT, description: "how long to wait for the answer (default 30)" },
    ],
    examples: ["maqet qmp web query-status", `maqet qmp web screendump --args '{"filename": "/tmp/web.ppm"}'`],
    invoke: (m, i) =>
      m.qmp(text(i, "vm"), text(i, "command"), parseJsonObject(i.args), {
        timeoutMs: positiveSeconds(i.timeout, "qmp"),
      }),
  },
  {
    name: "history",
    summary: "Print a VM's recorded events in order",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet history web", "maqet history web --json"],
    invoke: (m, i) => m.history(text(i, "vm")),
  },
  {
    name: "migrate",
    summary: "Apply pending event-store schema migrations (also done automatically on open)",
    positionals: [],
    options: [],
    examples: ["maqet migrate", "maqet migrate --db postgres://localhost/maqet"],
    invoke: async (m) => ({ applied: await m.migrate() }),
  },
];

/** A command by name or alias. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
