/**
 * Disk commands for images outside a VM's config: `disk create|info|check|resize|convert`.
 *
 * @example
 * ```ts
 * await findCommand("disk create")!.invoke(maqet, { file: "base.qcow2", size: "10G" });
 * ```
 */
import type { ImageFormat } from "../../actors/disk-image-port.ts";
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CommandSpec, type OptionSpec, positiveSeconds, text } from "./command-spec.ts";

const FILE = { name: "file", description: "image file (relative to the current directory)" };

function format(value: unknown, option: string, fallback?: ImageFormat): ImageFormat | undefined {
  if (value === undefined) return fallback;
  if (value === "qcow2" || value === "raw") return value;
  throw new MaqetError("INVALID_ARGUMENT", `--${option} must be qcow2 or raw (got '${String(value)}').`);
}

/** `k=v,k=v` (a literal comma inside a value is written `,,`, as QEMU does). */
function createOptions(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const part of splitOptions(String(value))) {
    const eq = part.indexOf("=");
    if (eq <= 0 || !/^[a-z][a-z0-9_.-]*$/.test(part.slice(0, eq))) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `--options takes key=value pairs separated by commas, e.g. cluster_size=64K,lazy_refcounts=on (got '${part}').`,
      );
    }
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Splits on single commas; `,,` is a literal comma. */
function splitOptions(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "," && text[i + 1] === ",") {
      current += ",";
      i++;
    } else if (text[i] === ",") {
      parts.push(current);
      current = "";
    } else current += text[i];
  }
  parts.push(current);
  return parts;
}

const FORMAT: OptionSpec = { name: "format", type: "string", value: "FMT", description: "qcow2 (default) or raw" };

export const DISK_COMMANDS: readonly CommandSpec[] = [
  {
    name: "disk create",
    summary: "Create a disk image (0600, never over an existing file, refused in system directories)",
    positionals: [FILE],
    options: [
      FORMAT,
      { name: "size", type: "string", value: "SIZE", description: "virtual size, e.g. 10G (optional with --backing)" },
      {
        name: "backing",
        type: "string",
        value: "FILE",
        description: "backing image (relative to the new image's directory)",
      },
      {
        name: "backing-format",
        type: "string",
        value: "FMT",
        description: "format of the backing image (default qcow2)",
      },
      {
        name: "options",
        type: "string",
        value: "K=V,...",
        description: "qemu-img create -o options, e.g. cluster_size=64K",
      },
    ],
    examples: [
      "maqet disk create web.qcow2 --size 20G",
      "maqet disk create overlay.qcow2 --backing base.qcow2",
      "maqet disk create scratch.raw --format raw --size 1G",
    ],
    invoke: (m, i) =>
      m.createDisk(text(i, "file"), {
        format: format(i.format, "format", "qcow2")!,
        ...(i.size !== undefined ? { size: String(i.size) } : {}),
        ...(i.backing !== undefined ? { backingFile: String(i.backing) } : {}),
        ...(i["backing-format"] !== undefined ? { backingFormat: format(i["backing-format"], "backing-format") } : {}),
        ...(i.options !== undefined ? { options: createOptions(i.options) } : {}),
      }),
  },
  {
    name: "disk info",
    summary: "Show an image's format, sizes, backing file and snapshots (readable while a VM uses it)",
    positionals: [FILE],
    options: [],
    examples: ["maqet disk info web.qcow2", "maqet disk info web.qcow2 --json"],
    invoke: (m, i) => m.diskInfo(text(i, "file")),
  },
  {
    name: "disk check",
    summary: "Check an image for corruption and leaked clusters (qemu-img check)",
    positionals: [FILE],
    options: [{ ...FORMAT, description: "the image's format (default: probed)" }],
    examples: ["maqet disk check web.qcow2"],
    invoke: (m, i) => m.checkDisk(text(i, "file"), { format: format(i.format, "format") }),
  },
  {
    name: "disk resize",
    summary: "Grow (or with --shrink, shrink) an image's virtual size",
    positionals: [FILE, { name: "size", description: "new size (10G) or a change (+5G)" }],
    options: [{ name: "shrink", type: "boolean", description: "allow making it smaller (data past the end is lost)" }],
    examples: ["maqet disk resize web.qcow2 40G", "maqet disk resize web.qcow2 +10G"],
    invoke: (m, i) => m.resizeDisk(text(i, "file"), text(i, "size"), { shrink: i.shrink === true }),
  },
  {
    name: "disk convert",
    summary: "Copy an image into a new file in another format, with progress",
    positionals: [
      { name: "source", description: "image to read" },
      { name: "target", description: "new image file (must not exist)" },
    ],
    options: [
      { ...FORMAT, description: "output format: qcow2 (default) or raw" },
      { name: "source-format", type: "string", value: "FMT", description: "the source's format (default: probed)" },
      { name: "compress", type: "boolean", description: "compress the output (qcow2)" },
      { name: "timeout", type: "number", value: "SECONDS", description: "give up after this long (default: none)" },
    ],
    examples: ["maqet disk convert web.raw web.qcow2", "maqet disk convert web.qcow2 web.raw --format raw"],
    invoke: (m, i) =>
      m.convertDisk(text(i, "source"), text(i, "target"), {
        format: format(i.format, "format", "qcow2")!,
        ...(i["source-format"] !== undefined ? { sourceFormat: format(i["source-format"], "source-format") } : {}),
        compress: i.compress === true,
        timeoutMs: positiveSeconds(i.timeout, "disk convert"),
      }),
  },
];
