/**
 * MAQET's commands by MAQET's names and argument orders, beside maqet's own: `info`, `apply`,
 * `edit`, `snapshot VM ACTION DRIVE [NAME]`, `qmp pause|resume|run`, `storage
 * orphaned|verify|attach`, `cleanup`. Where maqet already has the operation (pause, snapshot…)
 * these call the same library method. docs/maqet-compat.md maps them one by one.
 *
 * @example
 * ```ts
 * await findCommand("apply")!.invoke(maqet, { vm: "web", config: ["bigger.yaml"], memory: "8G" });
 * ```
 */
import { dirname } from "node:path";
import { openEditSession } from "../../adapters/run-editor.ts";
import type { ConfigOverrides } from "../../config/merge-configs.ts";
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import type { Maqet } from "../maqet.ts";
import {
  type CommandInput,
  type CommandSpec,
  list,
  type OptionSpec,
  positiveSeconds,
  seconds,
  text,
} from "./command-spec.ts";
import { QMP_COMMANDS } from "./qmp-commands.ts";

const VM = { name: "vm", description: "VM name or id" };

/** MAQET's config flags of `add` and `apply`. */
export const CONFIG_OVERRIDE_OPTIONS: OptionSpec[] = [
  {
    name: "vm-config",
    aliases: ["config"],
    type: "string",
    value: "FILE…",
    multiple: true,
    greedy: true,
    description: "config file(s) merged left to right (MAQET's flag form of the positional files)",
  },
  { name: "memory", type: "string", value: "SIZE", description: "memory, e.g. 4G (replaces an `- m:` argument)" },
  { name: "cpu", type: "number", value: "N", description: "vCPUs (replaces an `- smp:` argument)" },
  { name: "binary", type: "string", value: "PATH", description: "qemu-system binary (name on PATH, or a path)" },
  { name: "enable-kvm", type: "boolean", description: "use KVM (maqet's spelling: accel: kvm)" },
];

/** `--memory/--cpu/--binary/--enable-kvm` as overrides. */
export function overridesOf(input: CommandInput): ConfigOverrides {
  return {
    ...(input.memory !== undefined ? { memory: String(input.memory) } : {}),
    ...(input.cpu !== undefined ? { cpu: cpuOf(input.cpu) } : {}),
    ...(input.binary !== undefined ? { binary: String(input.binary) } : {}),
    ...(input["enable-kvm"] === true ? { enableKvm: true } : {}),
  };
}

function cpuOf(value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--cpu must be a whole number of vCPUs, 1 or more (got ${String(value)}).`,
    );
  }
  return n;
}

/** Positional files first, then `--vm-config` ones, in the order typed. */
export function configFiles(input: CommandInput, positional = "config"): string[] {
  return [...list(input, positional), ...list(input, "vm-config")];
}

const RESTART: OptionSpec = {
  name: "restart",
  type: "boolean",
  description: "a running VM: stop it, apply, start it again (otherwise refused)",
};
const RESTART_TIMEOUT: OptionSpec = {
  name: "timeout",
  type: "number",
  value: "SECONDS",
  description: "with --restart: how long the guest gets to power off (default 30)",
};
const REASON: OptionSpec = {
  name: "reason",
  type: "string",
  value: "TEXT",
  description: "why (kept in vm.reconfigured)",
};

const SNAPSHOT_ACTIONS = ["create", "load", "list", "delete", "restore", "apply", "rm", "ls"];

async function snapshotMaqetOrder(m: Maqet, input: CommandInput): Promise<unknown> {
  const vm = text(input, "vm");
  const action = text(input, "action");
  const drive = input.drive === undefined ? undefined : String(input.drive);
  const given = input.name ?? input.tag;
  const tag = given === undefined ? undefined : String(given);
  const timeoutMs = positiveSeconds(input.timeout, `snapshot ${action}`);
  if (!SNAPSHOT_ACTIONS.includes(action)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid arguments: unknown snapshot action '${action}'. Usage: maqet snapshot <vm> create|load|list|delete <drive> [name].`,
    );
  }
  if (input.live === true) {
    const status = await m.status(vm);
    if (status.state !== "running" && status.state !== "paused") {
      throw new MaqetError(
        "VM_INVALID_STATE",
        `--live needs a running VM, and '${vm}' is ${status.state}. Start it, or drop --live for an offline (qemu-img) snapshot.`,
      );
    }
  }
  if (action === "list" || action === "ls") return m.listSnapshots(vm, drive === undefined ? {} : { drive });
  if (tag === undefined) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid arguments: missing <name> (the snapshot name). Usage: maqet snapshot ${vm} ${action} <drive> <name>.`,
    );
  }
  if (drive === undefined) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid arguments: missing <drive>. Usage: maqet snapshot ${vm} ${action} <drive> <name> (or maqet snapshot ${action} ${vm} <name> for every drive).`,
    );
  }
  if (action === "create") return m.createSnapshot(vm, { drive, tag, overwrite: input.overwrite === true, timeoutMs });
  if (action === "delete" || action === "rm") return m.deleteSnapshot(vm, { drive, tag, timeoutMs });
  return m.loadSnapshot(vm, { drive, tag, timeoutMs });
}

