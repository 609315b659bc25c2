/**
 * Several VM config files (and MAQET's `--memory/--cpu/--binary/--enable-kvm` flags) read and
 * merged into one validated config, as MAQET's `add a.yaml b.yaml` / `--vm-config F…` does:
 * each file's relative paths mean its own directory; the merge rules are in
 * src/config/merge-configs.ts; the result is validated once, as a whole.
 *
 * @example
 * ```ts
 * const { config, paths } = await loadMergedVmConfig(["base.yaml", "web.yaml"], { overrides: { memory: "8G" } });
 * ```
 */
import { dirname, resolve } from "node:path";
import {
  type ConfigLayer,
  type ConfigOverrides,
  mergeConfigLayers,
  mergeConfigValues,
  overridesLayer,
  resolveLayerPaths,
} from "../config/merge-configs.ts";
import { readYaml, validateVmConfig } from "../config/parse-vm-config.ts";
import type { VmConfig } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { readConfigText } from "./load-vm-config.ts";

export interface LoadMergedOptions {
  overrides?: ConfigOverrides;
  /** Replaces the merged `name` (the CLI's `--name`). */
  nameOverride?: string;
  onWarning?: (message: string) => void;
  /** Directory relative file names (and a relative `--binary`) resolve against. Default: the process's. */
  cwd?: string;
}

export interface LoadedLayers {
  /** The files, absolute, in merge order. */
  paths: string[];
  /** The merged mapping before validation (paths absolute). */
  raw: Record<string, unknown>;
  /** Directory a disk without `file:` goes to: the first file's, else the current directory. */
  baseDir: string;
  /** How messages name the merged config, e.g. "/srv/base.yaml + /srv/web.yaml". */
  source: string;
}

/**
 * Reads and merges files and flags, without validating (apply validates the result against the
 * VM's current config). At least one file or one flag.
 *
 * @example
 * ```ts
 * const { raw } = await readConfigLayers(["override.yaml"], { overrides: { cpu: 4 } });
 * ```
 */
export async function readConfigLayers(
  files: readonly string[],
  options: LoadMergedOptions = {},
): Promise<LoadedLayers> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const paths = files.map((f) => resolve(cwd, f));
  const layers: ConfigLayer[] = [];
  for (const [i, path] of paths.entries()) {
    const value = readYaml(await readConfigText(path, files[i]!), { source: path }, options.onWarning);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new MaqetError(
        "CONFIG_INVALID",
        `Invalid config: ${path} must be a mapping with keys such as name: and memory: at the top level. Rewrite it as key: value lines.`,
        { details: { keyPath: "", source: path } },
      );
    }
    layers.push({ value: value as Record<string, unknown>, baseDir: dirname(path) });
  }
  let raw = mergeConfigLayers(layers);
  if (options.overrides !== undefined) {
    raw = mergeConfigValues(raw, resolveLayerPaths(overridesLayer(options.overrides, raw), cwd));
  }
  const source = paths.length === 0 ? "the command-line flags" : paths.join(" + ");
  return { paths, raw, baseDir: paths[0] === undefined ? cwd : dirname(paths[0]), source };
}

/**
 * Files merged left to right, flags on top, validated as one config.
 *
 * @example
 * ```ts
 * const { config } = await loadMergedVmConfig(["base.yaml", "overrides.yaml"]);
 * ```
 */
export async function loadMergedVmConfig(
  files: readonly string[],
  options: LoadMergedOptions = {},
): Promise<{ config: VmConfig; paths: string[] }> {
  const layers = await readConfigLayers(files, options);
  const config = validateVmConfig(layers.raw, {
    source: layers.source,
    baseDir: layers.baseDir,
    ...(options.nameOverride === undefined ? {} : { nameOverride: options.nameOverride }),
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  });
  return { config, paths: layers.paths };
}
