/**
 * What belongs to one operation and travels with it: the metadata stamped on every event it
 * appends (its own correlation id, its caller, its source) and how it reports waiting for a VM
 * another operation holds. Nothing of it is ever set on a shared instance: the orchestrator and
 * the VM actors serve many operations at once, so each call carries its scope.
 *
 * {@link scopedOrchestrator} binds a scope to the shared orchestrator, so an operation's code
 * reads as before (`orchestrator.actor(name)`, `vm.start()`) while every append carries the scope.
 *
 * @example
 * ```ts
 * const scope: OperationScope = { metadata: { correlationId: crypto.randomUUID(), source: "agent" } };
 * const vm = await scopedOrchestrator(orchestrator, scope).actor("web");
 * await vm.start(); // vm.start-requested, vm.started: both carry scope.metadata
 * ```
 */
import type { VmConfig } from "../config/vm-config.ts";
import type { EventMetadata } from "../events/envelope.ts";
import type { Orchestrator } from "./orchestrator.ts";
import type { QmpExecuteOptions } from "./ports.ts";
import type { QmpDecision } from "./qmp-policy.ts";
import type { MigrationAccess, StopOptions, VmAccess, VmActor } from "./vm-actor.ts";
import type { VmOutcome } from "./vm-machine.ts";
import type { VmView } from "./vm-view.ts";
import type { WaitCondition } from "./wait-condition.ts";

/** The operation that holds a VM (its actor is the lock): what a waiting caller is told. */
export interface LockHolder {
  /** e.g. `start`, `stop`, `qmp query-status`, `exclusive`, `reconcile`. */
  operation: string;
  correlationId?: string;
  /** The holder's caller, when known (`metadata.actor.user`). */
  user?: string;
  /** Clock time (ms) the holder took the VM. */
  since: number;
}

export interface OperationScope {
  /** Stamped on every event this operation appends (merged over the store's defaults). */
  metadata: Partial<EventMetadata>;
  /**
   * Called when the operation must wait for another on the same VM (FIFO, one at a time); the
   * function it returns, if any, is called once the VM is this operation's.
   */
  onWait?(vmName: string, holder: LockHolder, ahead: number): (() => void) | undefined;
  /**
   * Told what a long step of this operation is waiting for (a stop's powerdown/escalation step,
   * a start's wait condition), so a caller can say so while it waits.
   */
  onStep?(vmName: string, step: OperationStep): void;
}

/** One step of a long wait, as told to {@link OperationScope.onStep}. */
export interface OperationStep {
  /** `vm.stop` (the graceful stop's steps), `vm.start` (waiting for the start condition) or `vm.migrate` (a live migration's phases). */
  operation: "vm.stop" | "vm.start" | "vm.migrate";
  /** `powerdown`, `quit`, `sigterm`, `sigkill`; or `wait` (a start condition). */
  step: string;
  /** The longest this step waits before the next (or before the timeout), in ms. */
  waitMs: number;
  /** QEMU's pid, when known. */
  pid?: number;
  /** For `wait`: the condition, e.g. `serial:login:` (docs/lifecycle.md). */
  condition?: string;
  /** For `vm.migrate`: what the phase is doing, in words. */
  message?: string;
}

/** A VM's live actor seen through one operation: every method runs with that operation's scope. */
export interface ScopedVm {
  readonly view: VmView;
  readonly state: string;
  start(options?: { timeoutMs?: number; waitFor?: WaitCondition }): Promise<VmOutcome>;
  stop(options?: StopOptions): Promise<VmOutcome>;
  remove(options?: StopOptions): Promise<VmOutcome>;
  pause(): Promise<VmOutcome>;
  resume(): Promise<VmOutcome>;
  reset(): Promise<VmOutcome>;
  qmp<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options?: QmpExecuteOptions & { decision?: QmpDecision },
  ): Promise<T>;
  exclusive<T>(work: (access: VmAccess) => Promise<T>): Promise<T>;
  migrateOut<T>(run: (access: MigrationAccess) => Promise<T>): Promise<T>;
  flush(): Promise<void>;
}

/** The orchestrator seen through one operation. */
export interface ScopedOrchestrator {
  /** This operation's metadata, for facts it appends outside a VM's stream. */
  readonly metadata: Partial<EventMetadata>;
  views(options?: { includeRemoved?: boolean }): Promise<VmView[]>;
  find(nameOrId: string): Promise<VmView>;
  define(config: VmConfig, options: { name: string; configPath?: string }): Promise<VmView>;
  actor(nameOrId: string): Promise<ScopedVm>;
  /** The VM's actor when this process already holds it, found without a read (see Orchestrator.loadedActor). */
  loadedActor(nameOrId: string): ScopedVm | undefined;
  liveViews(options?: { includeRemoved?: boolean }): Promise<VmView[]>;
  liveView(nameOrId: string): Promise<VmView>;
}

export function scopedVm(actor: VmActor, scope: OperationScope): ScopedVm {
  return {
    get view() {
      return actor.view;
    },
    get state() {
      return actor.state;
    },
    start: (options) => actor.start(options, scope),
    stop: (options) => actor.stop(options, scope),
    remove: (options) => actor.remove(options, scope),
    pause: () => actor.pause(scope),
    resume: () => actor.resume(scope),
    reset: () => actor.reset(scope),
    qmp: (command, args, options) => actor.qmp(command, args, { ...options, scope }),
    exclusive: (work) => actor.exclusive(work, scope),
    migrateOut: (run) => actor.migrateOut(run, scope),
    flush: () => actor.flush(),
  };
}

export function scopedOrchestrator(orchestrator: Orchestrator, scope: OperationScope): ScopedOrchestrator {
  return {
    metadata: scope.metadata,
    views: (options) => orchestrator.views(options),
    find: (nameOrId) => orchestrator.find(nameOrId),
    define: (config, options) => orchestrator.define(config, { ...options, metadata: scope.metadata }),
    actor: async (nameOrId) => scopedVm(await orchestrator.actor(nameOrId, scope), scope),
    loadedActor: (nameOrId) => {
      const actor = orchestrator.loadedActor(nameOrId);
      return actor && scopedVm(actor, scope);
    },
    liveViews: (options) => orchestrator.liveViews(options, scope),
    liveView: (nameOrId) => orchestrator.liveView(nameOrId, scope),
  };
}
