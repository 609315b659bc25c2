/**
 * MAQET-compatible VM YAML → validated {@link VmConfig}. Pure: no I/O, no environment; relative
 * paths resolve against `options.baseDir` (the config file's directory).
 *
 * Decisions (docs/config.md repeats them for users):
 * - YAML 1.2 core schema, one document, unique keys, no custom tags (`!!python/...` is refused),
 *   merge keys (`<<`) allowed as PyYAML did. `on`/`yes` are strings, as QEMU wants them.
 * - Strict: an unknown top-level key is an error listing the valid keys (MAQET only warned).
 *   MAQET's metadata keys `description`, `tags`, `parameters` are accepted, type-checked and
 *   dropped; `network` and `plain_arguments` likewise, with a warning, since MAQET never acted on
 *   them either. Command names (`start`, `add`, ...) are refused, as in MAQET.
 * - An empty file is an empty VM (`{}`), as MAQET's `add --empty`.
 * - `memory`: `512M`/`4G`/`1T` (K also accepted; suffix upper-cased) or an integer number of bytes,
 *   normalised to `<n>M`. A bare `512` is bytes in MAQET, so it is refused with the fix.
 * - `storage[i].file` defaults to `<name>.<type>` next to the config file (MAQET used /tmp);
 *   `name` defaults to `hdd<i>`; `interface` to `virtio`. Names follow QEMU's id rule because they
 *   become `id=` of the drive.
 * - `binary` containing a `/` and every file path resolve against the config's directory.
 *
 * @example
 * ```ts
 * const config = parseVmConfig("name: web\nmemory: 1G\n", { source: "web.yaml", baseDir: "/srv/vms" });
 * config.memory; // "1G"
 * ```
 */
import { isScalar, LineCounter, parseDocument, visit } from "yaml";
import { MaqetError } from "../errors/maqet-error.ts";
import { parseQmpRules } from "./qmp-rules.ts";
import { findArgumentProblem } from "./render-arguments.ts";
import type {
  Accel,
  DiskDevice,
  DiskFormat,
  DiskInterface,
  VirtfsSecurityModel,
  VirtfsShare,
  VmConfig,
} from "./vm-config.ts";
import { isValidVmName } from "./vm-config.ts";

export interface ParseVmConfigOptions {
  /** File name used in messages ("Fix the value in <source>"). Default: "the config". */
  source?: string;
  /** Absolute directory that relative paths resolve against (the config file's directory). */
  baseDir: string;
  /** Replaces the YAML `name` (the CLI's `--name`). */
  nameOverride?: string;
  /** Receives non-fatal notes (keys accepted for MAQET compatibility that do nothing). */
  onWarning?: (message: string) => void;
}

/** Top-level keys that shape the VM. */
export const VM_CONFIG_KEYS = [
  "accel",
  "append",
  "args",
  "arguments",
  "binary",
  "cpu",
  "display",
  "initrd",
  "kernel",
  "machine",
  "memory",
  "name",
  "qmp",
  "storage",
  "vga",
] as const;

/** MAQET keys accepted and dropped (metadata, or keys MAQET validated but never acted on). */
export const IGNORED_MAQET_KEYS = ["description", "tags", "parameters", "network", "plain_arguments"] as const;

/** Command names a config may not contain (MAQET: "Configuration cannot contain API commands"). */
export const COMMAND_NAMES = [
  "add",
  "apply",
  "cleanup",
  "demo",
  "doctor",
  "info",
  "inspect",
  "ls",
  "rm",
  "snapshot",
  "start",
  "status",
  "stop",
  "storage-info",
] as const;

