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
import { performance } from "node:perf_hooks";
import type { Kysely } from "kysely";
import type { Observable, Subscription } from "rxjs";
import type { VmView } from "../actors/vm-view.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import {
  type ClaimedCommand,
  COMMAND_DONE_CHANNEL,
  COMMAND_PROGRESS_CHANNEL,
  type CommandOutcome,
  CommandQueue,
  type VmLocation,
} from "../events/command-queue.ts";
import type { EventMetadata } from "../events/envelope.ts";
import { HostRegistry } from "../events/host-registry.ts";
import type { NotificationSource, Wakeup } from "../events/notifications.ts";
import { PlacementStore } from "../events/placement-store.ts";
import type { Database } from "../events/schema.ts";

/** With a LISTEN connection, the outcome is read unprompted only this long after the command was sent (then less often). */
const FALLBACK_POLL_MS = 250;

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

  /** Member only: a join or renewal begun at `start` (`performance.now()`) holds for `validForMs` from then (TTL - margin). */
  leaseRenewed(start: number, validForMs: number): void {
    this.#leaseFrom = start;
    this.#leaseHoldsMs = validForMs;
  }

  /** Milliseconds by this process's monotonic clock since the last join or renewal began (-Infinity before the first). */
  leaseAgeMs(): number {
    return performance.now() - this.#leaseFrom;
  }

  #leaseFrom = Number.POSITIVE_INFINITY;
  #leaseHoldsMs = 0;

  /**
   * HOST_LEASE_LOST unless this member's lease holds NOW by this process's monotonic clock, not
   * by the last pass of the loop that judges it: before an effect (spawning QEMU) that a process
   * frozen mid-command reaches, once continued, before that loop runs again.
   */
  assertLeaseValid(): void {
    const overMs = this.leaseAgeMs() - this.#leaseHoldsMs;
    if (this.member && overMs >= 0) {
      throw new MaqetError(
        "HOST_LEASE_LOST",
        `Host '${this.host}' cannot act now: its lease ran out ${Math.round(overMs)} ms ago. ` +
          "It takes commands again once it renews its lease. See `maqet host ls` and docs/cluster.md.",
        { details: { host: this.host } },
      );
    }
    this.assertServing();
  }

  /** Whether any host has joined (then `add` places VMs). */
  async active(): Promise<boolean> {
    return (await this.hosts.list()).some((h) => h.state !== "left");
  }

  /**
   * The caller's side of a facade call on a VM known by name (or id), in one statement: when the
   * VM's owner is another host and up, the command is queued there and its outcome awaited (the
   * result, or the owner's error re-thrown with its code): `{ routed: true, result }`. Otherwise
   * nothing was sent: `location` says where the VM is (owned here, or not placed: run it here),
   * or is undefined when no live VM has that name (the caller looks further). An owner that is
   * not up is HOST_INVALID_STATE.
   */
  async routeByName(
    nameOrId: string,
    method: string,
    args: unknown[],
    caller: Record<string, unknown>,
    idempotent: boolean,
    onProgress?: (progress: unknown) => void,
  ): Promise<{ routed: true; result: unknown } | { routed: false; location: VmLocation | undefined }> {
    let location: VmLocation | undefined;
    const sent = await this.#send(onProgress, async (id) => {
      const queued = await this.commands.enqueueByName(this.host, { nameOrId, method, args, caller, idempotent }, id);
      location = queued.location;
      if (location?.owner) this.#learn(`vm-${location.vmId}`, location.owner.host, location.owner.epoch);
      return queued.queued;
    });
    if (sent !== undefined)
      return { routed: true, result: settled(sent.outcome, location?.owner?.host ?? "", sent.id) };
    const owner = location?.owner;
    if (owner !== undefined && owner.host !== this.host) throw hostNotUp(owner.host, owner, method);
    return { routed: false, location };
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
    const target = await this.hosts.stateOf(host);
    if (target === undefined || target.state !== "up") throw hostNotUp(host, target, method);
    const sent = await this.#send(onProgress, async (id) => {
      await this.commands.enqueue({ vmId, host, method, args, caller, idempotent }, id);
      return true;
    });
    if (sent === undefined) throw new Error("unreachable: the command was queued");
    return settled(sent.outcome, host, sent.id);
  }

  /**
   * Sends one command (`enqueue` queues it under the id given and says whether it did) and waits
   * for its outcome; undefined when nothing was queued. Everything that listens for the command
   * (its outcome's wake-up, its progress) listens before it exists, so nothing is missed.
   */
  async #send(
    onProgress: ((progress: unknown) => void) | undefined,
    enqueue: (id: string) => Promise<boolean>,
  ): Promise<{ id: string; outcome: CommandOutcome } | undefined> {
    // Listen from the first routed call until close: one connection, and the outcome's NOTIFY
    // cannot be missed for want of a listener (a missed one is covered by the poll anyway).
    if (this.#listening === undefined) this.#listening = this.wakeups(COMMAND_DONE_CHANNEL)?.subscribe(() => undefined);
    // Progress likewise: without a standing subscriber, each call would open (and close) a
    // connection of its own for LISTEN, a server backend forked per routed command.
    if (onProgress && this.#listeningProgress === undefined) {
      this.#listeningProgress = this.wakeups(COMMAND_PROGRESS_CHANNEL)?.subscribe(() => undefined);
    }
    const id = crypto.randomUUID();
    // The owner's progress for this command (start's wait, stop's steps), relayed as it comes.
    const progress =
      onProgress &&
      this.wakeups(COMMAND_PROGRESS_CHANNEL)?.subscribe((w) => {
        if (w.reason !== "notification" || !w.payload.startsWith(`${id} `)) return;
        try {
          onProgress(JSON.parse(w.payload.slice(id.length + 1)));
        } catch {}
      });
    const waiter = new OutcomeWaiter(id, this.commands, this.wakeups(COMMAND_DONE_CHANNEL));
    try {
      if (!(await enqueue(id))) return undefined;
      return { id, outcome: await waiter.outcome() };
    } finally {
      waiter.close();
      progress?.unsubscribe();
    }
  }

  /**
   * Member: notes where a claimed command's VM is, as the claim read it, while the command runs
   * (the routing wrapper then looks nothing up; {@link claimedLocation}); `forget` when it ended.
   */
  noteClaim(command: ClaimedCommand): void {
    if (command.located === undefined) return;
    this.#claims.set(command.id, command.located);
    const owner = command.located.owner;
    if (owner) this.#learn(`vm-${command.located.vmId}`, owner.host, owner.epoch);
  }

  forgetClaim(id: string): void {
    this.#claims.delete(id);
  }

  /** Where the VM of claimed command `id` is, as its claim read it (undefined: not noted). */
  claimedLocation(id: string): VmLocation | undefined {
    return this.#claims.get(id);
  }

  readonly #claims = new Map<string, VmLocation>();
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
}

