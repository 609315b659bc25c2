/**
 * What every group of facade operations shares: the lazily opened runtime, the orchestrator,
 * and the rule that each operation carries its own scope (src/actors/operation-scope.ts): a
 * fresh correlation id and its caller, stamped on the events it appends, never set on the
 * shared orchestrator or actors, so concurrent operations never stamp each other's. The facade
 * (`createMaqet`) is the sum of the operation groups in `src/api/ops/`, each built on this
 * context; `ctx.as(caller)` is a view of the same instance acting for another caller.
 *
 * @example
 * ```ts
 * const ctx = createMaqetContext(options);
 * const ops = lifecycleOps(ctx.as({ user: "alice", source: "agent" }));
 * ```
 */
import {
  type OperationScope,
  type ScopedOrchestrator,
  type ScopedVm,
  scopedOrchestrator,
} from "../actors/operation-scope.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { type CallerIdentity, operationMetadata } from "./caller-identity.ts";
import type { MaqetOptions } from "./maqet-options.ts";
import { progressHub } from "./progress-hub.ts";
import { openRuntime, type Runtime, type RuntimeHooks } from "./runtime.ts";
import { stepMessage } from "./step-message.ts";

export interface MaqetContext {
  readonly options: MaqetOptions;
  /** The caller this view acts for (undefined: this process itself). */
  readonly caller?: CallerIdentity;
  /** The same object for every view of one instance: the key of per-instance state. */
  readonly instance: object;
  /** What the facade gives the runtime (how a routed command runs here); shared by every view. */
  readonly hooks: RuntimeHooks;
  /** The runtime (store, ports, orchestrator), opened on first use. */
  open(): Promise<Runtime>;
  /**
   * Runs one operation with its own scope: a fresh correlation id (or the caller's) and the
   * caller, stamped on every event it appends through `orchestrator`.
   */
  operation<T>(run: (rt: Runtime, orchestrator: ScopedOrchestrator, scope: OperationScope) => Promise<T>): Promise<T>;
  /** Runs one operation on a VM's live actor (looked up by name or id). */
  withVm<T>(name: string, run: (vm: ScopedVm, rt: Runtime) => Promise<T>): Promise<T>;
  /** A view of this instance whose operations act for `caller`. */
  as(caller: CallerIdentity): MaqetContext;
  close(): Promise<void>;
}

export function createMaqetContext(options: MaqetOptions): MaqetContext {
  let runtime: Promise<Runtime> | undefined;
  let closed = false;
  const instance = {};
  const hooks: RuntimeHooks = {};
  const open = (): Promise<Runtime> => {
    if (closed) {
      return Promise.reject(new MaqetError("INVALID_ARGUMENT", "This maqet instance is closed; create a new one."));
    }
    runtime ??= openRuntime(options, hooks);
    runtime.catch(() => {
      runtime = undefined;
    });
    return runtime;
  };
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const pending = runtime;
    runtime = undefined;
    const rt = await pending?.catch(() => undefined);
    await rt?.close();
  };
  const view = (caller: CallerIdentity | undefined): MaqetContext => {
    const ctx: MaqetContext = {
      options,
      caller,
      instance,
      hooks,
      open,
      operation: async (run) => {
        const rt = await open();
        const steps = stepReporter(ctx);
        const scope: OperationScope = {
          metadata: operationMetadata(caller, options.source ?? "library"),
          onWait: (vmName, holder, ahead) => waitReporter(ctx, vmName, holder.operation, ahead),
          onStep: steps.step,
        };
        try {
          const result = await run(rt, scopedOrchestrator(rt.orchestrator, scope), scope);
          steps.end(true);
          return result;
        } catch (error) {
          steps.end(false);
          throw error;
        }
      },
      // A VM whose actor this process holds is found without a read (as on the QMP hot path):
      // no directory lookup, no projection catch-up in front of the operation.
      withVm: (name, run) =>
        ctx.operation(async (rt, orchestrator) =>
          run(orchestrator.loadedActor(name) ?? (await orchestrator.actor(name)), rt),
        ),
      as: (next) => view(next),
      close,
    };
    return ctx;
  };
  return view(undefined);
}

/**
 * The long steps of one operation (a stop's powerdown and escalation, a start's wait condition)
 * on the instance's progress stream, each with a message saying what it waits for and how long;
 * the operation's end closes them (done, ok).
 */
function stepReporter(ctx: MaqetContext): {
  step: NonNullable<OperationScope["onStep"]>;
  end(ok: boolean): void;
} {
  const open = new Map<string, { operation: string; subject: string }>();
  return {
    step: (vmName, step) => {
      open.set(`${step.operation} ${vmName}`, { operation: step.operation, subject: vmName });
      progressHub(ctx).next({
        operation: step.operation,
        subject: vmName,
        percent: 0,
        message: stepMessage(vmName, step),
        step: step.step,
        waitMs: step.waitMs,
        ...(step.pid === undefined ? {} : { pid: step.pid }),
      });
    },
    end: (ok) => {
      for (const { operation, subject } of open.values()) {
        progressHub(ctx).next({ operation, subject, percent: 100, done: true, ok });
      }
      open.clear();
    },
  };
}

/**
 * A wait for a busy VM is visible: on the instance's progress stream (`vm.wait`, the VM's name)
 * from the moment the operation queues until the VM is its.
 */
function waitReporter(ctx: MaqetContext, vmName: string, holder: string, ahead: number): () => void {
  const hub = progressHub(ctx);
  const message = `waiting for VM '${vmName}': ${holder} in progress${ahead > 1 ? `, ${ahead - 1} more queued ahead` : ""}`;
  hub.next({ operation: "vm.wait", subject: vmName, percent: 0, message });
  return () => hub.next({ operation: "vm.wait", subject: vmName, percent: 100, done: true, ok: true });
}