const STORAGE_KEYS = [
  "backing_file",
  "backing_format",
  "file",
  "interface",
  "name",
  "options",
  "size",
  "type",
] as const;
const VIRTFS_KEYS = ["mount_tag", "name", "options", "path", "readonly", "security_model", "type"] as const;
/** Keys of a VirtFS entry that may sit at the top level (MAQET's docs) or under `options:` (MAQET's code). */
const VIRTFS_OPTION_KEYS = ["mount_tag", "security_model", "readonly", "id"] as const;
const SECURITY_MODELS: readonly VirtfsSecurityModel[] = [
  "passthrough",
  "mapped-xattr",
  "mapped-file",
  "mapped",
  "none",
];
const MOUNT_TAG_PATTERN = /^[A-Za-z0-9_.-]{1,31}$/;
const OPTION_KEY_PATTERN = /^[a-z][a-z0-9_.-]{0,40}$/;
const FORMATS: readonly DiskFormat[] = ["qcow2", "raw"];
const INTERFACES: readonly DiskInterface[] = ["virtio", "sata", "ide", "scsi", "none"];
const ACCELS: readonly Accel[] = ["auto", "kvm", "tcg"];
/** QEMU's id rule (letter first; letters, digits, `-`, `.`, `_`), kept short for node names. */
const STORAGE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;
const SIZE_PATTERN = /^\d+[KMGT]?$/i;
const MEMORY_PATTERN = /^[1-9]\d*[KMGT]$/i;
const MIB = 1024 * 1024;
/** One AHCI controller has six ports. */
const MAX_SATA_DISKS = 6;

/**
 * Parses and validates one VM config; throws `CONFIG_INVALID` (with `details.keyPath`) on the
 * first problem.
 *
 * @example
 * ```ts
 * parseVmConfig("memory: true\n", { baseDir: "/srv" });
 * // throws: Invalid config: 'memory' must be a size like 512M or 4G (got true). Fix the value in the config.
 * ```
 */
export function parseVmConfig(text: string, options: ParseVmConfigOptions): VmConfig {
  return validateVmConfig(readYaml(text, { source: options.source ?? "the config" }), options);
}

/**
 * Validates an already-parsed config value (a YAML mapping, or an object passed to the API) with
 * exactly the rules of {@link parseVmConfig}.
 *
 * @example
 * ```ts
 * validateVmConfig({ name: "web", cpu: 2 }, { source: "the add() argument", baseDir: process.cwd() }).cpu; // 2
 * ```
 */