export const MAQET_COMPAT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "info",
    summary: "Show a VM's configuration: binary, memory, CPUs, display, storage (MAQET's info)",
    positionals: [VM],
    options: [],
    examples: ["maqet info web", "maqet info web --json", "maqet --format yaml info web"],
    invoke: (m, i) => m.info(text(i, "vm")),
  },
  {
    name: "apply",
    summary:
      "Change a stopped VM's config in place (same VM, same id), or define it when missing; recorded as vm.reconfigured",
    positionals: [
      VM,
      { name: "config", description: "config file(s) merged over the VM's config", optional: true, variadic: true },
    ],
    options: [...CONFIG_OVERRIDE_OPTIONS, RESTART, RESTART_TIMEOUT, REASON],
    examples: [
      "maqet apply web bigger.yaml",
      "maqet apply web --memory 8G --cpu 4",
      "maqet apply web --vm-config base.yaml --vm-config prod.yaml",
      "maqet apply web net.yaml --restart --reason 'add a NIC'",
    ],
    invoke: (m, i) =>
      m.apply(text(i, "vm"), {
        files: configFiles(i),
        overrides: overridesOf(i),
        restart: i.restart === true,
        ...(i.timeout !== undefined ? { stopTimeoutMs: seconds(i.timeout) } : {}),
        ...(i.reason !== undefined ? { reason: String(i.reason) } : {}),
      }),
  },
  {
    name: "edit",
    summary: "Open a stopped VM's config in $VISUAL/$EDITOR and apply what you save (vm.reconfigured)",
    positionals: [VM],
    options: [RESTART, RESTART_TIMEOUT, REASON],
    examples: ["maqet edit web", "EDITOR='code --wait' maqet edit web", "maqet edit web --restart"],
    invoke: async (m, i, io) => {
      if (io === undefined) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "edit needs a terminal and an editor; from a program, use replaceConfig().",
        );
      }
      const vm = text(i, "vm");
      const status = await m.status(vm);
      if (status.state !== "stopped" && i.restart !== true) {
        // Said before the editor opens: nobody should type changes that cannot be applied.
        throw new MaqetError(
          "VM_INVALID_STATE",
          `Cannot edit the config of VM '${vm}': it is ${status.state}, and a config applies to a stopped VM. Stop it first (\`maqet stop ${vm}\`), or add --restart.`,
        );
      }
      const before = await m.configYaml(vm);
      const session = await openEditSession(`${status.name}.yaml`, before);
      const after = await session.edit(io.env);
      if (after === before) {
        await session.discard();
        return { vm: status, changed: [], created: false, restarted: false };
      }
      try {
        const info = await m.info(vm);
        const result = await m.replaceConfig(vm, after, {
          via: "edit",
          restart: i.restart === true,
          ...(i.timeout !== undefined ? { stopTimeoutMs: seconds(i.timeout) } : {}),
          ...(i.reason !== undefined ? { reason: String(i.reason) } : {}),
          ...(info.configPath ? { baseDir: dirname(info.configPath) } : {}),
        });
        await session.discard();
        return result;
      } catch (error) {
        if (isMaqetError(error)) {
          throw new MaqetError(error.code, `${error.message} Your edit is kept in ${session.path}.`, {
            cause: error,
            details: { ...error.details, editedFile: session.path },
          });
        }
        throw error;
      }
    },
  },
  {
    name: "snapshot",
    summary: "MAQET's order: snapshot <vm> create|load|list|delete <drive> [name] (same as `snapshot create <vm> …`)",
    positionals: [
      VM,
      { name: "action", description: "create, load, list or delete" },
      { name: "drive", description: "drive (storage name); list: optional", optional: true },
      { name: "tag", description: "snapshot name (or --name)", optional: true },
    ],
    options: [
      { name: "name", type: "string", value: "NAME", description: "snapshot name (MAQET's flag form)" },
      { name: "overwrite", type: "boolean", description: "create: replace a snapshot of the same name" },
      {
        name: "live",
        type: "boolean",
        description: "refuse unless the VM runs (maqet takes live snapshots of a running VM anyway)",
      },
      {
        name: "timeout",
        type: "number",
        value: "SECONDS",
        description: "live snapshots: how long the QMP job may take (default 300)",
      },
    ],
    examples: [
      "maqet snapshot web create hdd backup1",
      "maqet snapshot web create hdd backup1 --overwrite",
      "maqet snapshot web load hdd backup1",
      "maqet snapshot web list hdd",
      "maqet snapshot web delete hdd backup1",
    ],
    invoke: snapshotMaqetOrder,
  },
  {
    name: "qmp pause",
    summary: "Pause a running VM (MAQET's spelling of `maqet pause`)",
    positionals: [VM],
    options: [],
    examples: ["maqet qmp pause web"],
    invoke: (m, i) => m.pause(text(i, "vm")),
  },
  {
    name: "qmp resume",
    summary: "Resume a paused VM (MAQET's spelling of `maqet resume`)",
    positionals: [VM],
    options: [],
    examples: ["maqet qmp resume web"],
    invoke: (m, i) => m.resume(text(i, "vm")),
  },
  {
    name: "qmp run",
    summary: "Run one raw QMP command (MAQET's spelling of `maqet qmp <vm> <command>`), policy and audit as usual",
    positionals: [
      VM,
      { name: "command", description: "QMP command, e.g. query-status" },
      { name: "arguments", description: "key=value (string) or key:=json arguments", optional: true, variadic: true },
    ],
    options: findQmp().options,
    examples: ["maqet qmp run web query-status", "maqet qmp run web query-block"],
    invoke: (m, i, io) => findQmp().invoke(m, i, io),
  },
  {
    name: "storage orphaned",
    summary:
      "List disk images no VM uses (in the data dir's disks/, images/, snapshots/ and every VM's disk directory)",
    positionals: [],
    options: [],
    examples: ["maqet storage orphaned", "maqet storage orphaned --json"],
    invoke: (m) => m.storageOrphaned(),
  },
  {
    name: "storage verify",
    summary: "Check that every file a VM's config names exists (exit 3 when one is missing)",
    positionals: [VM],
    options: [],
    examples: ["maqet storage verify web"],
    invoke: async (m, i) => {
      const report = await m.storageVerify(text(i, "vm"));
      if (!report.ok) {
        const missing = report.files.filter((f) => !f.exists).map((f) => f.path);
        throw new MaqetError(
          "PATH_NOT_FOUND",
          `Some storage files of VM '${report.vm}' are missing: ${missing.join(", ")}. Restore them, or remove them from its config (\`maqet edit ${report.vm}\`).`,
          { details: { ...report } },
        );
      }
      return report;
    },
  },
  {
    name: "storage attach",
    summary: "Define a VM around an existing disk image (its config must use that file)",
    positionals: [
      { name: "name", description: "name of the new VM" },
      { name: "path", description: "the disk image" },
      { name: "config", description: "the VM's config file(s) (or --vm-config)", optional: true, variadic: true },
    ],
    options: [CONFIG_OVERRIDE_OPTIONS[0]!],
    examples: [
      "maqet storage attach recovered-vm /srv/vms/old.qcow2 recovered-vm.yaml",
      "maqet storage attach recovered-vm /srv/vms/old.qcow2 --vm-config recovered-vm.yaml",
    ],
    invoke: (m, i) => m.storageAttach(text(i, "name"), text(i, "path"), configFiles(i)),
  },
  {
    name: "cleanup",
    summary: "Record the exit of VMs whose QEMU is gone and remove their dead QMP sockets (--dry-run: only say what)",
    positionals: [],
    options: [
      { name: "dry-run", type: "boolean", description: "report, change nothing" },
      { name: "force", type: "boolean", description: "accepted for MAQET (nothing here needs forcing)" },
    ],
    examples: ["maqet cleanup --dry-run", "maqet cleanup"],
    invoke: (m, i) => m.cleanup({ dryRun: i["dry-run"] === true }),
  },
];

/** The raw `qmp` command: `qmp run` is the same operation (its `--args` parsing, policy and audit). */
function findQmp(): CommandSpec {
  const spec = QMP_COMMANDS.find((c) => c.name === "qmp");
  if (spec === undefined) throw new MaqetError("INTERNAL", "The qmp command is not registered.");
  return spec;
}
