/**
 * Finds and reads the global config: `$XDG_CONFIG_HOME/maqet/config.yaml`, else
 * `$HOME/.config/maqet/config.yaml`. A missing file is no policy (`{}`); a file that exists but
 * cannot be read or is invalid is an error, so a broken policy never means "allow everything".
 *
 * @example
 * ```ts
 * const { config, path } = await loadGlobalConfig(process.env);
 * createMaqet({ qmpPolicy: config.qmp });
 * ```
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { type GlobalConfig, parseGlobalConfig } from "../config/parse-global-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { DirsEnv } from "./default-dirs.ts";

/** A global config is a few lines; anything bigger is a wrong file. */
const MAX_BYTES = 1024 * 1024;

/**
 * Where the global config is looked for.
 *
 * @example
 * ```ts
 * globalConfigPath({ XDG_CONFIG_HOME: "/etc/xdg" }); // "/etc/xdg/maqet/config.yaml"
 * ```
 */
export function globalConfigPath(env: DirsEnv): string {
  // `--config-dir` / MAQET's `--maqet-config-dir` (the CLI sets it): the directory itself.
  const dir = env.MAQET_CONFIG_DIR;
  if (dir !== undefined && dir !== "") return join(resolve(dir), "config.yaml");
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg !== undefined && xdg !== "" && isAbsolute(xdg)) return join(xdg, "maqet", "config.yaml");
  const home = env.HOME !== undefined && isAbsolute(env.HOME) ? env.HOME : homedir();
  return join(home, ".config", "maqet", "config.yaml");
}

/**
 * Loads the global config; `{}` (and `exists: false`) when the file does not exist.
 *
 * @example
 * ```ts
 * (await loadGlobalConfig({ HOME: "/home/ada" })).config.qmp?.deny;
 * ```
 */
export async function loadGlobalConfig(env: DirsEnv): Promise<{ config: GlobalConfig; path: string; exists: boolean }> {
  const path = globalConfigPath(env);
  let bytes: Buffer;
  try {
    // Read at each QMP call (an edited policy applies at once), so read in place: a few lines,
    // where readFile's trip through libuv's thread pool cost the agent's `qmp` 5-50 ms at load 20.
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { config: {}, path, exists: false };
    throw new MaqetError(
      "CONFIG_INVALID",
      `The global config ${path} cannot be read (${code ?? String(error)}). Fix its permissions or remove it.`,
      { cause: error, details: { path } },
    );
  }
  if (bytes.length > MAX_BYTES) {
    throw new MaqetError("CONFIG_INVALID", `The global config ${path} is over ${MAX_BYTES} bytes; check the file.`, {
      details: { path },
    });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new MaqetError("CONFIG_INVALID", `The global config ${path} is not UTF-8 text. Save it as UTF-8 YAML.`, {
      cause: error,
      details: { path },
    });
  }
  return { config: parseGlobalConfig(text, { source: path }), path, exists: true };
}