export function validateVmConfig(value: unknown, options: ParseVmConfigOptions): VmConfig {
  const ctx: ConfigContext = { source: options.source ?? "the config" };
  if (!options.baseDir.startsWith("/")) {
    throw new MaqetError("INVALID_ARGUMENT", `Config base directory must be absolute (got ${show(options.baseDir)}).`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const got = Array.isArray(value) ? "a list" : show(value);
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid config: ${ctx.source} must be a mapping with keys such as name: and memory: at the top level (got ${got}). Rewrite it as key: value lines.`,
      { details: { keyPath: "", source: ctx.source } },
    );
  }
  const raw = value as Record<string, unknown>;
  checkTopLevelKeys(raw, ctx, options.onWarning);

  const config: VmConfig = { accel: "auto", args: [], arguments: [], storage: [] };
  const name = options.nameOverride ?? raw.name;
  if (options.nameOverride !== undefined && !isValidVmName(options.nameOverride)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid VM name ${show(options.nameOverride)}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter, digit or '_', without '..'.`,
      { details: { name: options.nameOverride } },
    );
  }
  if (name !== undefined && name !== null) {
    if (typeof name !== "string" || !isValidVmName(name)) {
      configError(
        ctx,
        "name",
        "1-63 letters, digits, '.', '_' or '-', starting with a letter, digit or '_', without '..' (quote numbers)",
        name,
      );
    }
    config.name = name;
  }

  const binary = optionalString(raw, "binary", ctx);
  if (binary !== undefined)
    config.binary = binary.includes("/") ? resolvePath(options.baseDir, binary, "binary", ctx) : binary;
  const memory = normaliseMemory(raw.memory, ctx);
  if (memory !== undefined) config.memory = memory;
  if (raw.cpu !== undefined && raw.cpu !== null) {
    if (!Number.isInteger(raw.cpu) || (raw.cpu as number) < 1 || (raw.cpu as number) > 256) {
      configError(ctx, "cpu", "an integer from 1 to 256", raw.cpu);
    }
    config.cpu = raw.cpu as number;
  }
  for (const key of ["display", "vga", "machine"] as const) {
    const value = optionalString(raw, key, ctx);
    if (value !== undefined) config[key] = value;
  }
  if (raw.accel !== undefined && raw.accel !== null) {
    if (!ACCELS.includes(raw.accel as Accel)) configError(ctx, "accel", "one of auto, kvm, tcg", raw.accel);
    config.accel = raw.accel as Accel;
  }
  for (const key of ["kernel", "initrd"] as const) {
    const value = optionalString(raw, key, ctx);
    if (value !== undefined) config[key] = resolvePath(options.baseDir, value, key, ctx);
  }
  if (raw.append !== undefined && raw.append !== null) {
    if (typeof raw.append !== "string") configError(ctx, "append", "a kernel command line string", raw.append);
    config.append = raw.append;
  }
  for (const key of ["initrd", "append"] as const) {
    if (config[key] !== undefined && config.kernel === undefined) {
      configError(ctx, key, "used together with 'kernel' (QEMU allows it only with -kernel)", raw[key], "Add kernel:");
    }
  }
  config.args = parseArgs(raw.args, ctx);
  if (raw.arguments !== undefined && raw.arguments !== null) {
    if (!Array.isArray(raw.arguments))
      configError(ctx, "arguments", "a list of options such as - smp: 2", raw.arguments);
    raw.arguments.forEach((item: unknown, i) => {
      const problem = findArgumentProblem(item);
      if (problem) configError(ctx, `arguments[${i}]${problem.path}`, problem.expected, problem.value);
    });
    config.arguments = raw.arguments;
  }
  const storage = parseStorage(raw.storage, options.baseDir, ctx);
  config.storage = storage.disks;
  if (storage.shares.length > 0) config.shares = storage.shares;
  const qmp = parseQmpRules(raw.qmp, { keyPath: "qmp", source: ctx.source });
  if (qmp !== undefined) config.qmp = qmp;
  return config;
}

