/**
 * Changing a VM's config in place, as MAQET's `apply`: the VM keeps its name, its id and its
 * stream; the change is one `vm.reconfigured` fact (before → after, what changed, who, why).
 * A running VM is refused unless `restart` is set (then it is stopped, changed and started again).
 * `apply` on a VM that does not exist defines it, as MAQET's `apply` creates a missing VM.
 *
 * @example
 * ```ts
 * await maqet.apply("web", { files: ["bigger.yaml"], overrides: { memory: "8G" }, reason: "load test" });
 * const text = await maqet.configYaml("web");
 * await maqet.replaceConfig("web", text.replace("cpu: 2", "cpu: 4"));
 * ```
 */
import { resolve } from "node:path";
import type { VmActor } from "../../actors/vm-actor.ts";
import { readConfigLayers } from "../../adapters/load-vm-configs.ts";
import { assertConfigDiskPaths } from "../../adapters/path-safety.ts";
import {
  applyConfigChange,
  type ConfigOverrides,
  mergeConfigValues,
  overridesLayer,
  resolveLayerPaths,
} from "../../config/merge-configs.ts";
import { parseVmConfig, validateVmConfig } from "../../config/parse-vm-config.ts";
import type { VmConfig } from "../../config/vm-config.ts";
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import { vmEvent } from "../../events/vm-events.ts";
import { vmConfigToRaw, vmConfigToYaml } from "../config-yaml.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { toVmStatus, type VmStatus } from "../vm-status.ts";

export interface ApplyOptions {
  /** Config files merged over the VM's config, left to right (MAQET's rules, see docs/maqet-compat.md). */
  files?: string[];
  /** A config object merged after the files (the same keys as the YAML). */
  config?: Record<string, unknown>;
  /** MAQET's `--memory/--cpu/--binary/--enable-kvm`, applied last. */
  overrides?: ConfigOverrides;
  /** Stop a running VM, change it and start it again (otherwise a running VM is refused). */
  restart?: boolean;
  /** With `restart`: how long the guest gets to power off before quit/SIGTERM/SIGKILL. Default 30 s. */
  stopTimeoutMs?: number;
  /** Why (recorded in `vm.reconfigured`); default: what was applied. */
  reason?: string;
  /** Directory relative file names resolve against. Default: the process's. */
  cwd?: string;
}

export interface ReplaceConfigOptions {
  restart?: boolean;
  /** With `restart`: how long the guest gets to power off. Default 30 s. */
  stopTimeoutMs?: number;
  reason?: string;
  /** Directory relative paths in the text resolve against. Default: the VM's config file's, else the process's. */
  baseDir?: string;
  via?: "edit" | "library";
}

export interface ReconfigureResult {
  vm: VmStatus;
  /** Top-level config keys that changed (empty: nothing to do, nothing recorded). */
  changed: string[];
  /** True when `apply` defined the VM (it did not exist). */
  created: boolean;
  /** True when a running VM was stopped and started again (`restart`). */
  restarted: boolean;
}

export interface ReconfigureOps {
  /** Merges files, an object and flags over a stopped VM's config; records `vm.reconfigured`. */
  apply(name: string, options?: ApplyOptions): Promise<ReconfigureResult>;
  /** A VM's config as YAML, as `maqet edit` shows it. */
  configYaml(name: string): Promise<string>;
  /** Replaces a stopped VM's whole config with this YAML text (`maqet edit`); records `vm.reconfigured`. */
  replaceConfig(name: string, yaml: string, options?: ReplaceConfigOptions): Promise<ReconfigureResult>;
}

export function reconfigureOps(ctx: MaqetContext): ReconfigureOps {
  const warn = ctx.options.onWarning;
  return {
    apply: async (name, options = {}) => {
      const files = options.files ?? [];
      const cwd = resolve(options.cwd ?? process.cwd());
      // Read and checked before the VM is touched: a bad file records nothing.
      const layers = await readConfigLayers(files, { cwd });
      let raw = layers.raw;
      if (options.config !== undefined) raw = mergeConfigValues(raw, resolveLayerPaths(options.config, cwd));
      if (files.length === 0 && options.config === undefined && !hasOverrides(options.overrides)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Nothing to apply to '${name}': give config files (maqet apply ${name} new.yaml) or flags such as --memory 4G.`,
        );
      }
      const reason = options.reason ?? describeApply(files, options.overrides);
      const existing = await ctx
        .operation((_rt, orchestrator) => orchestrator.find(name))
        .catch((error: unknown) => {
          if (isMaqetError(error, "VM_NOT_FOUND")) return undefined;
          throw error;
        });
      if (existing === undefined) return createByApply(ctx, name, raw, layers.baseDir, layers.source, options, cwd);
      const source = layers.source;
      return reconfigure(ctx, name, restartOf(options), (current) => {
        const probe = { arguments: [...current.arguments, ...(Array.isArray(raw.arguments) ? raw.arguments : [])] };
        const withFlags = hasOverrides(options.overrides)
          ? mergeConfigValues(raw, resolveLayerPaths(overridesLayer(options.overrides!, probe), cwd))
          : raw;
        if (typeof withFlags.name === "string" && withFlags.name !== current.name) {
          warn?.(`'name: ${withFlags.name}' in ${source} is ignored: apply keeps the VM's name ('${current.name}').`);
        }
        const change = validateVmConfig(withFlags, { source, baseDir: layers.baseDir, onWarning: warn });
        const defaults = validateVmConfig({}, { baseDir: "/" });
        const merged = applyConfigChange(current, change, Object.keys(withFlags), defaults);
        return {
          after: revalidate(merged, source),
          via: "apply",
          reason,
          ...(layers.paths.length > 0 ? { configPaths: layers.paths } : {}),
        };
      });
    },
    configYaml: (name) =>
      ctx.operation(async (_rt, orchestrator) => {
        const view = await orchestrator.find(name);
        return vmConfigToYaml(
          view.config,
          `# maqet config of VM '${view.name}' (id ${view.vmId}). Saving applies it (vm.reconfigured).\n`,
        );
      }),
    replaceConfig: (name, yaml, options = {}) =>
      reconfigure(ctx, name, restartOf(options), (current, view) => {
        const source = `the edited config of '${view.name}'`;
        const baseDir = options.baseDir ?? (view.configPath ? dirnameOf(view.configPath) : process.cwd());
        const parsed = parseVmConfig(yaml, { source, baseDir, onWarning: warn });
        if (parsed.name !== undefined && parsed.name !== current.name) {
          throw new MaqetError(
            "CONFIG_INVALID",
            `Invalid config: ${source} renames the VM to '${parsed.name}'; a VM keeps its name. Put back 'name: ${current.name}' (to rename, add a copy with \`maqet add --name\` and remove this one).`,
            { details: { keyPath: "name" } },
          );
        }
        return {
          after: { ...parsed, name: current.name } as VmConfig,
          via: options.via ?? "library",
          reason: options.reason ?? (options.via === "edit" ? "maqet edit" : "replaceConfig"),
        };
      }),
  };
}

