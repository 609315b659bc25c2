/**
 * Reads a VM YAML file (at most 10 MB, UTF-8) and validates it with {@link parseVmConfig};
 * relative paths inside it resolve against the file's directory. {@link loadVmConfig} also takes
 * a config object (the API's `add({...})`), validated by the same rules.
 *
 * @example
 * ```ts
 * const config = await loadVmConfigFile("examples/demo.yaml");
 * const { config: web, path } = await loadVmConfig({ name: "web", memory: "1G" });
 * ```
 */
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseVmConfig, validateVmConfig } from "../config/parse-vm-config.ts";
import type { VmConfig } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";

/** MAQET's limit for a config file. */
export const MAX_CONFIG_FILE_BYTES = 10 * 1024 * 1024;

export interface LoadVmConfigOptions {
  /** Replaces the YAML `name` (the CLI's `--name`). */
  nameOverride?: string;
  /** Receives non-fatal notes (e.g. a MAQET `network:` key that has no effect). */
  onWarning?: (message: string) => void;
  /** Directory relative file names (and an object config's relative paths) resolve against. */
  cwd?: string;
  /**
   * The file's content, already read by the caller (the agent receives it in the request body,
   * since it may not see the caller's files): the path is then not read, only used for relative
   * paths inside and recorded as where the config came from.
   */
  text?: string;
}

export interface LoadedVmConfig {
  config: VmConfig;
  /** Absolute path of the file it came from; absent for an object config. */
  path?: string;
}

/**
 * Loads and validates one YAML file. `CONFIG_NOT_FOUND` names the absolute path when it is
 * missing or unreadable; `CONFIG_INVALID` for anything wrong inside.
 *
 * @example
 * ```ts
 * const config = await loadVmConfigFile("/srv/vms/web.yaml", { nameOverride: "web-2" });
 * ```
 */
export async function loadVmConfigFile(path: string, options: LoadVmConfigOptions = {}): Promise<VmConfig> {
  const file = resolve(options.cwd ?? process.cwd(), path);
  const text = options.text ?? (await readConfigText(file, path));
  return parseVmConfig(text, {
    source: file,
    baseDir: dirname(file),
    ...(options.nameOverride === undefined ? {} : { nameOverride: options.nameOverride }),
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  });
}

/**
 * A file path or a config object, validated the same way. An object's relative paths resolve
 * against `options.cwd` (default: the current directory).
 *
 * @example
 * ```ts
 * const { config, path } = await loadVmConfig("web.yaml");
 * ```
 */
export async function loadVmConfig(
  configOrPath: string | Record<string, unknown>,
  options: LoadVmConfigOptions = {},
): Promise<LoadedVmConfig> {
  if (typeof configOrPath === "string") {
    const path = resolve(options.cwd ?? process.cwd(), configOrPath);
    return { config: await loadVmConfigFile(path, options), path };
  }
  const config = validateVmConfig(configOrPath, {
    source: "the config object",
    baseDir: resolve(options.cwd ?? process.cwd()),
    ...(options.nameOverride === undefined ? {} : { nameOverride: options.nameOverride }),
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  });
  return { config };
}

/** A config file's text: CONFIG_NOT_FOUND when missing, CONFIG_INVALID when not a regular UTF-8 file under the limit. */
export async function readConfigText(file: string, given: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: opening a FIFO must not hang; the regular-file check below then refuses it.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" || code === "ENOTDIR"
        ? "Configuration file not found"
        : `Configuration file cannot be read (${code ?? "error"})`;
    throw new MaqetError(
      "CONFIG_NOT_FOUND",
      `${reason}: ${file}. Check the path${given === file ? "" : ` ('${given}')`}.`,
      {
        cause: error,
        details: { path: file },
      },
    );
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new MaqetError(
        "CONFIG_INVALID",
        `Invalid config: ${file} is not a regular file. Pass the path of a YAML file.`,
        {
          details: { path: file },
        },
      );
    }
    if (stat.size > MAX_CONFIG_FILE_BYTES) {
      throw new MaqetError(
        "CONFIG_INVALID",
        `Invalid config: ${file} is ${stat.size} bytes, over the ${MAX_CONFIG_FILE_BYTES}-byte limit. A VM config is a few lines of YAML; check the path.`,
        { details: { path: file, size: stat.size } },
      );
    }
    const bytes = await handle.readFile();
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (error) {
      throw new MaqetError("CONFIG_INVALID", `Invalid config: ${file} is not UTF-8 text. Save it as UTF-8 YAML.`, {
        cause: error,
        details: { path: file },
      });
    }
  } finally {
    await handle.close();
  }
}