function readYaml(text: string, ctx: ConfigContext): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ""), {
    version: "1.2",
    schema: "core",
    merge: true,
    uniqueKeys: true,
    prettyErrors: false,
    lineCounter,
  });
  const at = (offset: number | undefined): string => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return `line ${line}, column ${col}`;
  };
  const yamlError = (message: string, offset: number | undefined, fix: string): never => {
    throw new MaqetError("CONFIG_INVALID", `Invalid YAML in ${ctx.source}: ${message} (${at(offset)}). ${fix}`, {
      details: { source: ctx.source, position: at(offset) },
    });
  };
  const error = doc.errors[0];
  if (error !== undefined) yamlError(error.message, error.pos[0], "Fix the YAML syntax.");
  // Custom tags (PyYAML's !!python/object, !!binary...) only warn in the yaml package; we refuse.
  const warning = doc.warnings[0];
  if (warning !== undefined) {
    yamlError(warning.message, warning.pos[0], "maqet reads plain YAML (1.2 core schema); remove the tag.");
  }
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        yamlError(
          "a mapping key must be a plain value, not a list or mapping",
          (pair.key as { range?: number[] }).range?.[0],
          "Fix the key.",
        );
      }
    },
  });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    // The yaml package throws a ReferenceError for alias bombs ("billion laughs").
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid YAML in ${ctx.source}: ${(cause as Error).message}. Use fewer aliases (*name).`,
      { cause, details: { source: ctx.source } },
    );
  }
  return value ?? {}; // an empty file is an empty VM, as MAQET's `add --empty`
}

function checkTopLevelKeys(raw: Record<string, unknown>, ctx: ConfigContext, onWarning?: (m: string) => void): void {
  const keys = Object.keys(raw);
  const commands = keys.filter((k) => (COMMAND_NAMES as readonly string[]).includes(k));
  if (commands.length > 0) {
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid config: ${ctx.source} contains maqet commands (${commands.join(", ")}); a configuration cannot contain commands. Remove them and run them from the CLI, e.g. \`maqet ${commands[0]} <vm>\`.`,
      { details: { keyPath: commands[0], source: ctx.source } },
    );
  }
  for (const key of keys) {
    if ((VM_CONFIG_KEYS as readonly string[]).includes(key)) continue;
    if ((IGNORED_MAQET_KEYS as readonly string[]).includes(key)) {
      checkIgnoredKey(key, raw[key], ctx, onWarning);
      continue;
    }
    const hint = suggest(key, [...VM_CONFIG_KEYS, ...IGNORED_MAQET_KEYS]);
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid config: unknown key '${key}' in ${ctx.source}.${hint ? ` Did you mean '${hint}'?` : ""} Valid keys: ${VM_CONFIG_KEYS.join(", ")} (also accepted and ignored: ${IGNORED_MAQET_KEYS.join(", ")}). Remove or rename it.`,
      { details: { keyPath: key, source: ctx.source } },
    );
  }
}

function checkIgnoredKey(key: string, value: unknown, ctx: ConfigContext, onWarning?: (m: string) => void): void {
  if (value === null || value === undefined) return;
  const isMapping = typeof value === "object" && !Array.isArray(value);
  if (key === "description" && typeof value !== "string") configError(ctx, key, "a string", value);
  if (
    key === "tags" &&
    typeof value !== "string" &&
    !(Array.isArray(value) && value.every((t) => typeof t === "string"))
  ) {
    configError(ctx, key, "a list of strings or a comma-separated string", value);
  }
  if (key === "parameters" && !isMapping) configError(ctx, key, "a mapping", value);
  if (key === "network") {
    if (!isMapping && !Array.isArray(value)) configError(ctx, key, "a mapping or a list", value);
    onWarning?.(
      `'network' in ${ctx.source} has no effect (MAQET never acted on it either). Configure networking with arguments, e.g. - netdev: user,id=n0 and - device: {driver: virtio-net-pci, netdev: n0}.`,
    );
  }
  if (key === "plain_arguments") {
    if (typeof value !== "string" && !Array.isArray(value)) configError(ctx, key, "a string or a list", value);
    onWarning?.(`'plain_arguments' in ${ctx.source} has no effect (legacy MAQET key). Move the words to args:.`);
  }
}

function optionalString(raw: Record<string, unknown>, key: string, ctx: ConfigContext): string | undefined {
  const value = raw[key];
  if (value === undefined || value === null) return undefined;
  return expectString(value, key, ctx);
}

function normaliseMemory(value: unknown, ctx: ConfigContext): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string" && MEMORY_PATTERN.test(value)) return value.toUpperCase();
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) {
    if (value % MIB !== 0) {
      configError(
        ctx,
        "memory",
        "a size like 512M or 4G, or a whole number of MiB in bytes (a bare number is bytes, as in MAQET)",
        value,
      );
    }
    return `${value / MIB}M`;
  }
  return configError(ctx, "memory", "a size like 512M or 4G", value);
}

function parseArgs(value: unknown, ctx: ConfigContext): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) configError(ctx, "args", "a list of QEMU argv words, e.g. [-smp, '2']", value);
  return value.map((word, i) => {
    if (typeof word === "number" && Number.isFinite(word)) return String(word);
    if (typeof word !== "string" || word === "" || word.includes("\0")) {
      configError(ctx, `args[${i}]`, "a non-empty string", word);
    }
    return word;
  });
}

function parseStorage(
  value: unknown,
  baseDir: string,
  ctx: ConfigContext,
): { disks: DiskDevice[]; shares: VirtfsShare[] } {
  if (value === undefined || value === null) return { disks: [], shares: [] };
  if (!Array.isArray(value))
    configError(ctx, "storage", "a list of disks such as - {name: hdd, type: qcow2, size: 10G}", value);
  const byName = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byTag = new Map<string, number>();
  const disks: DiskDevice[] = [];
  const indexOf = new Map<DiskDevice, number>();
  const shares: VirtfsShare[] = [];
  value.forEach((entry: unknown, i) => {
    const at = `storage[${i}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      configError(ctx, at, "a mapping with type: and size: (and optionally name:, file:, interface:)", entry);
    }
    const item = entry as Record<string, unknown>;
    const isShare = item.type === "virtfs";
    const allowed: readonly string[] = isShare ? VIRTFS_KEYS : STORAGE_KEYS;
    for (const key of Object.keys(item)) {
      if (!allowed.includes(key)) {
        const hint = suggest(key, allowed);
        throw new MaqetError(
          "CONFIG_INVALID",
          `Invalid config: unknown key '${at}.${key}' in ${ctx.source}.${hint ? ` Did you mean '${hint}'?` : ""} Valid keys for a ${isShare ? "virtfs" : "disk"} storage entry: ${allowed.join(", ")}. Remove or rename it.`,
          { details: { keyPath: `${at}.${key}`, source: ctx.source } },
        );
      }
    }
    let name = isShare ? `share${i}` : `hdd${i}`;
    if (item.name !== undefined && item.name !== null) {
      if (typeof item.name !== "string" || !STORAGE_NAME_PATTERN.test(item.name) || item.name.startsWith("maqet-")) {
        configError(
          ctx,
          `${at}.name`,
          "a letter followed by up to 30 letters, digits, '.', '_' or '-' (not starting with maqet-)",
          item.name,
        );
      }
      name = item.name;
    }
    const previous = byName.get(name);
    if (previous !== undefined) {
      configError(ctx, `${at}.name`, `unique (storage[${previous}] already uses it)`, name, "Rename one of them");
    }
    byName.set(name, i);
    if (isShare) {
      const share = parseShare(item, name, at, baseDir, ctx);
      const sameTag = byTag.get(share.mountTag);
      if (sameTag !== undefined) {
        configError(ctx, `${at}.mount_tag`, `unique (storage[${sameTag}] already uses it)`, share.mountTag);
      }
      byTag.set(share.mountTag, i);
      shares.push(share);
      return;
    }
    if (!FORMATS.includes(item.type as DiskFormat)) configError(ctx, `${at}.type`, "qcow2, raw or virtfs", item.type);
    const type = item.type as DiskFormat;
    const fileValue =
      item.file === undefined || item.file === null ? `${name}.${type}` : expectString(item.file, `${at}.file`, ctx);
    const file = resolvePath(baseDir, fileValue, `${at}.file`, ctx);
    const sameFile = byFile.get(file);
    if (sameFile !== undefined) configError(ctx, `${at}.file`, `a different file from storage[${sameFile}]`, file);
    byFile.set(file, i);
    const disk: DiskDevice = { name, type, file, interface: "virtio" };
    if (item.size !== undefined && item.size !== null) {
      const size = typeof item.size === "number" && Number.isSafeInteger(item.size) ? String(item.size) : item.size;
      if (typeof size !== "string" || !SIZE_PATTERN.test(size))
        configError(ctx, `${at}.size`, "a size like 10G or 512M", item.size);
      disk.size = size.toUpperCase();
    }
    if (item.interface !== undefined && item.interface !== null) {
      if (!INTERFACES.includes(item.interface as DiskInterface)) {
        configError(ctx, `${at}.interface`, `one of ${INTERFACES.join(", ")}`, item.interface);
      }
      disk.interface = item.interface as DiskInterface;
    }
    if (item.backing_file !== undefined && item.backing_file !== null) {
      // Relative to the image's directory, as qemu-img (and MAQET) read it.
      const backing = expectString(item.backing_file, `${at}.backing_file`, ctx);
      disk.backingFile = resolvePath(dirnameOf(file), backing, `${at}.backing_file`, ctx);
      if (disk.backingFile === file)
        configError(ctx, `${at}.backing_file`, "a different file from the image itself", backing);
    }
    if (item.backing_format !== undefined && item.backing_format !== null) {
      if (!FORMATS.includes(item.backing_format as DiskFormat)) {
        configError(ctx, `${at}.backing_format`, "qcow2 or raw", item.backing_format);
      }
      if (disk.backingFile === undefined) {
        configError(
          ctx,
          `${at}.backing_format`,
          "used together with backing_file",
          item.backing_format,
          "Add backing_file:",
        );
      }
      disk.backingFormat = item.backing_format as DiskFormat;
    }
    if (disk.backingFile !== undefined) {
      if (type !== "qcow2")
        configError(ctx, `${at}.type`, "qcow2 when backing_file is set (raw has no backing file)", type);
      disk.backingFormat ??= "qcow2";
    }
    if (item.options !== undefined && item.options !== null) {
      disk.options = parseOptionMap(
        item.options,
        `${at}.options`,
        ctx,
        "qemu-img create options such as {cluster_size: 64K}",
      );
    }
    disks.push(disk);
    indexOf.set(disk, i);
  });
  const sata = disks.filter((d) => d.interface === "sata");
  if (sata.length > MAX_SATA_DISKS) {
    const index = indexOf.get(sata[MAX_SATA_DISKS] as DiskDevice);
    configError(
      ctx,
      `storage[${index}].interface`,
      `used by at most ${MAX_SATA_DISKS} disks when sata (one AHCI controller)`,
      "sata",
      "Use virtio for the others",
    );
  }
  return { disks, shares };
}