interface Change {
  after: VmConfig;
  via: "apply" | "edit" | "library";
  reason: string;
  configPaths?: string[];
}

/** The one path every reconfiguration takes: refuse or stop a running VM, record, restart. */
function restartOf(options: { restart?: boolean; stopTimeoutMs?: number }): Restart {
  return options.restart === true ? { timeoutMs: options.stopTimeoutMs } : false;
}

type Restart = false | { timeoutMs?: number };

async function reconfigure(
  ctx: MaqetContext,
  name: string,
  restart: Restart,
  compute: (current: VmConfig, view: VmActor["view"]) => Change,
): Promise<ReconfigureResult> {
  return ctx.withVm(name, async (vm) => {
    let restarted = false;
    if (vm.view.status !== "stopped") {
      if (restart === false) throw runningError(vm.view.name, vm.view.status);
      await vm.stop(restart.timeoutMs === undefined ? {} : { timeoutMs: restart.timeoutMs });
      restarted = true;
    }
    const changed = await vm.exclusive(async (access) => {
      if (access.view.status !== "stopped") throw runningError(access.view.name, access.view.status);
      const current = access.view.config;
      const change = compute(current, access.view);
      const keys = changedKeys(current, change.after);
      if (keys.length === 0) return keys;
      await assertConfigDiskPaths(change.after);
      await access.record([
        vmEvent("vm.reconfigured", {
          before: current,
          after: change.after,
          changed: keys,
          via: change.via,
          reason: change.reason,
          ...(change.configPaths ? { configPaths: change.configPaths } : {}),
        }),
      ]);
      return keys;
    });
    if (restarted) await vm.start();
    return { vm: toVmStatus(vm.view), changed, created: false, restarted };
  });
}

async function createByApply(
  ctx: MaqetContext,
  name: string,
  raw: Record<string, unknown>,
  baseDir: string,
  source: string,
  options: ApplyOptions,
  cwd: string,
): Promise<ReconfigureResult> {
  const withFlags = hasOverrides(options.overrides)
    ? mergeConfigValues(raw, resolveLayerPaths(overridesLayer(options.overrides!, raw), cwd))
    : raw;
  const config = validateVmConfig(withFlags, { source, baseDir, nameOverride: name, onWarning: ctx.options.onWarning });
  await assertConfigDiskPaths(config);
  return ctx.operation(async (_rt, orchestrator) => {
    const view = await orchestrator.define(config, { name });
    return { vm: toVmStatus(view), changed: Object.keys(withFlags), created: true, restarted: false };
  });
}

/** The merged config validated as a whole (a merge can break a rule no single file broke). */
function revalidate(config: VmConfig, source: string): VmConfig {
  const name = config.name;
  const again = validateVmConfig(vmConfigToRaw(config), { source: `${source} (merged)`, baseDir: "/" });
  return name === undefined ? again : { ...again, name };
}

function changedKeys(before: VmConfig, after: VmConfig): string[] {
  const b = before as unknown as Record<string, unknown>;
  const a = after as unknown as Record<string, unknown>;
  const keys = new Set([...Object.keys(b), ...Object.keys(a)]);
  return [...keys].filter((k) => canonical(b[k]) !== canonical(a[k])).sort();
}

/** JSON with mapping keys sorted: a config read back from jsonb has its keys in another order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
        )
      : v,
  );
}

function runningError(name: string, state: string): MaqetError {
  return new MaqetError(
    "VM_INVALID_STATE",
    `Cannot change the config of VM '${name}': it is ${state}, and a config applies to a stopped VM. Stop it first (\`maqet stop ${name}\`), or add --restart to stop it, apply the change and start it again.`,
    { details: { vm: name, state } },
  );
}

function hasOverrides(o: ConfigOverrides | undefined): boolean {
  return o !== undefined && Object.values(o).some((v) => v !== undefined && v !== false);
}

function describeApply(files: readonly string[], o: ConfigOverrides | undefined): string {
  const flags = [
    o?.memory !== undefined ? `--memory ${o.memory}` : "",
    o?.cpu !== undefined ? `--cpu ${o.cpu}` : "",
    o?.binary !== undefined ? `--binary ${o.binary}` : "",
    o?.enableKvm ? "--enable-kvm" : "",
  ].filter(Boolean);
  return ["maqet apply", ...files, ...flags].join(" ");
}

function dirnameOf(path: string): string {
  const cut = path.lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
}
