/**
 * What an instance on a PostgreSQL server knows about the cluster: the hosts, the placements and
 * the routed-command queue, this process's host name, and (for a member agent) the owner epochs it
 * holds. Opened by the runtime whenever the store is a server; on PGlite there is none, and a
 * multi-host feature asked of it fails with CLUSTER_NEEDS_SERVER.
 *
 * @example
 * ```ts
 * const cluster = new ClusterRuntime({ db, notifications, host: "lab1", member: false, metadata });
 * const owner = await cluster.ownerHost(vmId); // "lab3": route the command there
 * ```
 */
import type { Kysely } from "kysely";
import { filter, firstValueFrom, type Observable, race, timer } from "rxjs";
import type { VmView } from "../actors/vm-view.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import {
  COMMAND_DONE_CHANNEL,
  COMMAND_PROGRESS_CHANNEL,
  type CommandOutcome,
  CommandQueue,
} from "../events/command-queue.ts";
import type { EventMetadata } from "../events/envelope.ts";
import { HostRegistry } from "../events/host-registry.ts";
import type { NotificationSource, Wakeup } from "../events/notifications.ts";
import { PlacementStore } from "../events/placement-store.ts";
import type { Database } from "../events/schema.ts";

export interface ClusterRuntimeOptions {
  db: Kysely<Database>;
  notifications?: NotificationSource;
  host: string;
  member: boolean;
  metadata: () => EventMetadata;
}

export class ClusterRuntime {
  readonly host: string;
  readonly member: boolean;
  readonly hosts: HostRegistry;
  readonly placements: PlacementStore;
  readonly commands: CommandQueue;
  readonly #notifications: NotificationSource | undefined;
  /** Member only: the owner epoch held per VM stream (kept after a VM moves away: then it is stale). */
  readonly #epochs = new Map<string, number>();
  /** Last known owner host per VM stream. */
  readonly #owners = new Map<string, string>();
  /** The epoch of each owner in {@link #owners} (to tell which of two answers is newer). */
  readonly #ownerEpochs = new Map<string, number>();
  /** Member only: false while the host lease is not known to be valid (no commands, no changes). */
  serving = true;
  /** Why the member is not serving (for HOST_LEASE_LOST). */
  notServingBecause = "";

  constructor(options: ClusterRuntimeOptions) {
    this.host = options.host;
    this.member = options.member;
    this.hosts = new HostRegistry(options.db, options.metadata);
    this.placements = new PlacementStore(options.db, options.metadata);
    this.commands = new CommandQueue(options.db);
    this.#notifications = options.notifications;
  }

  /** The epoch to stamp on an append to `streamId` (member, VM streams only; 0: never placed here). */
  epochOf = (streamId: string): number | undefined => {
    if (!this.member || !streamId.startsWith("vm-")) return undefined;
    return this.#epochs.get(streamId) ?? 0;
  };

  /** A VM owned by another host: this process neither reconciles nor drives it. */
  isForeign = (view: VmView): boolean => {
    // The newer of what this member last learned and what the view (the store, via the VM list)
    // says: a drain run on another host moves a VM before this member's next refresh.
    const learned = this.#ownerEpochs.get(view.streamId) ?? -1;
    const owner =
      view.host !== undefined && (view.epoch ?? -1) > learned
        ? view.host
        : (this.#owners.get(view.streamId) ?? view.host);
    return owner !== undefined && owner !== this.host;
  };

  /** True when this member owns the VM now (by the last refresh). */
  owns(streamId: string): boolean {
    return this.#owners.get(streamId) === this.host;
  }

  /** Reads every placement: the owners, and (member) the epochs of the VMs placed here. */
  async refresh(): Promise<void> {
    for (const p of await this.placements.all()) this.#learn(`vm-${p.vmId}`, p.host, p.epoch);
  }

  /** The VM's owner host now (read from the database), or undefined when it was never placed. */
  async ownerHost(vmId: string): Promise<string | undefined> {
    const placement = await this.placements.ownerOf(vmId);
    if (placement) this.#learn(`vm-${vmId}`, placement.host, placement.epoch);
    return placement?.host;
  }

  /** Records a placement this process made or read. */
  learn(vmId: string, host: string, epoch: number): void {
    this.#learn(`vm-${vmId}`, host, epoch);
  }

  #learn(streamId: string, host: string, epoch: number): void {
    this.#owners.set(streamId, host);
    this.#ownerEpochs.set(streamId, epoch);
    if (this.member && host === this.host) this.#epochs.set(streamId, epoch);
  }