/**
 * A `type: virtfs` entry. MAQET's code read mount_tag, security_model, readonly and id from an
 * `options:` mapping while its docs put them at the top level: both are accepted, and a key given
 * both ways must agree. Other `options:` keys are passed to -virtfs as key=value, as MAQET did.
 */
function parseShare(
  item: Record<string, unknown>,
  name: string,
  at: string,
  baseDir: string,
  ctx: ConfigContext,
): VirtfsShare {
  const options =
    item.options === undefined || item.options === null
      ? {}
      : parseOptionMap(item.options, `${at}.options`, ctx, "a mapping such as {mount_tag: data, readonly: true}");
  const pick = (key: (typeof VIRTFS_OPTION_KEYS)[number]): unknown => {
    const top = key === "id" ? undefined : item[key];
    const nested = options[key];
    if (top !== undefined && top !== null && nested !== undefined && String(nested) !== String(top)) {
      configError(ctx, `${at}.options.${key}`, `the same as ${at}.${key} (${show(top)}) or left out`, nested);
    }
    return top ?? nested;
  };
  if (item.path === undefined || item.path === null) {
    configError(ctx, `${at}.path`, "the host directory to share (e.g. path: ./share)", item.path, "Add path:");
  }
  const path = resolvePath(baseDir, expectString(item.path, `${at}.path`, ctx), `${at}.path`, ctx);
  // The one rule that needs no filesystem: the whole host is never shared. Real paths (symlinks)
  // and system directories are checked before QEMU starts.
  if (path === "/") {
    throw new MaqetError(
      "PATH_REFUSED",
      `Refusing VirtFS share '${name}' of / (${at}.path in ${ctx.source}): sharing the root directory exposes the whole host. Share a dedicated directory instead, e.g. path: ./share.`,
      { details: { keyPath: `${at}.path`, path, rule: "/" } },
    );
  }
  const mountTag = pick("mount_tag") ?? name;
  if (typeof mountTag !== "string" || !MOUNT_TAG_PATTERN.test(mountTag)) {
    configError(ctx, `${at}.mount_tag`, "1-31 letters, digits, '.', '_' or '-'", mountTag);
  }
  const id = pick("id") ?? name;
  if (typeof id !== "string" || !STORAGE_NAME_PATTERN.test(id) || id.startsWith("maqet-")) {
    configError(ctx, `${at}.options.id`, "a letter followed by up to 30 letters, digits, '.', '_' or '-'", id);
  }
  const securityModel = pick("security_model") ?? "passthrough";
  if (!SECURITY_MODELS.includes(securityModel as VirtfsSecurityModel)) {
    configError(ctx, `${at}.security_model`, `one of ${SECURITY_MODELS.join(", ")}`, securityModel);
  }
  const readonlyValue = pick("readonly") ?? false;
  const readonly = readonlyValue === true || readonlyValue === "on" || readonlyValue === "true";
  if (!readonly && readonlyValue !== false && readonlyValue !== "off" && readonlyValue !== "false") {
    configError(ctx, `${at}.readonly`, "true or false", readonlyValue);
  }
  const share: VirtfsShare = {
    name,
    path,
    mountTag,
    id,
    securityModel: securityModel as VirtfsSecurityModel,
    readonly,
  };
  const extra: Record<string, string> = {};
  for (const [key, v] of Object.entries(options)) {
    if ((VIRTFS_OPTION_KEYS as readonly string[]).includes(key)) continue;
    if (["path", "local", "fsdriver"].includes(key)) {
      configError(ctx, `${at}.options.${key}`, "left out (maqet sets it)", v);
    }
    extra[key] = v === true ? "on" : v === false ? "off" : String(v);
  }
  if (Object.keys(extra).length > 0) share.extra = extra;
  return share;
}

