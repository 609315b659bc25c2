/**
 * The system actor: finds VMs by name or id, defines new ones, and keeps one live {@link VmActor}
 * per VM in this process. Reads (`views`, `find`) come from the VM directory (the VM list
 * projection, or a fold of the streams when there is no projection database) and never wait
 * behind a VM's long operation. Many operations use one orchestrator at once: each passes its
 * own metadata or scope (src/actors/operation-scope.ts); the orchestrator keeps none.
 *
 * @example
 * ```ts
 * const orchestrator = new Orchestrator({ ports, store });
 * const view = await orchestrator.define(config, { name: "web", metadata: { correlationId: "op-1" } });
 * const vm = await orchestrator.actor("web", { metadata: { correlationId: "op-2" } });
 * ```
 */
import type { VmConfig } from "../config/vm-config.ts";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import { vmBusyError } from "../errors/vm-busy-error.ts";
import type { EventMetadata } from "../events/envelope.ts";
import { vmEvent, vmStreamId } from "../events/vm-events.ts";
import { isVmNameTaken } from "../events/vm-name-claim.ts";
import type { OperationScope } from "./operation-scope.ts";
import type { LeaseHolder } from "./ports.ts";
import { VmActor, type VmActorDeps } from "./vm-actor.ts";
import { foldingVmDirectory, type VmDirectory } from "./vm-directory.ts";
import { applyVmEvent, mayHaveProcess, type VmView } from "./vm-view.ts";

export interface OrchestratorDeps extends VmActorDeps {
  /** Where VMs are looked up. Default: a fold of the store's `vm` category on every lookup. */
  directory?: VmDirectory;
  /**
   * A VM this process must not reconcile on a read (a cluster: owned by another host, whose
   * processes this host cannot see). Its view is reported as recorded.
   */
  isForeign?: (view: VmView) => boolean;
}

export class Orchestrator {
  readonly #deps: VmActorDeps;
  readonly #directory: VmDirectory;
  readonly #isForeign: ((view: VmView) => boolean) | undefined;
  readonly #actors = new Map<string, Promise<VmActor>>();
  /** The actors of #actors that finished loading (an entry counts only while #actors has it). */
  readonly #loaded = new Map<string, VmActor>();
  /** Defines run one at a time in this process (the database's name claim covers the others). */
  #defining: Promise<unknown> = Promise.resolve();

  constructor(deps: OrchestratorDeps) {
    this.#deps = deps;
    this.#directory = deps.directory ?? foldingVmDirectory(deps.store);
    this.#isForeign = deps.isForeign;
  }

  /** Every VM (removed ones only when asked), in definition order. */
  async views(options: { includeRemoved?: boolean } = {}): Promise<VmView[]> {
    return this.#directory.list(options);
  }

  /** A VM by name or id; throws VM_NOT_FOUND listing the known names. */
  async find(nameOrId: string): Promise<VmView> {
    const found = await this.#directory.find(nameOrId);
    if (found) return found;
    const known = (await this.#directory.list()).map((v) => v.name).sort();
    throw new MaqetError(
      "VM_NOT_FOUND",
      `VM '${nameOrId}' not found. ${known.length ? `Known VMs: ${known.join(", ")}.` : "No VMs are defined."} Create it with \`maqet add config.yaml\`.`,
      { details: { name: nameOrId, known } },
    );
  }

  /**
   * Records `vm.defined` for a new VM; the name must be free. On PGlite and PostgreSQL the append
   * claims the name in its own transaction (src/events/vm-name-claim.ts): of two processes
   * racing to add one name, one fails with VM_EXISTS. A store without that claim (in memory) is
   * checked through the directory first, one define at a time in this process. `metadata`: the
   * defining operation's (correlation id, caller), stamped on `vm.defined`.
   */
  async define(config: VmConfig, options: DefineOptions): Promise<VmView> {
    const run = this.#defining.then(
      () => this.#define(config, options),
      () => this.#define(config, options),
    );
    this.#defining = run.catch(() => {});
    return run;
  }

