/**
 * Snapshot commands: `snapshot create|load|delete <vm> [drive] <name>` and `snapshot list <vm>
 * [drive]`. Offline (qemu-img) when the VM is stopped, live (QMP jobs) when it runs. With one
 * word after the VM, create/load/delete read it as the NAME (every qcow2 drive), list as the DRIVE.
 *
 * @example
 * ```ts
 * await findCommand("snapshot create")!.invoke(maqet, { vm: "web", drive: "before-upgrade" });
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CommandInput, type CommandSpec, type OptionSpec, positiveSeconds, text } from "./command-spec.ts";

const VM = { name: "vm", description: "VM name or id" };
const DRIVE = { name: "drive", description: "drive (storage name); default: every qcow2 drive", optional: true };
const NAME = { name: "name", description: "snapshot name (tag)", optional: true };
const TIMEOUT: OptionSpec = {
  name: "timeout",
  type: "number",
  value: "SECONDS",
  description: "live snapshots: how long the QMP job may take (default 300)",
};

/** [drive] [name] with the drive optional: one word is the name. */
function target(input: CommandInput, action: string): { drive?: string; tag: string } {
  const first = input.drive === undefined ? undefined : String(input.drive);
  const second = input.name === undefined ? undefined : String(input.name);
  const tag = second ?? first;
  if (tag === undefined) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid arguments: missing <name> (the snapshot name). Usage: maqet snapshot ${action} <vm> [drive] <name>.`,
    );
  }
  return second === undefined ? { tag } : { drive: first, tag };
}

export const SNAPSHOT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "snapshot create",
    summary: "Take a snapshot of a VM's qcow2 drives (live with RAM when it runs, qemu-img when stopped)",
    positionals: [VM, DRIVE, NAME],
    options: [{ name: "overwrite", type: "boolean", description: "replace a snapshot of the same name" }, TIMEOUT],
    examples: ["maqet snapshot create web before-upgrade", "maqet snapshot create web hdd before-upgrade --overwrite"],
    invoke: (m, i) =>
      m.createSnapshot(text(i, "vm"), {
        ...target(i, "create"),
        overwrite: i.overwrite === true,
        timeoutMs: positiveSeconds(i.timeout, "snapshot create"),
      }),
  },
  {
    name: "snapshot load",
    aliases: ["snapshot apply", "snapshot restore"],
    summary: "Revert a VM's drives (and, when it runs, its RAM and devices) to a snapshot",
    positionals: [VM, DRIVE, NAME],
    options: [TIMEOUT],
    examples: ["maqet snapshot load web before-upgrade", "maqet snapshot load web hdd before-upgrade"],
    invoke: (m, i) =>
      m.loadSnapshot(text(i, "vm"), { ...target(i, "load"), timeoutMs: positiveSeconds(i.timeout, "snapshot load") }),
  },
  {
    name: "snapshot delete",
    aliases: ["snapshot rm"],
    summary: "Delete a snapshot from a VM's drives",
    positionals: [VM, DRIVE, NAME],
    options: [TIMEOUT],
    examples: ["maqet snapshot delete web before-upgrade"],
    invoke: (m, i) =>
      m.deleteSnapshot(text(i, "vm"), {
        ...target(i, "delete"),
        timeoutMs: positiveSeconds(i.timeout, "snapshot delete"),
      }),
  },
  {
    name: "snapshot list",
    aliases: ["snapshot ls"],
    summary: "List a VM's snapshots (from the catalogue when nothing changed, else read and recorded)",
    positionals: [VM, { ...DRIVE, description: "only this drive" }],
    options: [],
    examples: ["maqet snapshot list web", "maqet snapshot list web hdd --json"],
    invoke: (m, i) => m.listSnapshots(text(i, "vm"), i.drive === undefined ? {} : { drive: String(i.drive) }),
  },
];
