/**
 * Routing in a cluster: the facade's VM operations, wrapped so that an operation on a VM owned by
 * another host becomes a routed command (src/events/command-queue.ts) that the owner's agent runs,
 * its result (or error, with its code) coming back here. A VM owned here, or never placed, runs
 * here as on a single host. `add` places the new VM (`--host`, or the scheduler). Nothing changes
 * on PGlite (no cluster): the wrapper then costs one check per call.
 *
 * @example
 * ```ts
 * const maqet = withRouting(ctx, facadeOf(ctx));
 * await maqet.start("web"); // runs on the host that owns 'web'
 * ```
 */
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import type { ClaimedCommand } from "../events/command-queue.ts";
import type { CallerIdentity } from "./caller-identity.ts";
import type { PlacementOptions } from "./cluster-options.ts";
import type { ClusterRuntime } from "./cluster-runtime.ts";
import type { MaqetContext } from "./maqet-context.ts";
import { chooseHost } from "./placement.ts";
import { type OperationProgress, progressHub, progressObservable } from "./progress-hub.ts";
import type { Runtime } from "./runtime.ts";
import { isStoreUnreachable } from "./store-down.ts";
import type { VmStatus } from "./vm-status.ts";

/**
 * The operations that go to a VM's owner, and whether each is safe to run again when the agent
 * running it died mid-way (then it is re-queued; otherwise failed, never run twice).
 */
export const ROUTED_METHODS: Readonly<Record<string, boolean>> = {
  start: true,
  stop: true,
  pause: true,
  resume: true,
  inspect: true,
  listSnapshots: true,
  storageVerify: true,
  screendump: true,
  remove: false,
  reset: false,
  qmp: false,
  sendKeys: false,
  typeText: false,
  deviceAdd: false,
  deviceDel: false,
  createSnapshot: false,
  loadSnapshot: false,
  deleteSnapshot: false,
  migrateVm: false,
};

/**
 * A live migration's destination steps, routed to the DESTINATION host (src/api/ops/migration-ops.ts),
 * under a command-queue key of their own per VM (the source's `migrate` holds the VM's), and run
 * there as they are (never routed on): whether each may run again after its agent died.
 */
export const TARGET_METHODS: Readonly<Record<string, boolean>> = {
  migrationPrepare: false,
  migrationFinish: true,
  migrationAbort: true,
  migrationCancel: true,
};

/** How many times one call follows its VM to a new owner before it gives up. */
const MAX_REROUTES = 3;

/** Operations that read only: a member whose lease lapsed still answers them. */
const READS = new Set(["inspect", "listSnapshots", "storageVerify"]);

type Method = (...args: unknown[]) => Promise<unknown>;

/**
 * `base` with its VM operations routed to their owner and `add` placing new VMs.
 *
 * @example
 * ```ts
 * const routed = withRouting(ctx, base);
 * ```
 */