  /** Throws HOST_LEASE_LOST while this member may not act (its lease is not known valid). */
  assertServing(): void {
    if (this.member && !this.serving) {
      throw new MaqetError(
        "HOST_LEASE_LOST",
        `Host '${this.host}' cannot act now: ${this.notServingBecause || "its lease is not renewed"}. ` +
          "It takes commands again once it renews its lease. See `maqet host ls` and docs/cluster.md.",
        { details: { host: this.host } },
      );
    }
  }

  /** Whether any host has joined (then `add` places VMs). */
  async active(): Promise<boolean> {
    return (await this.hosts.list()).some((h) => h.state !== "left");
  }

  /**
   * Routes one facade call to the VM's owner and waits for its outcome: the result, or the
   * owner's error re-thrown with its code.
   */
  async route(
    vmId: string,
    host: string,
    method: string,
    args: unknown[],
    caller: Record<string, unknown>,
    idempotent: boolean,
    onProgress?: (progress: unknown) => void,
  ): Promise<unknown> {
    const done = this.#notifications?.wakeups(COMMAND_DONE_CHANNEL);
    // Listen from the first routed call until close: one connection, and the outcome's NOTIFY
    // cannot be missed for want of a listener (a missed one is covered by the poll anyway).
    if (done && this.#listening === undefined) this.#listening = done.subscribe(() => undefined);
    // Progress likewise: without a standing subscriber, each call would open (and close) a
    // connection of its own for LISTEN, a server backend forked per routed command.
    if (onProgress && this.#listeningProgress === undefined) {
      this.#listeningProgress = this.#notifications?.wakeups(COMMAND_PROGRESS_CHANNEL).subscribe(() => undefined);
    }
    const target = await this.hosts.stateOf(host);
    if (target === undefined || target.state !== "up") {
      throw new MaqetError(
        "HOST_INVALID_STATE",
        `The VM is owned by host '${host}', which is ${target?.state ?? "unknown"}${target ? ` (last renewal ${target.lastRenewal})` : ""}: ` +
          `'${method}' cannot run there now. Wait for it to come back, or, if it is dead, \`maqet host mark-dead ${host}\` ` +
          "(a VM with `ha: restart` then restarts elsewhere; any other can be moved with `maqet host drain`).",
        { details: { host, state: target?.state ?? "unknown", method } },
      );
    }
    // The owner's progress for this command (start's wait, stop's steps), relayed as it comes:
    // listening before the command exists, so none is missed for want of a listener.
    const id = crypto.randomUUID();
    const progress =
      onProgress &&
      this.#notifications?.wakeups(COMMAND_PROGRESS_CHANNEL).subscribe((w) => {
        if (w.reason !== "notification" || !w.payload.startsWith(`${id} `)) return;
        try {
          onProgress(JSON.parse(w.payload.slice(id.length + 1)));
        } catch {}
      });
    let outcome: CommandOutcome;
    try {
      await this.commands.enqueue({ vmId, host, method, args, caller, idempotent }, id);
      outcome = await this.#outcome(id, done);
    } finally {
      progress?.unsubscribe();
    }
    if (outcome.state === "done") return outcome.result;
    throw new MaqetError(outcome.error.code as never, outcome.error.message, {
      details: { ...(outcome.error.details ?? {}), routedTo: host, commandId: id },
    });
  }

  #listening: { unsubscribe(): void } | undefined;
  #listeningProgress: { unsubscribe(): void } | undefined;

  /** Wake-ups on a channel (the member's command queue); undefined without LISTEN support. */
  wakeups(channel: string): Observable<Wakeup> | undefined {
    return this.#notifications?.wakeups(channel);
  }

  /** Stops listening for outcomes. */
  close(): void {
    this.#listening?.unsubscribe();
    this.#listening = undefined;
    this.#listeningProgress?.unsubscribe();
    this.#listeningProgress = undefined;
  }

  async #outcome(id: string, done: Observable<Wakeup> | undefined): Promise<CommandOutcome> {
    let pollMs = 2;
    for (;;) {
      const wake = done
        ? firstValueFrom(
            race(done.pipe(filter((w) => w.reason === "listening" || w.payload === id)), timer(pollMs)),
          ).catch(() => undefined)
        : new Promise((resolve) => setTimeout(resolve, pollMs));
      const outcome = await this.commands.outcome(id);
      if (outcome) return outcome;
      await wake;
      pollMs = Math.min(pollMs * 2, 1000);
    }
  }
}
