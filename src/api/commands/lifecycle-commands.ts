/**
 * Lifecycle commands: add, start, stop, rm, ls, status.
 *
 * @example
 * ```ts
 * LIFECYCLE_COMMANDS.map((c) => c.name);
 * ```
 */
import { type CommandSpec, positiveSeconds, seconds, TIMEOUT, text } from "./command-spec.ts";

export const LIFECYCLE_COMMANDS: readonly CommandSpec[] = [
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
    options: [
      { ...TIMEOUT, description: "how long the start and its wait may take (default 30)" },
      {
        name: "wait-for",
        type: "string",
        value: "CONDITION",
        description: "qmp (default: handshake, cont, guest running), process, file:/PATH, serial:REGEX",
      },
      { name: "dry-run", type: "boolean", description: "print the QEMU command line a start would run; start nothing" },
    ],
    examples: [
      "maqet start web",
      "maqet start web --timeout 60",
      "maqet start web --wait-for 'serial:login:' --timeout 120",
      "maqet start web --dry-run",
    ],
    invoke: (m, i) =>
      i["dry-run"] === true
        ? m.inspect(text(i, "vm"), { planned: true })
        : m.start(text(i, "vm"), {
            timeoutMs: positiveSeconds(i.timeout, "start"),
            waitFor: i["wait-for"] === undefined ? undefined : String(i["wait-for"]),
          }),
  },
  {
    name: "inspect",
    summary: "Show the exact QEMU command line of a VM (its current run, or what a start would run)",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet inspect web", "maqet inspect web --json"],
    invoke: (m, i) => m.inspect(text(i, "vm")),
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
    name: "pause",
    summary: "Pause a running VM's vCPUs (QMP stop); recorded as vm.paused",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet pause web"],
    invoke: (m, i) => m.pause(text(i, "vm")),
  },
  {
    name: "resume",
    summary: "Resume a paused VM (QMP cont); recorded as vm.resumed",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet resume web"],
    invoke: (m, i) => m.resume(text(i, "vm")),
  },
  {
    name: "reset",
    summary: "Reset a running VM, like its reset button (QMP system_reset); recorded as vm.reset",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet reset web"],
    invoke: (m, i) => m.reset(text(i, "vm")),
  },
];
