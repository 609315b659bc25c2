/**
 * What every group of facade operations shares: the lazily opened runtime, the orchestrator,
 * and the rule that each operation gets a fresh correlation id. The facade (`createMaqet`) is
 * the sum of the operation groups in `src/api/ops/`, each built on this context.
 *
 * @example
 * ```ts
 * const ctx = createMaqetContext(options);
 * const ops = lifecycleOps(ctx);
 * ```
 */
import type { Orchestrator } from "../actors/orchestrator.ts";
import type { VmActor } from "../actors/vm-actor.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { MaqetOptions } from "./maqet-options.ts";
import { openRuntime, type Runtime } from "./runtime.ts";

export interface MaqetContext {
  readonly options: MaqetOptions;
  /** The runtime (store, ports, orchestrator), opened on first use. */
  open(): Promise<Runtime>;
  /** Runs one operation with a fresh correlation id stamped on the events it appends. */
  operation<T>(run: (rt: Runtime, orchestrator: Orchestrator) => Promise<T>): Promise<T>;
  /** Runs one operation on a VM's live actor (looked up by name or id). */
  withVm<T>(name: string, run: (vm: VmActor, rt: Runtime) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function createMaqetContext(options: MaqetOptions): MaqetContext {
  let runtime: Promise<Runtime> | undefined;
  let closed = false;
  const open = (): Promise<Runtime> => {
    if (closed) {
      return Promise.reject(new MaqetError("INVALID_ARGUMENT", "This maqet instance is closed; create a new one."));
    }
    runtime ??= openRuntime(options);
    runtime.catch(() => {
      runtime = undefined;
    });
    return runtime;
  };
  const operation = async <T>(run: (rt: Runtime, orchestrator: Orchestrator) => Promise<T>): Promise<T> => {
    const rt = await open();
    rt.orchestrator.setMetadata({ correlationId: crypto.randomUUID(), source: options.source ?? "library" });
    return run(rt, rt.orchestrator);
  };
  return {
    options,
    open,
    operation,
    withVm: (name, run) => operation(async (rt, orchestrator) => run(await orchestrator.actor(name), rt)),
    close: async () => {
      if (closed) return;
      closed = true;
      const pending = runtime;
      runtime = undefined;
      const rt = await pending?.catch(() => undefined);
      await rt?.close();
    },
  };
}
