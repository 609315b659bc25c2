/**
 * Lifecycle commands: add, start, stop, rm, ls, status (with MAQET's flags: add of several files,
 * `--memory/--cpu/--binary/--enable-kvm`, `--empty`; `start --detach`; `rm --all`; `ls --status`).
 *
 * @example
 * ```ts
 * LIFECYCLE_COMMANDS.map((c) => c.name);
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import type { Maqet } from "../maqet.ts";
import { type CommandIo, type CommandSpec, positiveSeconds, seconds, TIMEOUT, text } from "./command-spec.ts";
import { constraintsOf } from "./host-commands.ts";
import { CONFIG_OVERRIDE_OPTIONS, configFiles, overridesOf } from "./maqet-compat-commands.ts";

/** `rm --all`, as MAQET: it always asks (on a terminal) unless --force; a script must say --force. */
async function removeAll(m: Maqet, force: boolean, io: CommandIo | undefined) {
  if (!force) {
    const names = (await m.list()).map((v) => `${v.name} (${v.state})`);
    if (names.length === 0) return { name: "all", removed: true, vms: [] };
    if (io?.confirm === undefined) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `rm --all would remove ${names.length} VM(s): ${names.join(", ")}. It asks first, and there is no terminal to ask on: add --force to remove them all.`,
      );
    }
    if (!(await io.confirm(`Remove all ${names.length} VM(s): ${names.join(", ")}?`))) {
      return { name: "all", removed: false, vms: [] };
    }
  }
  // Asked (or --force): running VMs still need --force, as for one `rm`.
  const removed = await m.removeAll({ force });
  return { name: "all", removed: true, vms: removed.map((r) => r.name) };
}

export const LIFECYCLE_COMMANDS: readonly CommandSpec[] = [
  {
    name: "add",
    summary: "Define a VM from YAML config file(s), merged left to right (MAQET's rules)",
    positionals: [{ name: "config", description: "path(s) of the VM's YAML config", optional: true, variadic: true }],
    options: [
      { name: "name", type: "string", value: "NAME", description: "VM name (overrides `name:` in the file)" },
      ...CONFIG_OVERRIDE_OPTIONS,
      { name: "empty", type: "boolean", description: "define an empty VM (no config; fill it with `maqet apply`)" },
      { name: "host", type: "string", value: "NAME", description: "cluster: place the VM on this host" },
      {
        name: "constraint",
        type: "string",
        value: "KEY=VALUE",
        multiple: true,
        description: "cluster: only hosts with this label (repeatable)",
      },
    ],
    examples: [
      "maqet add examples/demo.yaml",
      "maqet add vm.yaml --name web",
      "maqet add base.yaml web.yaml --memory 8G",
      "maqet add --vm-config base.yaml --vm-config custom.yaml --name web",
      "maqet add --name scratch --empty",
      "maqet add vm.yaml --host lab2",
      "maqet add vm.yaml --constraint zone=a",
    ],
    invoke: (m, i) => {
      const files = configFiles(i);
      const name = i.name === undefined ? undefined : String(i.name);
      const overrides = overridesOf(i);
      const constraints = constraintsOf(i);
      const placement = {
        ...(i.host !== undefined ? { host: String(i.host) } : {}),
        ...(constraints ? { constraints } : {}),
      };
      // One file, no flags: the plain path (object configs and single files behave as before).
      if (files.length === 1 && Object.keys(overrides).length === 0 && i.empty !== true)
        return m.add(files[0]!, { name, ...placement });
      return m.addConfigs(files, {
        ...(name !== undefined ? { name } : {}),
        overrides,
        empty: i.empty === true,
        ...placement,
      });
    },
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
      { name: "detach", type: "boolean", description: "accepted for MAQET: QEMU always runs detached" },
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
    aliases: ["remove", "delete"],
    summary: "Remove a VM, or every VM with --all (their history stays in the store)",
    positionals: [{ name: "vm", description: "VM name or id (or --all)", optional: true }],
    options: [
      {
        name: "force",
        type: "boolean",
        description: "remove a running VM too: kill its QEMU first (SIGKILL); with --all, do not ask",
      },
      { name: "all", type: "boolean", description: "remove every VM (asks first on a terminal; --force to skip)" },
    ],
    examples: ["maqet rm web", "maqet rm web --force", "maqet rm --all", "maqet rm --all --force"],
    invoke: async (m, i, io) => {
      if (i.all === true) return removeAll(m, i.force === true, io);
      if (i.vm === undefined) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "Invalid arguments: missing <vm> (or --all). Run `maqet rm --help` for its usage.",
        );
      }
      await m.remove(text(i, "vm"), { force: i.force === true });
      return { name: text(i, "vm"), removed: true };
    },
  },
  {
    name: "ls",
    aliases: ["list"],
    summary: "List VMs with their state",
    positionals: [],
    options: [
      {
        name: "status",
        type: "string",
        value: "STATE",
        description: "only VMs in this state: running, paused, stopped, created (never started), failed, …",
      },
    ],
    examples: ["maqet ls", "maqet ls --json", "maqet ls --status running"],
    invoke: (m, i) => (i.status === undefined ? m.list() : m.listByStatus(String(i.status))),
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