/** The outcome as the facade call's answer: the result, or the owner's error with its code. */
function settled(outcome: CommandOutcome, host: string, id: string): unknown {
  if (outcome.state === "done") return outcome.result;
  throw new MaqetError(outcome.error.code as never, outcome.error.message, {
    details: { ...(outcome.error.details ?? {}), routedTo: host, commandId: id },
  });
}

/** HOST_INVALID_STATE: the VM's owner cannot run `method` now. */
function hostNotUp(
  host: string,
  target: { state: string; lastRenewal?: string } | undefined,
  method: string,
): MaqetError {
  const state = target?.state ?? "unknown";
  return new MaqetError(
    "HOST_INVALID_STATE",
    `The VM is owned by host '${host}', which is ${state}${target?.lastRenewal ? ` (last renewal ${target.lastRenewal})` : ""}: ` +
      `'${method}' cannot run there now. Wait for it to come back, or, if it is dead, \`maqet host mark-dead ${host}\` ` +
      "(a VM with `ha: restart` then restarts elsewhere; any other can be moved with `maqet host drain`).",
    { details: { host, state, method } },
  );
}

/**
 * Waits for one routed command's outcome, woken by its NOTIFY: subscribed before the command is
 * sent, it reads nothing when the wake-up carries the outcome, reads the row when it only names
 * the command or when the LISTEN connection (re)starts (a notification sent while nobody listened
 * is gone, the row is not), and otherwise reads only as a slow fallback (250 ms, doubling to 1 s;
 * from 2 ms without LISTEN), for a notification lost without the connection saying so.
 */
class OutcomeWaiter {
  #carried: CommandOutcome | undefined;
  #read: boolean;
  #wake: () => void = () => undefined;
  readonly #subscription: Subscription | undefined;

  constructor(
    private readonly id: string,
    private readonly commands: CommandQueue,
    private readonly done: Observable<Wakeup> | undefined,
  ) {
    // Without wake-ups, polling is all there is: read from the start.
    this.#read = done === undefined;
    this.#subscription = done?.subscribe((w) => {
      const said = w.reason === "listening" ? "read" : CommandQueue.outcomeIn(id, w.payload);
      if (said === undefined) return;
      if (said === "read") this.#read = true;
      else this.#carried = said;
      this.#wake();
    });
  }

  async outcome(): Promise<CommandOutcome> {
    let pollMs = this.done === undefined ? 2 : FALLBACK_POLL_MS;
    for (;;) {
      if (this.#carried) return this.#carried;
      if (this.#read) {
        this.#read = false;
        const outcome = await this.commands.outcome(this.id);
        if (outcome) return outcome;
        if (this.#carried) return this.#carried;
      }
      if (!this.#read) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.#read = true;
            resolve();
          }, pollMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = () => undefined;
        pollMs = Math.min(pollMs * 2, 1000);
      }
    }
  }

  close(): void {
    this.#subscription?.unsubscribe();
    this.#wake();
  }
}
