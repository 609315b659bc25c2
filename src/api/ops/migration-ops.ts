/**
 * Live migration (docs/migration.md): move a running VM to another host, or to a fresh QEMU on
 * its own host, without the guest noticing. The VM's owner coordinates (src/actors/migration/
 * migrate-out.ts); the destination's steps run on the destination host (routed to its agent) or
 * in this process when it is the same host.
 *
 * @example
 * ```ts
 * const moved = await maqet.migrateVm("web", { to: "lab2", downtimeMs: 300 });
 * console.log(moved.downtimeMs, moved.totalMs);
 * await maqet.cancelMigration("db"); // from another caller, while `db` migrates
 * ```
 */
import type {
  FinishIncomingRequest,
  MigrationTargetPort,
  PreparedIncoming,
  PrepareIncomingRequest,
} from "../../actors/migration/incoming-migrations.ts";
import { type MigrationResult, migrateOut } from "../../actors/migration/migrate-out.ts";
import type { MigrationAccess } from "../../actors/vm-actor.ts";
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import type { NewEvent } from "../../events/envelope.ts";
import { vmEvent } from "../../events/vm-events.ts";
import type { ClusterRuntime } from "../cluster-runtime.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { callerOf, clusterNeedsServer } from "../route-commands.ts";
import type { Runtime } from "../runtime.ts";

export type { MigrationResult };

export interface MigrateOptions {
  /** The destination host (`--to`); the VM's own host moves it to a fresh QEMU there. */
  to: string;
  /** QEMU's `downtime-limit` (`--downtime-ms`), default 300 ms. */
  downtimeMs?: number;
  /** QEMU's `max-bandwidth` (`--bandwidth`, MiB/s), default 1024. */
  bandwidthMiBs?: number;
  /** Cancel the migration after this long (`--timeout` in seconds on the CLI), default 600 000 ms. */
  timeoutMs?: number;
  /** Aborting it cancels the migration (before the commit point). */
  signal?: AbortSignal;
}

export interface MigrationOps {
  /** Moves the running VM to host `to`: QEMU's live migration, every phase a fact on its stream. */
  migrateVm(name: string, options: MigrateOptions): Promise<MigrationResult>;
  /** Cancels the VM's migration in flight (before its commit point); the VM stays on its source. */
  cancelMigration(name: string): Promise<{ vm: string; migrationId: string; cancelled: true }>;
  /** The destination's first step: start QEMU `-incoming defer -S` and listen (run on the destination host). */
  migrationPrepare(request: PrepareIncomingRequest): Promise<PreparedIncoming>;
  /** The destination's last step: wait for the state, resume the guest, load the VM here (run on the destination host). */
  migrationFinish(request: FinishIncomingRequest & { vmId: string; epoch: number }): Promise<{ resumed: boolean }>;
  /** Kills the destination QEMU of a migration that will not happen (run on the destination host). */
  migrationAbort(request: { migrationId: string }): Promise<{ aborted: boolean }>;
  /** Cancels a migration this process coordinates (routed to the VM's owner by `cancelMigration`). */
  migrationCancel(vmId: string): Promise<{ vm: string; migrationId: string; cancelled: true }>;
}

/** How long the coordinator waits for the destination host to confirm the resume. */
const FINISH_WAIT_MS = 30_000;

export const DEFAULT_MIGRATION = { downtimeMs: 300, bandwidthMiBs: 1024, timeoutMs: 600_000 } as const;

