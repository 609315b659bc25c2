/**
 * Lifecycle operations of the facade: define, start, stop, remove, list, status.
 *
 * @example
 * ```ts
 * const ops = lifecycleOps(ctx);
 * await ops.start("web", { timeoutMs: 10_000 });
 * ```
 */

import { orderLostNote } from "../../actors/launch-qemu.ts";
import type { ScopedVm } from "../../actors/operation-scope.ts";
import type { VmOutcome } from "../../actors/vm-machine.ts";
import { parseWaitCondition, type WaitCondition } from "../../actors/wait-condition.ts";
import { loadVmConfig } from "../../adapters/load-vm-config.ts";
import { assertConfigDiskPaths } from "../../adapters/path-safety.ts";
import type { PlacementOptions } from "../cluster-options.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { isStoreUnreachable, stopWhileStoreDown } from "../store-down.ts";
import { toVmStatus, type VmStatus } from "../vm-status.ts";

export interface AddOptions extends PlacementOptions {
  /** VM name; overrides `name:` in the config. */
  name?: string;
  /**
   * The config file's YAML, read by the caller (a remote client): the path is then not read,
   * only used for the relative paths inside and recorded. See docs/agent.md.
   */
  text?: string;
  /** Where an object config's relative paths resolve (default: the current directory). */
  baseDir?: string;
}

export interface StartOptions {
  /** How long the whole start (launch and wait condition) may take. Default 30 s. */
  timeoutMs?: number;
  /**
   * What to wait for: `qmp` (default), `process`, `file:/path`, `serial:REGEX`, or a parsed
   * {@link WaitCondition}. See docs/lifecycle.md.
   */
  waitFor?: string | WaitCondition;
}

export interface StopVmOptions {
  /** Skip the graceful steps: SIGKILL. */
  force?: boolean;
  /** How long the guest gets to power off before `quit`, SIGTERM, SIGKILL. Default 30 s. */
  timeoutMs?: number;
}

/** A config given as an object: the same keys as the YAML file. */
export type VmConfigInput = Record<string, unknown>;

export interface LifecycleOps {
  add(configOrPath: string | VmConfigInput, options?: AddOptions): Promise<VmStatus>;
  start(name: string, options?: StartOptions): Promise<VmStatus>;
  /** Stops the VM; `alreadyStopped` is true when there was nothing to do. */
  stop(name: string, options?: StopVmOptions): Promise<VmStatus & { alreadyStopped: boolean }>;
  remove(name: string, options?: StopVmOptions): Promise<void>;
  list(): Promise<VmStatus[]>;
  status(name: string): Promise<VmStatus>;
  /** Pauses the guest (QMP stop); `changed` is false when it was already paused. */
  pause(name: string): Promise<VmStatus & { changed: boolean }>;
  /** Resumes a paused guest (QMP cont); `changed` is false when it was running. */
  resume(name: string): Promise<VmStatus & { changed: boolean }>;
  /** Resets the machine (QMP system_reset), like pressing the reset button. */
  reset(name: string): Promise<VmStatus & { changed: boolean }>;
}

export function lifecycleOps(ctx: MaqetContext): LifecycleOps {
  return {
    add: async (configOrPath, addOptions = {}) => {
      // Validated before the store is even opened: a bad file costs nothing and records nothing.
      const loaded = await loadVmConfig(configOrPath, {
        nameOverride: addOptions.name,
        onWarning: ctx.options.onWarning,
        ...(addOptions.text === undefined ? {} : { text: addOptions.text }),
        ...(addOptions.baseDir === undefined ? {} : { cwd: addOptions.baseDir }),
      });
      // A disk start would refuse to create (a system directory) is refused now, not at start.
      await assertConfigDiskPaths(loaded.config);
      return ctx.operation(async (_rt, orchestrator) => {
        const name = addOptions.name ?? loaded.config.name ?? `vm-${crypto.randomUUID().slice(0, 8)}`;
        const view = await orchestrator.define(loaded.config, { name, configPath: loaded.path });
        return toVmStatus(view);
      });
    },
    start: (name, startOptions = {}) => {
      // Parsed before the VM is touched: a bad condition records nothing.
      const waitFor =
        typeof startOptions.waitFor === "string" ? parseWaitCondition(startOptions.waitFor) : startOptions.waitFor;
      return ctx.withVm(name, async (vm) => {
        const lost = vm.view.config.argumentOrderLost;
        if (lost !== undefined && lost.length > 0) ctx.options.onWarning?.(orderLostNote(vm.view.name, lost));
        await vm.start({ timeoutMs: startOptions.timeoutMs, waitFor });
        return toVmStatus(vm.view);
      });
    },
    stop: async (name, stopOptions = {}) => {
      try {
        return await ctx.withVm(name, async (vm) => {
          const outcome = await vm.stop(stopOptions);
          return { ...toVmStatus(vm.view), alreadyStopped: outcome.noop === true };
        });
      } catch (error) {
        // The PostgreSQL server is down: --force still stops the VM; its facts wait in a spool.
        if (stopOptions.force !== true || !isStoreUnreachable(error, ctx.options)) throw error;
        return stopWhileStoreDown(ctx.options, name, error);
      }
    },
    remove: (name, removeOptions = {}) =>
      ctx.withVm(name, async (vm, rt) => {
        await vm.remove(removeOptions);
        // The VM's SSH key pair goes with it (a removed VM is never started again).
        await rt.ports.guest?.keys.forget(vm.view.vmId);
      }),
    pause: (name) => runState(ctx, name, (vm) => vm.pause()),
    resume: (name) => runState(ctx, name, (vm) => vm.resume()),
    reset: (name) => runState(ctx, name, (vm) => vm.reset()),
    list: () => ctx.operation(async (_rt, orchestrator) => (await orchestrator.liveViews()).map(toVmStatus)),
    status: (name) => ctx.operation(async (_rt, orchestrator) => toVmStatus(await orchestrator.liveView(name))),
  };
}

function runState(
  ctx: MaqetContext,
  name: string,
  change: (vm: ScopedVm) => Promise<VmOutcome>,
): Promise<VmStatus & { changed: boolean }> {
  return ctx.withVm(name, async (vm) => {
    const outcome = await change(vm);
    return { ...toVmStatus(vm.view), changed: outcome.noop !== true };
  });
}