export function withRouting<T extends object>(ctx: MaqetContext, base: T): T {
  const methods = base as unknown as Record<string, Method>;
  const routed: Record<string, Method> = {};
  for (const [method, idempotent] of Object.entries(ROUTED_METHODS)) {
    const local = methods[method];
    if (typeof local !== "function") continue;
    const dispatch = async (name: unknown, rest: unknown[]) => {
      let rt: Awaited<ReturnType<MaqetContext["open"]>>;
      try {
        rt = await ctx.open();
      } catch (error) {
        // A server that cannot be reached routes nothing: the operation itself decides what it
        // can still do (`stop --force` stops the VM and spools its facts, store-down.ts).
        if (isStoreUnreachable(error, ctx.options)) return local(name, ...rest);
        throw error;
      }
      const cluster = rt.cluster;
      if (cluster === undefined) return local(name, ...rest);
      const runHere = () => {
        if (!READS.has(method)) cluster.assertServing();
        return local(name, ...rest);
      };
      // The owner's progress lands on this instance's stream, as a local operation's would.
      const relay = (progress: unknown) => progressHub(ctx).next(progress as OperationProgress);
      const claimed = ctx.caller?.routedCommand;
      if (claimed === undefined) {
        // One statement finds the owner and, when it is another host, queues the command there.
        const sent = await cluster.routeByName(
          String(name),
          method,
          rest.map(jsonSafe),
          callerOf(ctx),
          idempotent,
          relay,
        );
        if (sent.routed) return sent.result;
        if (sent.location !== undefined) return runHere();
        // No live VM by that name in the name claims: the VM list says (VM_NOT_FOUND, usually).
      }
      // A claimed command: its claim read where the VM is; otherwise look it up.
      const located = claimed === undefined ? undefined : cluster.claimedLocation(claimed);
      const view = located ?? (await rt.orchestrator.find(String(name)));
      const owner = located ? located.owner?.host : await cluster.ownerHost(view.vmId);
      if (owner === undefined || owner === cluster.host) return runHere();
      // A command this member claimed for a VM that moved since it was queued (an HA recovery
      // while this host was away, then its re-join re-queued it here): routed on, it waited for
      // a claim that its own running row forbids (one running command per VM), for ever. It did
      // not run; its caller sends it to the owner now.
      if (claimed !== undefined) throw notOwner(view.name, cluster.host, owner);
      return cluster.route(
        view.vmId,
        owner,
        method,
        [view.vmId, ...rest.map(jsonSafe)],
        callerOf(ctx),
        idempotent,
        relay,
      );
    };
    routed[method] = async (name: unknown, ...rest: unknown[]) => {
      // The host it went to did not own the VM any more when it claimed it, and ran nothing:
      // send it where the VM is now (a few times at most: each hop follows a placement change).
      for (let hop = 0; ; hop++) {
        try {
          return await dispatch(name, rest);
        } catch (error) {
          if (hop >= MAX_REROUTES || !isMaqetError(error, "STALE_EPOCH") || error.details?.reroute !== true)
            throw error;
        }
      }
    };
  }
  const add = methods.add;
  const addConfigs = methods.addConfigs;
  if (add) routed.add = (config, options) => placed(ctx, options as PlacementOptions, () => add(config, options));
  if (addConfigs) {
    routed.addConfigs = (files, options) => placed(ctx, options as PlacementOptions, () => addConfigs(files, options));
  }
  return { ...base, ...routed } as T;
}

/**
 * Defines the VM (`define`), then places it: on `options.host`, or where the scheduler says.
 * Checked before defining whether a host can take it at all; if the placement still fails, the
 * VM is removed again (its stream then says so), so no unplaced VM is left behind.
 */
async function placed(ctx: MaqetContext, options: PlacementOptions | undefined, define: () => Promise<unknown>) {
  const wantsPlacement =
    options?.host !== undefined || (options?.constraints && Object.keys(options.constraints).length);
  // The embedded store has no cluster: a plain add stays as cheap as before (a bad config fails
  // before the store is even opened).
  if (!wantsPlacement && !ctx.options.databaseUrl && ctx.options.store === undefined) return define();
  const rt = await ctx.open();
  const cluster = rt.cluster;
  if (cluster === undefined) {
    if (wantsPlacement) throw clusterNeedsServer(options?.host !== undefined ? "add --host" : "add --constraint");
    return define();
  }
  if (!wantsPlacement && !(await cluster.active())) return define();
  // Fails early (and records nothing) when no host fits at all.
  await chooseHost(cluster, rt.orchestrator, { pinned: options?.host, constraints: options?.constraints });
  const status = (await define()) as VmStatus;
  return placeDefined(ctx, rt, cluster, status, options ?? {});
}

async function placeDefined(
  ctx: MaqetContext,
  rt: Runtime,
  cluster: ClusterRuntime,
  status: VmStatus,
  options: PlacementOptions,
): Promise<VmStatus> {
  try {
    const host = await chooseHost(cluster, rt.orchestrator, {
      pinned: options.host,
      constraints: options.constraints,
      memory: status.memory ?? undefined,
    });
    const placement = await cluster.placements.place(status.id, host, options.host ? "pinned" : "new", {
      expectFrom: null,
      ...(options.constraints ? { constraints: options.constraints } : {}),
    });
    cluster.learn(status.id, placement.host, placement.epoch);
    return { ...status, host: placement.host };
  } catch (error) {
    await ctx
      .operation(async (_rt, orchestrator) => (await orchestrator.actor(status.id)).remove({ force: true }))
      .catch(() => undefined);
    throw error;
  }
}