export function migrationOps(ctx: MaqetContext): MigrationOps {
  const cancelHere = async (vmId: string, name: string) => {
    const rt = await ctx.open();
    const running = rt.migrations.get(vmId);
    if (running === undefined) {
      throw new MaqetError(
        "MIGRATION_NOT_RUNNING",
        `VM '${name}' has no migration in flight here. \`maqet status ${name}\` shows one in flight (field migration); a migration left open by a process that died is finished or rolled back when the VM is next loaded.`,
        { details: { vm: name } },
      );
    }
    running.controller.abort("user");
    return { vm: name, migrationId: running.migrationId, cancelled: true as const };
  };
  return {
    migrateVm: (name, options) =>
      ctx.operation(async (rt, orchestrator, scope) => {
        const view = await orchestrator.find(name);
        const request = validate(rt, view.name, options);
        const target =
          request.toHost === rt.hostName ? rt.incoming : routedTarget(rt.cluster!, view.vmId, request.toHost, ctx);
        if (rt.cluster && request.toHost !== rt.hostName) {
          const state = await rt.cluster.hosts.stateOf(request.toHost);
          if (state === undefined || state.state !== "up") {
            throw new MaqetError(
              state === undefined ? "HOST_NOT_FOUND" : "HOST_INVALID_STATE",
              state === undefined
                ? `No host '${request.toHost}' in the cluster. See \`maqet host ls\`.`
                : `Host '${request.toHost}' cannot take VM '${view.name}': it is ${state.state} (last renewal ${state.lastRenewal}).`,
              { details: { host: request.toHost } },
            );
          }
        }
        // A VM placed on a host (a cluster) moves with its placement; one never placed (a single
        // host, even on a server) only to a fresh QEMU here. Its `--constraint` labels go on with
        // the placement (read now: not while the guest is paused).
        const placed = rt.cluster ? (await rt.cluster.placements.ownerOf(view.vmId)) !== undefined : false;
        if (!placed && request.toHost !== rt.hostName) {
          throw new MaqetError(
            "HOST_INVALID_STATE",
            `VM '${view.name}' is not placed on any host (no agent owns it), so it can only move to a fresh QEMU on this host (--to ${rt.hostName}). ` +
              "Run `maqet agent --host NAME` on each host to form a cluster (docs/cluster.md).",
            { details: { vm: view.name, to: request.toHost } },
          );
        }
        const cluster = placed ? rt.cluster : undefined;
        const constraints = cluster ? await cluster.placements.constraintsOf(view.vmId) : undefined;
        const vm = await orchestrator.actor(view.vmId);
        const migrationId = crypto.randomUUID();
        const controller = new AbortController();
        const onAbort = () => controller.abort("user");
        options.signal?.addEventListener("abort", onAbort, { once: true });
        const entry: Runtime["migrations"] extends Map<string, infer E> ? E : never = { migrationId, controller };
        rt.migrations.set(view.vmId, entry);
        try {
          const running = vm.migrateOut((access) =>
            migrateOut(
              {
                ports: access.ports,
                view: access.view,
                session: access.session,
                wasRunning: access.wasRunning,
                target,
                signal: controller.signal,
                record: async (events) => {
                  await access.record(events);
                },
                commit: async (data, before = []) => {
                  access.moved = !access.moved;
                  try {
                    return await commitOwner(cluster, access, data, before, constraints);
                  } catch (error) {
                    access.moved = !access.moved;
                    throw error;
                  }
                },
                recordAfterCommit: async (events, epoch) => {
                  const stamped = rt.cluster
                    ? events.map((e) => ({ ...e, metadata: { ...e.metadata, epoch } }))
                    : events;
                  await access.record(stamped).catch(async (error: unknown) => {
                    if (!isMaqetError(error, "CONCURRENCY_CONFLICT")) throw error;
                    // The destination wrote first (its load settled the migration: settle-migration.ts).
                    const history = await rt.store.readStream(access.view.streamId);
                    if (
                      history.some(
                        (e) =>
                          e.type === "vm.migrated" && (e.data as { migrationId?: string }).migrationId === migrationId,
                      )
                    )
                      return;
                    await rt.store.append(
                      access.view.streamId,
                      stamped.map((e) => ({ ...e, metadata: { ...scope.metadata, ...e.metadata } })),
                      { expectedVersion: "stream_exists" },
                    );
                  });
                },
                onStep: (step) =>
                  scope.onStep?.(view.name, {
                    operation: "vm.migrate",
                    step: step.phase,
                    waitMs: request.timeoutMs,
                    message: step.message,
                  }),
              },
              { ...request, migrationId },
            ),
          );
          entry.done = running.catch(() => undefined);
          const result = await running;
          // Same host: the VM is this process's again, now the destination's QEMU (reattached).
          if (request.toHost === rt.hostName) await orchestrator.actor(view.vmId);
          return result;
        } finally {
          options.signal?.removeEventListener("abort", onAbort);
          if (rt.migrations.get(view.vmId)?.migrationId === migrationId) rt.migrations.delete(view.vmId);
        }
      }),
    cancelMigration: async (name) => {
      const rt = await ctx.open();
      const view = await rt.orchestrator.find(name);
      if (rt.migrations.has(view.vmId)) return cancelHere(view.vmId, view.name);
      const owner = rt.cluster ? await rt.cluster.ownerHost(view.vmId) : undefined;
      if (rt.cluster && owner !== undefined && owner !== rt.hostName) {
        return (await rt.cluster.route(
          `${view.vmId}~cancel`,
          owner,
          "migrationCancel",
          [view.vmId],
          callerOf(ctx),
          true,
        )) as {
          vm: string;
          migrationId: string;
          cancelled: true;
        };
      }
      return cancelHere(view.vmId, view.name);
    },
    migrationCancel: async (vmId) => {
      const rt = await ctx.open();
      const view = await rt.orchestrator.find(vmId);
      return cancelHere(view.vmId, view.name);
    },
    migrationPrepare: async (request) => (await ctx.open()).incoming.prepare(request),
    migrationAbort: async (request) => (await ctx.open()).incoming.abort(request),
    migrationFinish: async (request) => {
      const rt = await ctx.open();
      rt.cluster?.learn(request.vmId, rt.hostName, request.epoch);
      const done = await rt.incoming.finish(request);
      // The VM is this host's now: load it (reattached to the QEMU that just took over) and watch it.
      await rt.orchestrator.actor(request.vmId);
      return done;
    },
  };
}

