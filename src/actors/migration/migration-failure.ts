/**
 * How a live migration ends when it does not complete (migrate-out.ts): before the commit point
 * it is cancelled and the source runs on (`vm.migration-failed` / `vm.migration-cancelled`);
 * after it, a failed switchover hands ownership back to the source. Also the errors the caller
 * gets for each.
 *
 * @example
 * ```ts
 * await rollBack(deps, request, "transfer", error); // migrate_cancel, cont if needed, abort the target, record
 * ```
 */
import { isMaqetError, MaqetError } from "../../errors/maqet-error.ts";
import type { NewEvent } from "../../events/envelope.ts";
import type { MigrationPhase } from "../../events/migration-events.ts";
import { vmEvent } from "../../events/vm-events.ts";
import type { PreparedIncoming } from "./incoming-migrations.ts";
import type { MigrateOutDeps, MigrationRequest } from "./migrate-out.ts";
import { type MigrationInfo, queryMigrate, runState } from "./migration-qmp.ts";

/** Thrown to cancel: the reason the signal carried. */
export class Cancelled extends Error {
  constructor(readonly by: "user" | "timeout") {
    super(by);
  }
}

/**
 * Before the commit point: cancel QEMU's migration, make sure the source guest runs as it did,
 * kill the destination QEMU, and record why.
 */
export async function rollBack(deps: MigrateOutDeps, request: MigrationRequest, phase: MigrationPhase, error: unknown) {
  const { session, target, ports } = deps;
  await session.execute("migrate_cancel").catch(() => undefined);
  // Cancelled at pre-switchover, QEMU leaves the source paused: it resumes once the cancel is done.
  for (let i = 0; i < 200; i++) {
    const info = await queryMigrate(session).catch(() => undefined);
    if (!info || !["active", "pre-switchover", "cancelling", "setup", "device"].includes(info.status ?? "")) break;
    await ports.clock.sleep(10);
  }
  if (deps.wasRunning && (await runState(session).catch(() => "running")) !== "running") {
    await session.execute("cont").catch(() => undefined);
  }
  await target.abort({ migrationId: request.migrationId }).catch(() => undefined);
  const fact =
    error instanceof Cancelled
      ? vmEvent("vm.migration-cancelled", {
          migrationId: request.migrationId,
          phase,
          by: error.by,
          reason:
            error.by === "timeout"
              ? `it did not complete within ${Math.round(request.timeoutMs / 1000)} s (--timeout)`
              : "cancelled by the user (migrate --cancel)",
        })
      : failed(request.migrationId, phase, error);
  await deps.record([fact]);
}

/** Switchover failed after the commit: ownership goes back to the source, which runs on. */
export async function failAfterCommit(
  deps: MigrateOutDeps,
  request: MigrationRequest,
  prepared: PreparedIncoming,
  final: MigrationInfo,
  epoch: number,
): Promise<never> {
  const { session, view } = deps;
  const reason = final["error-desc"] ?? `QEMU reports '${final.status}' after the switchover`;
  if (deps.wasRunning) await session.execute("cont").catch(() => undefined);
  await deps.target.abort({ migrationId: request.migrationId }).catch(() => undefined);
  const back = await deps.commit({
    migrationId: request.migrationId,
    fromHost: request.toHost,
    toHost: request.fromHost,
    resume: deps.wasRunning,
    target: {
      ...prepared.target,
      host: request.fromHost,
      pid: view.pid ?? 0,
      qmpSocket: view.qmpSocket ?? "",
      runtimeDir: view.runtimeDir ?? "",
      pidFile: view.pidFile ?? "",
    },
  });
  await deps.recordAfterCommit(
    [
      vmEvent("vm.migration-failed", {
        migrationId: request.migrationId,
        phase: "completion",
        reason: `${reason}; the source runs on`,
      }),
    ],
    Math.max(back.epoch, epoch),
  );
  throw new MaqetError(
    "MIGRATION_FAILED",
    `Live migration of VM '${view.name}' failed at the switchover: ${reason}. The VM keeps running on host '${request.fromHost}'.`,
    {
      details: { migrationId: request.migrationId, phase: "completion" },
    },
  );
}

export function failed(migrationId: string, phase: MigrationPhase, error: unknown): NewEvent {
  return vmEvent("vm.migration-failed", { migrationId, phase, reason: messageOf(error) });
}

export function cancelledError(name: string, request: MigrationRequest, phase: MigrationPhase, by: "user" | "timeout") {
  const why =
    by === "timeout"
      ? `it did not complete within ${Math.round(request.timeoutMs / 1000)} s (--timeout)`
      : "it was cancelled";
  return new MaqetError(
    by === "timeout" ? "TIMEOUT" : "MIGRATION_CANCELLED",
    `Live migration of VM '${name}' to '${request.toHost}' stopped: ${why}. The VM keeps running on host '${request.fromHost}'.` +
      (by === "timeout"
        ? " A guest that dirties memory faster than the link copies it needs more --bandwidth or a larger --downtime-ms."
        : ""),
    { details: { migrationId: request.migrationId, phase, by } },
  );
}

export function asMigrationError(error: unknown, name: string, phase: MigrationPhase): MaqetError {
  if (isMaqetError(error) && (error.code.startsWith("MIGRATION_") || error.code === "HOST_INVALID_STATE")) return error;
  return new MaqetError(
    "MIGRATION_FAILED",
    `Live migration of VM '${name}' failed (${phase}): ${messageOf(error)}. The VM keeps running on its source.`,
    { cause: error, details: { phase } },
  );
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
