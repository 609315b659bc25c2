/**
 * The system actor: finds VMs by name or id, defines new ones, and keeps one live {@link VmActor}
 * per VM in this process. Reads (`list`, `find`) fold the streams and never wait behind a
 * VM's long operation.
 *
 * @example
 * ```ts
 * const orchestrator = new Orchestrator({ ports, store });
 * const view = await orchestrator.define(config, { name: "web" });
 * const vm = await orchestrator.actor("web");
 * ```
 */
import type { VmConfig } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { EventMetadata } from "../events/envelope.ts";
import { vmEvent, vmStreamId } from "../events/vm-events.ts";
import { VmActor, type VmActorDeps } from "./vm-actor.ts";
import { applyVmEvent, mayHaveProcess, type VmView } from "./vm-view.ts";

export class Orchestrator {
  readonly #deps: VmActorDeps;
  readonly #actors = new Map<string, Promise<VmActor>>();
  #metadata: Partial<EventMetadata> = {};

  constructor(deps: VmActorDeps) {
    this.#deps = deps;
  }

  /** Metadata stamped on the events appended from now on (correlation id, source). */
  setMetadata(metadata: Partial<EventMetadata>): void {
    this.#metadata = metadata;
  }

  /** The metadata of the current operation, for facts appended outside a VM's stream. */
  get metadata(): Partial<EventMetadata> {
    return this.#metadata;
  }

  /** Every VM (removed ones only when asked), folded from the `vm` category in global order. */
  async views(options: { includeRemoved?: boolean } = {}): Promise<VmView[]> {
    const byStream = new Map<string, VmView>();
    for (const event of await this.#deps.store.readAll({ category: "vm" })) {
      const next = applyVmEvent(byStream.get(event.streamId), event);
      if (next) byStream.set(event.streamId, next);
    }
    const all = [...byStream.values()];
    return options.includeRemoved ? all : all.filter((v) => v.status !== "removed");
  }

  /** A VM by name or id; throws VM_NOT_FOUND listing the known names. */
  async find(nameOrId: string): Promise<VmView> {
    const views = await this.views();
    const found = views.find((v) => v.name === nameOrId) ?? views.find((v) => v.vmId === nameOrId);
    if (found) return found;
    const known = views.map((v) => v.name).sort();
    throw new MaqetError(
      "VM_NOT_FOUND",
      `VM '${nameOrId}' not found. ${known.length ? `Known VMs: ${known.join(", ")}.` : "No VMs are defined."} Create it with \`maqet add config.yaml\`.`,
      { details: { name: nameOrId, known } },
    );
  }

  /** Records `vm.defined` for a new VM; the name must be free. */
  async define(config: VmConfig, options: { name: string; configPath?: string }): Promise<VmView> {
    const { name } = options;
    const existing = (await this.views()).find((v) => v.name === name);
    if (existing) {
      throw new MaqetError(
        "VM_EXISTS",
        `VM '${name}' already exists (id ${existing.vmId}). Remove it with \`maqet rm ${name}\`, or add this one under another name with \`--name\`.`,
        { details: { name, vmId: existing.vmId } },
      );
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
      metadata: this.#metadata,
    };
    const result = await this.#deps.store.append(vmStreamId(vmId), [event], { expectedVersion: "no_stream" });
    const view = applyVmEvent(undefined, result.events[0]!);
    if (!view) throw new MaqetError("INTERNAL", `vm.defined for '${name}' did not fold into a view.`);
    return view;
  }

  /** The live actor of a VM (rehydrated and reconciled on first use in this process). */
  async actor(nameOrId: string): Promise<VmActor> {
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
      pending = VmActor.load(this.#deps, view.vmId, this.#metadata);
      this.#actors.set(view.vmId, pending);
      pending.catch(() => this.#actors.delete(view.vmId));
    }
    const actor = await pending;
    actor.setMetadata(this.#metadata);
    return actor;
  }

  /**
   * Views with liveness checked: a VM the stream calls running whose process is gone is
   * reconciled (its fact recorded) before it is reported. A live one is reported as recorded.
   */
  async liveViews(options: { includeRemoved?: boolean } = {}): Promise<VmView[]> {
    const out: VmView[] = [];
    for (const view of await this.views(options)) out.push(await this.#checked(view));
    return out;
  }

  /** One VM's view, liveness checked as in {@link liveViews}; VM_NOT_FOUND when unknown. */
  async liveView(nameOrId: string): Promise<VmView> {
    return this.#checked(await this.find(nameOrId));
  }

  async #checked(view: VmView): Promise<VmView> {
    const loaded = this.#actors.get(view.vmId);
    if (loaded) return (await loaded).view;
    if (mayHaveProcess(view) && this.#processGone(view)) return (await this.actor(view.vmId)).view;
    return view;
  }

  /** Stops watching every VM and closes QMP connections; QEMU processes keep running. */
  async close(): Promise<void> {
    const actors = [...this.#actors.values()];
    this.#actors.clear();
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