function validate(rt: Runtime, name: string, options: MigrateOptions) {
  const to = options.to;
  if (typeof to !== "string" || to === "") {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Migrating VM '${name}' needs a destination: --to HOST (\`maqet host ls\`).`,
    );
  }
  if (rt.cluster === undefined && to !== rt.hostName) throw clusterNeedsServer(`migrate --to ${to}`);
  const downtimeLimitMs = positive(options.downtimeMs ?? DEFAULT_MIGRATION.downtimeMs, "--downtime-ms", 1, 2_000_000);
  const bandwidthMiBs = positive(
    options.bandwidthMiBs ?? DEFAULT_MIGRATION.bandwidthMiBs,
    "--bandwidth",
    0.001,
    1_000_000,
  );
  const timeoutMs = positive(options.timeoutMs ?? DEFAULT_MIGRATION.timeoutMs, "--timeout", 1, 86_400_000);
  return { fromHost: rt.hostName, toHost: to, downtimeLimitMs, bandwidthMiBs, timeoutMs };
}

function positive(value: number, flag: string, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new MaqetError("INVALID_ARGUMENT", `${flag} must be a number from ${min} to ${max}, got ${String(value)}.`, {
      details: { flag, value },
    });
  }
  return value;
}

/**
 * The commit point. On a cluster: the placement moves (epoch + 1) and `vm.owner-changed` is
 * appended in the same transaction, so the stream and the owner never disagree. On a single
 * host: `vm.owner-changed` alone (no epochs).
 */
async function commitOwner(
  cluster: ClusterRuntime | undefined,
  access: Pick<MigrationAccess, "record" | "adopt" | "view">,
  data: Parameters<Parameters<typeof migrateOut>[0]["commit"]>[0],
  before: NewEvent[],
  constraints: Record<string, string> | undefined,
): Promise<{ epoch: number }> {
  if (cluster === undefined) {
    await access.record([...before, vmEvent("vm.owner-changed", { ...data, epoch: 0 })]);
    return { epoch: 0 };
  }
  const placed = await cluster.placements.place(access.view.vmId, data.toHost, "migration", {
    expectFrom: data.fromHost,
    first: before,
    ...(constraints ? { constraints } : {}),
    after: (epoch) => [vmEvent("vm.owner-changed", { ...data, epoch })],
  });
  cluster.learn(access.view.vmId, placed.host, placed.epoch);
  access.adopt(placed.events);
  return { epoch: placed.epoch };
}

function routedTarget(cluster: ClusterRuntime, vmId: string, host: string, ctx: MaqetContext): MigrationTargetPort {
  const key = `${vmId}~in`;
  return {
    prepare: (request) =>
      cluster.route(key, host, "migrationPrepare", [request], callerOf(ctx), false) as Promise<PreparedIncoming>,
    finish: async (request) => {
      // The guest is paused until this `cont`: the epoch comes with the request, not from a read.
      const finished = cluster.route(
        key,
        host,
        "migrationFinish",
        [{ ...request, vmId, epoch: request.epoch ?? 0 }],
        callerOf(ctx),
        true,
      );
      // A destination agent that died does not hold the migration up: its next load resumes the VM.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new MaqetError("TIMEOUT", `Host '${host}' did not confirm the resume within ${FINISH_WAIT_MS / 1000} s.`),
            ),
          FINISH_WAIT_MS,
        );
      });
      try {
        return (await Promise.race([finished, late])) as { resumed: boolean };
      } finally {
        clearTimeout(timer);
      }
    },
    abort: (request) =>
      cluster.route(key, host, "migrationAbort", [request], callerOf(ctx), true) as Promise<{ aborted: boolean }>,
  };
}