/**
 * Runs a claimed command on `maqet` (the owner's facade) as its caller. Only the routed methods
 * may run: the method name comes from a database row.
 *
 * @example
 * ```ts
 * await executeRouted(maqet, claimed);
 * ```
 */
export async function executeRouted(
  maqet: { as(caller: CallerIdentity): unknown },
  command: ClaimedCommand,
  ctx?: MaqetContext,
): Promise<unknown> {
  if (!Object.hasOwn(ROUTED_METHODS, command.method) && !Object.hasOwn(TARGET_METHODS, command.method)) {
    throw new MaqetError("INVALID_ARGUMENT", `A routed command may not run '${command.method}'.`);
  }
  const relay = ctx && command.host !== "" ? await relayProgress(ctx, command) : undefined;
  try {
    return await runRouted(maqet, command);
  } finally {
    await relay?.end();
  }
}

/**
 * Sends this instance's progress for the command's VM (its name is the progress subject) to the
 * command's caller while it runs, in order; `end` waits until the last one went, so the caller
 * has them before the outcome. Progress of another operation on the same VM here at the same
 * time goes along too (one routed command runs per VM, but a local one may run beside it).
 */
async function relayProgress(
  ctx: MaqetContext,
  command: ClaimedCommand,
): Promise<{ end(): Promise<void> } | undefined> {
  const rt = await ctx.open();
  const queue = rt.cluster?.commands;
  // The claim read the VM's name; a command queued otherwise (or for a key that is no VM) looks.
  const name =
    command.located?.name ??
    (await rt.orchestrator.find(command.vmId).then(
      (view) => view.name,
      () => undefined,
    ));
  if (queue === undefined || name === undefined) return undefined;
  let sent: Promise<void> = Promise.resolve();
  const subscription = progressObservable(ctx).subscribe((p) => {
    if (p.subject !== name && !p.subject.startsWith(`${name}:`)) return;
    sent = sent.then(() => queue.progress(command.id, p)).catch(() => undefined);
  });
  return {
    end: async () => {
      subscription.unsubscribe();
      await sent;
    },
  };
}

async function runRouted(maqet: { as(caller: CallerIdentity): unknown }, command: ClaimedCommand): Promise<unknown> {
  // A command claimed from the queue runs here or nowhere; one of this host's own (an HA
  // recovery's start, `host: ""`) goes wherever its VM is placed.
  const caller = command.caller as CallerIdentity;
  const view = maqet.as(command.host === "" ? caller : { ...caller, routedCommand: command.id }) as Record<
    string,
    Method
  >;
  // JSON turned absent arguments into null; the operations' defaults want them absent.
  const result = await view[command.method]!(...command.args.map((a) => (a === null ? undefined : a)));
  return result === undefined ? null : result;
}

/**
 * STALE_EPOCH for a routed command claimed by a host that no longer owns its VM, raised before
 * it ran anything: `details.reroute` tells the caller to send it to the owner instead.
 */
function notOwner(name: string, host: string, owner: string): MaqetError {
  return new MaqetError(
    "STALE_EPOCH",
    `VM '${name}' is owned by host '${owner}' now, not '${host}': the command did not run here.`,
    { details: { reroute: true, host, owner } },
  );
}

/** The CLUSTER_NEEDS_SERVER error for a multi-host feature asked of the embedded store. */
export function clusterNeedsServer(feature: string): MaqetError {
  return new MaqetError(
    "CLUSTER_NEEDS_SERVER",
    `'${feature}' needs a cluster, and the embedded store (PGlite) is single-host. ` +
      "Point every host at one PostgreSQL server (`--db postgres://…` or MAQET_DATABASE_URL) and run " +
      "`maqet agent --host NAME` on each. See docs/cluster.md.",
    { details: { feature } },
  );
}

/** The caller a routed command runs as (a correlation id of its own when the caller has none). */
export function callerOf(ctx: MaqetContext): Record<string, unknown> {
  const caller: Record<string, unknown> = { ...(ctx.caller ?? {}) };
  caller.correlationId ??= crypto.randomUUID();
  caller.source ??= ctx.options.source ?? "library";
  return caller;
}

/** Arguments as JSON carries them: no abort signals, no functions. */
function jsonSafe(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value, (key, v) => (key === "signal" || typeof v === "function" ? undefined : v)));
}
