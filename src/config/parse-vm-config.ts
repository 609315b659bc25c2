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
import { MaqetError } from "../errors/maqet-error.ts";
import { checkAcceleratorChoice } from "./accelerator-choice.ts";
import { type ConfigContext, configError, expectString, resolvePath, show, suggest } from "./config-errors.ts";
import { parseCloudInit } from "./parse-cloud-init.ts";
import { findNetworkConflict, networkConflictError, parsePorts } from "./parse-ports.ts";
import { parseStorage } from "./parse-storage-config.ts";
import { parseQmpRules } from "./qmp-rules.ts";
import { readYaml } from "./read-yaml.ts";
import { findArgumentProblem, renderArgumentItem } from "./render-arguments.ts";
import type { Accel, VmConfig } from "./vm-config.ts";
import { isValidVmName } from "./vm-config.ts";

export { readYaml };

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
  "cloud-init",
  "cpu",
  "display",
  "ha",
  "initrd",
  "kernel",
  "log_file",
  "machine",
  "memory",
  "name",
  "ports",
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

const ACCELS: readonly Accel[] = ["auto", "kvm", "tcg"];
const MEMORY_PATTERN = /^[1-9]\d*[KMGT]$/i;
const MIB = 1024 * 1024;

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
  return validateVmConfig(readYaml(text, { source: options.source ?? "the config" }, options.onWarning), options);
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
  const logFile = optionalString(raw, "log_file", ctx);
  if (logFile !== undefined) config.logFile = resolvePath(options.baseDir, logFile, "log_file", ctx);
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
  const ports = parsePorts(raw.ports, ctx);
  if (ports !== undefined) {
    const conflict = findNetworkConflict(userWords(config));
    if (conflict !== undefined) networkConflictError(ctx, conflict);
    config.ports = ports;
  }
  const cloudInit = parseCloudInit(raw["cloud-init"], ctx);
  if (cloudInit !== undefined) config.cloudInit = cloudInit;
  const qmp = parseQmpRules(raw.qmp, { keyPath: "qmp", source: ctx.source });
  if (qmp !== undefined) config.qmp = qmp;
  if (raw.ha !== undefined && raw.ha !== null) {
    if (raw.ha !== "restart" && raw.ha !== "none") {
      configError(ctx, "ha", "restart or none (docs/cluster.md)", raw.ha);
    }
    config.ha = raw.ha;
  }
  checkAcceleratorChoice(config, ctx.source);
  return config;
}

/** The user's own argv words (rendered `arguments`, then `args`), each with its key path. */
function userWords(config: VmConfig): { word: string; at: string }[] {
  return [
    ...config.arguments.flatMap((item, i) => renderArgumentItem(item).map((word) => ({ word, at: `arguments[${i}]` }))),
    ...config.args.map((word, i) => ({ word, at: `args[${i}]` })),
  ];
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