/** A flat mapping of option names to scalars (strings without newlines, numbers, booleans). */
function parseOptionMap(
  value: unknown,
  keyPath: string,
  ctx: ConfigContext,
  expected: string,
): Record<string, string | number | boolean> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) configError(ctx, keyPath, expected, value);
  const out: Record<string, string | number | boolean> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (!OPTION_KEY_PATTERN.test(key)) configError(ctx, `${keyPath}.${key}`, "a lower-case option name", key);
    const ok =
      typeof v === "boolean" ||
      (typeof v === "number" && Number.isFinite(v)) ||
      (typeof v === "string" && v !== "" && !/[\0\n\r]/.test(v));
    if (!ok) configError(ctx, `${keyPath}.${key}`, "a string, number or true/false", v);
    out[key] = v as string | number | boolean;
  }
  return out;
}

function dirnameOf(path: string): string {
  const cut = path.lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
}

// ---------------------------------------------------------------- helpers

interface ConfigContext {
  source: string;
}

/** Throws CONFIG_INVALID: "Invalid config: 'key' must be X (got V). Fix the value in F." */
function configError(ctx: ConfigContext, keyPath: string, expected: string, value: unknown, fix?: string): never {
  const action = fix ? `${fix} in ${ctx.source}.` : `Fix the value in ${ctx.source}.`;
  throw new MaqetError(
    "CONFIG_INVALID",
    `Invalid config: '${keyPath}' must be ${expected} (got ${show(value)}). ${action}`,
    {
      details: { keyPath, source: ctx.source, value },
    },
  );
}

function expectString(value: unknown, keyPath: string, ctx: ConfigContext): string {
  if (typeof value !== "string" || value.trim() === "" || /[\0\n\r]/.test(value)) {
    configError(ctx, keyPath, "a non-empty single-line string", value);
  }
  return value;
}

/** A value as it appears in messages: strings quoted, long values cut. */
function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * POSIX resolve without node:path (this module stays runtime-neutral). `~` is refused rather than
 * silently becoming a directory named "~".
 */
function resolvePath(baseDir: string, path: string, keyPath: string, ctx: ConfigContext): string {
  if (path.startsWith("~"))
    configError(ctx, keyPath, "an absolute path or one relative to the config file ('~' is not expanded)", path);
  const parts: string[] = [];
  for (const part of `${path.startsWith("/") ? "" : baseDir}/${path}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** The closest candidate within two edits, for "Did you mean" hints. */
function suggest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}
