/**
 * QMP commands: raw QMP on a running VM (`qmp <vm> <command> [key=value…]`) and the helpers
 * `qmp keys`, `qmp type`, `qmp screendump`, `qmp device-add`, `qmp device-del`.
 *
 * Precedence: a helper name in second place wins (`maqet qmp keys web ret` is the helper). For
 * a VM named like a helper, put `--` before it (`maqet qmp -- keys query-status`) or use its id.
 *
 * Arguments as words: `key=value` is a string, `key:=json` a JSON value (`size:=4096`,
 * `on:=true`), as HTTPie writes them; `--args JSON` gives them all at once instead.
 *
 * @example
 * ```ts
 * QMP_COMMANDS.map((c) => c.name);
 * parseKeyValues(["filename=/tmp/a.ppm", "head:=0"]); // { filename: "/tmp/a.ppm", head: 0 }
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import {
  type CommandInput,
  type CommandSpec,
  list,
  type OptionSpec,
  parseJsonObject,
  positiveSeconds,
  TIMEOUT,
  text,
} from "./command-spec.ts";

const QMP_TIMEOUT: OptionSpec = { ...TIMEOUT, description: "how long to wait for each answer (default 30)" };
const HOLD_TIME: OptionSpec = {
  name: "hold-time",
  type: "number",
  value: "MS",
  description: "how long the keys stay pressed, in milliseconds (default: QEMU's 100)",
};
const ALLOW_DANGEROUS: OptionSpec = {
  name: "allow-dangerous",
  type: "boolean",
  description: "run a dangerous command (human-monitor-command, inject-nmi); marks the VM tainted",
};

/**
 * `key=value` (string) and `key:=json` (any JSON value) words → an arguments object.
 *
 * @example
 * ```ts
 * parseKeyValues(["val:=0", "size:=4096", "filename=/tmp/mem"]);
 * ```
 */
export function parseKeyValues(words: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq <= 0 || (eq === 1 && word[0] === ":")) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Invalid argument '${word}': write key=value (a string) or key:=json (a number, true/false, a list…), e.g. filename=/tmp/a.ppm size:=4096.`,
      );
    }
    const json = word[eq - 1] === ":";
    const key = word.slice(0, json ? eq - 1 : eq);
    const raw = word.slice(eq + 1);
    if (Object.hasOwn(out, key)) throw new MaqetError("INVALID_ARGUMENT", `Argument '${key}' is given twice.`);
    if (!json) {
      out[key] = raw;
      continue;
    }
    try {
      out[key] = JSON.parse(raw);
    } catch (error) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Invalid JSON for '${key}:=': ${raw} (${(error as Error).message}). Use key=value for a plain string.`,
        { cause: error },
      );
    }
  }
  return out;
}

const common = (i: CommandInput) => ({
  timeoutMs: positiveSeconds(i.timeout, "qmp"),
  allowDangerous: i["allow-dangerous"] === true,
});

const holdTime = (i: CommandInput) =>
  typeof i["hold-time"] === "number" ? Math.round(i["hold-time"] as number) : undefined;

export const QMP_COMMANDS: readonly CommandSpec[] = [
  {
    name: "qmp",
    summary: "Run a QMP command on a running VM and print its answer as JSON",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "command", description: "QMP command, e.g. query-status" },
      {
        name: "arguments",
        description: "key=value (string) or key:=json arguments",
        optional: true,
        variadic: true,
      },
    ],
    options: [
      { name: "args", type: "string", value: "JSON", description: "arguments as a JSON object (instead of key=value)" },
      ALLOW_DANGEROUS,
      QMP_TIMEOUT,
    ],
    examples: [
      "maqet qmp web query-status",
      "maqet qmp web screendump filename=/tmp/web.ppm",
      "maqet qmp web pmemsave val:=0 size:=4096 filename=/tmp/mem.bin",
      `maqet qmp web screendump --args '{"filename": "/tmp/web.ppm"}'`,
      `maqet qmp web human-monitor-command command-line="info mtree" --allow-dangerous`,
      "maqet qmp -- keys query-status   # a VM named like a helper",
    ],
    invoke: (m, i) => {
      const words = list(i, "arguments");
      if (words.length && i.args !== undefined) {
        throw new MaqetError("INVALID_ARGUMENT", "Give arguments as key=value words or as --args JSON, not both.");
      }
      const args = i.args !== undefined ? parseJsonObject(i.args) : words.length ? parseKeyValues(words) : undefined;
      return m.qmp(text(i, "vm"), text(i, "command"), args, common(i));
    },
  },
  {
    name: "qmp keys",
    summary: "Press keys together on a running VM (QMP send-key with qcodes)",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "keys", description: "qcodes pressed together: ctrl alt delete, or ctrl-alt-delete", variadic: true },
    ],
    options: [HOLD_TIME, QMP_TIMEOUT],
    examples: [
      "maqet qmp keys web ctrl alt delete",
      "maqet qmp keys web ret",
      "maqet qmp keys web ctrl-c --hold-time 50",
    ],
    invoke: (m, i) => m.sendKeys(text(i, "vm"), list(i, "keys"), { ...common(i), holdTimeMs: holdTime(i) }),
  },
  {
    name: "qmp type",
    summary: "Type text on a running VM (one send-key per character, US layout)",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "text", description: "ASCII text; \\n in the shell's $'…' quoting presses Enter" },
    ],
    options: [HOLD_TIME, QMP_TIMEOUT],
    examples: ["maqet qmp type web 'root'", "maqet qmp type web $'ls -l\\n'"],
    invoke: (m, i) => m.typeText(text(i, "vm"), text(i, "text"), { ...common(i), holdTimeMs: holdTime(i) }),
  },
  {
    name: "qmp screendump",
    summary: "Save a running VM's display to a file (PPM, or PNG for a .png name)",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "file", description: "output file; QEMU writes it (relative to the current directory)" },
    ],
    options: [
      { name: "format", type: "string", value: "ppm|png", description: "image format (default: from the file name)" },
      QMP_TIMEOUT,
    ],
    examples: ["maqet qmp screendump web shot.png", "maqet qmp screendump web /tmp/web.ppm"],
    invoke: (m, i) =>
      m.screendump(text(i, "vm"), text(i, "file"), {
        ...common(i),
        format: i.format === undefined ? undefined : (String(i.format) as "ppm" | "png"),
      }),
  },
  {
    name: "qmp device-add",
    summary: "Hot-plug a device into a running VM (QMP device_add)",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "driver", description: "device model, e.g. usb-kbd, virtio-net-pci" },
      { name: "id", description: "device id (used by device-del)" },
      { name: "props", description: "prop=value (string) or prop:=json properties", optional: true, variadic: true },
    ],
    options: [QMP_TIMEOUT],
    examples: ["maqet qmp device-add web usb-kbd kbd1 bus=xhci.0", "maqet qmp device-add web virtio-rng-pci rng0"],
    invoke: (m, i) => m.deviceAdd(text(i, "vm"), text(i, "driver"), text(i, "id"), rawProps(i), common(i)),
  },
  {
    name: "qmp device-del",
    summary: "Unplug a device from a running VM (QMP device_del)",
    positionals: [
      { name: "vm", description: "VM name or id" },
      { name: "id", description: "the device's id" },
    ],
    options: [QMP_TIMEOUT],
    examples: ["maqet qmp device-del web kbd1"],
    invoke: (m, i) => m.deviceDel(text(i, "vm"), text(i, "id"), common(i)),
  },
];

function rawProps(i: CommandInput): Record<string, unknown> {
  return parseKeyValues(list(i, "props"));
}