  async #define(config: VmConfig, options: DefineOptions): Promise<VmView> {
    const { name } = options;
    // Where the store claims names itself, its answer is the one to trust: a lagging directory
    // could still show a VM removed a moment ago and refuse a name that is free.
    if (!this.#directory.namesClaimedByStore) {
      const existing = await this.#directory.find(name);
      if (existing && existing.name === name) throw vmExists(name, existing.vmId);
    }
    const vmId = crypto.randomUUID();
    const stored = { ...config, name };
    const event = {
      ...vmEvent("vm.defined", {
        vmId,
        name,
        config: stored,
        ...(options.configPath ? { configPath: options.configPath } : {}),
      }),
      metadata: options.metadata ?? {},
    };
    let result: Awaited<ReturnType<VmActorDeps["store"]["append"]>>;
    try {
      result = await this.#deps.store.append(vmStreamId(vmId), [event], { expectedVersion: "no_stream" });
    } catch (error) {
      if (!isVmNameTaken(error)) throw error;
      // Claimed by a writer whose vm.defined the directory did not show yet.
      const holder = await this.#directory.find(name).catch(() => undefined);
      throw vmExists(name, holder?.name === name ? holder.vmId : undefined, error);
    }
    const view = applyVmEvent(undefined, result.events[0]!);
    if (!view) throw new MaqetError("INTERNAL", `vm.defined for '${name}' did not fold into a view.`);
    return view;
  }

  /**
   * The live actor of a VM already loaded in this process, found by name or id without a read
   * (the hot path of a frequent command such as QMP): it holds the VM's lease, so no other
   * process has moved its stream, and its name is its own while it lives. Undefined when none is
   * loaded, it went stale, or the VM is removed: then {@link actor} looks it up.
   */
  loadedActor(nameOrId: string): VmActor | undefined {
    for (const actor of this.#loaded.values()) {
      const { view } = actor;
      if (actor.stale || view.status === "removed" || !this.#actors.has(view.vmId)) continue;
      if (view.name !== nameOrId && view.vmId !== nameOrId) continue;
      return actor;
    }
    return undefined;
  }

  /** The views of the VMs this process drives now (loaded, not stale): what it knows first-hand. */
  heldViews(): VmView[] {
    return [...this.#loaded.values()].filter((a) => !a.stale).map((a) => a.view);
  }

  /**
   * The live actor of a VM (rehydrated and reconciled on first use in this process). Facts that
   * reconciling records carry `scope`'s metadata (the operation that touched the VM).
   */
  async actor(nameOrId: string, scope?: OperationScope): Promise<VmActor> {
    const view = await this.find(nameOrId);
    let pending = this.#actors.get(view.vmId);
    const cached = pending ? await pending.catch(() => undefined) : undefined;
    if (cached?.stale) {
      // Another writer moved the stream: start over from what the store says now.
      this.#actors.delete(view.vmId);
      await cached.close();
      pending = undefined;
    }
    if (!pending) {
      pending = VmActor.load(this.#deps, view.vmId, scope).catch((error: unknown) => {
        // The lease table knows only ids: say which VM, by its name.
        if (isMaqetError(error, "VM_BUSY") && error.details.holder) {
          throw vmBusyError(view.name, view.vmId, error.details.holder as LeaseHolder);
        }
        throw error;
      });
      this.#actors.set(view.vmId, pending);
      pending.catch(() => this.#actors.delete(view.vmId));
    }
    const actor = await pending;
    this.#loaded.set(view.vmId, actor);
    return actor;
  }

  /**
   * Views with liveness checked: a VM the stream calls running whose process is gone is
   * reconciled (its fact recorded) before it is reported. A live one is reported as recorded.
   */
  async liveViews(options: { includeRemoved?: boolean } = {}, scope?: OperationScope): Promise<VmView[]> {
    const out: VmView[] = [];
    for (const view of await this.views(options)) out.push(await this.#checked(view, scope));
    return out;
  }

  /** One VM's view, liveness checked as in {@link liveViews}; VM_NOT_FOUND when unknown. */
  async liveView(nameOrId: string, scope?: OperationScope): Promise<VmView> {
    // A VM whose actor this process holds is known without a read, as on the QMP hot path: the
    // actor holds its lease, so no other process moved its stream (`maqet status` through the
    // agent: no projection catch-up, no query). Not in a cluster, where another host may have
    // placed it again since (the stream's owner epoch decides, below).
    if (this.#isForeign === undefined) {
      const loaded = this.loadedActor(nameOrId);
      if (loaded) return loaded.view;
    }
    return this.#checked(await this.find(nameOrId), scope);
  }

  async #checked(view: VmView, scope: OperationScope | undefined): Promise<VmView> {
    // Owned by another host: what this process may still hold of it is stale; the stream says.
    if (this.#isForeign?.(view)) return view;
    const loaded = this.#actors.get(view.vmId);
    if (loaded) {
      const held = (await loaded).view;
      // The directory's view is newer: placed again since this process loaded it (a newer owner
      // epoch), or a fact the actor appended and has not applied yet (the store's notice of an
      // append, which a cached directory folds in, comes before the append resolves): the stream says.
      const [epoch, heldEpoch] = [view.epoch ?? 0, held.epoch ?? 0];
      return epoch > heldEpoch || (epoch === heldEpoch && view.version > held.version) ? view : held;
    }
    // Mid-operation (starting, stopping) or a process gone: whoever can take the lease finds out.
    // A live driver keeps its lease and this read just reports what the stream says.
    // An open snapshot request counts too: a dead process's request gets its outcome now (recover-requests.ts).
    // So does an open live migration (settle-migration.ts).
    const midOperation =
      view.status === "starting" ||
      view.status === "stopping" ||
      view.openSnapshot !== undefined ||
      view.migration !== undefined;
    if (midOperation || (mayHaveProcess(view) && this.#processGone(view))) {
      try {
        return (await this.actor(view.vmId, scope)).view;
      } catch (error) {
        // Another live process drives this VM: recording what happened is its job; a read never waits.
        if (isMaqetError(error, "VM_BUSY")) return view;
        throw error;
      }
    }
    return view;
  }

  /**
   * Whether this process has a live actor for the VM (loaded or loading; not stale, not
   * removed). A supervisor loads the VMs for which this is false.
   */
  holds(vmId: string): boolean {
    if (!this.#actors.has(vmId)) return false;
    const actor = this.#loaded.get(vmId);
    return actor === undefined || (!actor.stale && actor.view.status !== "removed");
  }

  /**
   * Closes the actors of removed VMs and of stale ones (another writer moved their stream),
   * releasing their leases; returns their names. A long-lived process calls it so it holds no
   * lease it no longer needs; a stale VM is loaded afresh by the next use.
   */
  async releaseDone(): Promise<string[]> {
    const done: string[] = [];
    for (const [vmId, actor] of [...this.#loaded]) {
      if (!actor.stale && actor.view.status !== "removed") continue;
      this.#loaded.delete(vmId);
      const pending = this.#actors.get(vmId);
      // Already replaced (and closed) by actor(): the lease is the new actor's now.
      if (!pending || (await pending.catch(() => undefined)) !== actor) continue;
      this.#actors.delete(vmId);
      done.push(actor.view.name);
      await actor.close();
    }
    return done;
  }

  /** Stops watching every VM and closes QMP connections; QEMU processes keep running. */
  async close(): Promise<void> {
    const actors = [...this.#actors.values()];
    this.#actors.clear();
    this.#loaded.clear();
    for (const pending of actors) {
      const actor = await pending.catch(() => undefined);
      await actor?.close();
    }
  }

  #processGone(view: VmView): boolean {
    // A start without a recorded pid may still be in progress in another process: leave it to
    // the next mutating command (which rehydrates and reconciles) rather than guess here.
    if (view.pid === undefined) return false;
    return this.#deps.ports.processes.probe(view.pid, view.vmId) !== "alive";
  }
}

export interface DefineOptions {
  name: string;
  configPath?: string;
  /** The defining operation's metadata (correlation id, caller), stamped on `vm.defined`. */
  metadata?: Partial<EventMetadata>;
}

function vmExists(name: string, vmId: string | undefined, cause?: unknown): MaqetError {
  return new MaqetError(
    "VM_EXISTS",
    `VM '${name}' already exists${vmId ? ` (id ${vmId})` : ""}. Remove it with \`maqet rm ${name}\`, or add this one under another name with \`--name\`.`,
    { cause, details: { name, vmId } },
  );
}
