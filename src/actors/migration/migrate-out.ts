/**
 * The source side of a live migration, run by the VM's owner while it holds the VM (VmActor
 * `migrateOut`): QEMU's sequence (qapi/migration.json) with `pause-before-switchover`, and
 * libvirt's commit rule. Every phase is a fact on the VM's stream (migration-events.ts):
 *
 *   requested -> target-prepared (destination QEMU `-incoming defer -S` listening)
 *   -> started (`migrate`) -> progress (sampled) -> switchover (QEMU paused at `pre-switchover`)
 *   -> owner-changed (THE commit point: one transaction; on a cluster epoch + 1)
 *   -> `migrate-continue` -> completed -> destination resumed (`cont`) -> source quit -> migrated.
 *
 * Before the commit point any failure (destination gone, `--cancel`, `--timeout`) cancels and
 * keeps the source running; after it, the destination is the VM and the source is ended.
 *
 * @example
 * ```ts
 * const result = await migrateOut(deps, { migrationId, fromHost: "lab1", toHost: "lab2", downtimeLimitMs: 300, bandwidthMiBs: 1024, timeoutMs: 600000 });
 * ```
 */
import { filter, type Subscription } from "rxjs";
import { MaqetError } from "../../errors/maqet-error.ts";
import type { NewEvent } from "../../events/envelope.ts";
import type { MigrationEventData, MigrationPhase, MigrationTarget } from "../../events/migration-events.ts";
import { vmEvent } from "../../events/vm-events.ts";
import type { QmpSession, VmPorts } from "../ports.ts";
import type { VmView } from "../vm-view.ts";
import type { MigrationTargetPort, PreparedIncoming } from "./incoming-migrations.ts";
import {
  asMigrationError,
  Cancelled,
  cancelledError,
  failAfterCommit,
  failed,
  messageOf,
  rollBack,
} from "./migration-failure.ts";
import { enableMigrationEvents, type MigrationInfo, queryMigrate } from "./migration-qmp.ts";

/** What is asked: the `vm.migration-requested` fact. */
export type MigrationRequest = MigrationEventData["vm.migration-requested"];

/** One step of a migration as it happens (the CLI prints them; `--json` leaves them out). */
export interface MigrationStep {
  phase: "prepare" | "transfer" | "switchover" | "completion";
  message: string;
}

export interface MigrateOutDeps {
  ports: VmPorts;
  view: VmView;
  session: QmpSession;
  /** Whether the guest's vCPUs ran when the migration began (then the destination is resumed). */
  wasRunning: boolean;
  target: MigrationTargetPort;
  /** Records facts on the VM's stream, in order (before the commit point). */
  record(events: NewEvent[]): Promise<void>;
  /**
   * The commit point: records `before` (the switchover) and `vm.owner-changed` (with the
   * placement, on a cluster) in one transaction.
   */
  commit(data: Omit<MigrationEventData["vm.owner-changed"], "epoch">, before?: NewEvent[]): Promise<{ epoch: number }>;
  /** Records facts after the commit point, under the epoch the commit gave. */
  recordAfterCommit(events: NewEvent[], epoch: number): Promise<void>;
  /** Aborted by `--cancel` (reason `user`) or `--timeout` (reason `timeout`). */
  signal?: AbortSignal;
  onStep?(step: MigrationStep): void;
}

/** What a completed migration reports (`maqet migrate --json`). */
export interface MigrationResult {
  migrationId: string;
  vm: string;
  fromHost: string;
  toHost: string;
  pid: number;
  downtimeMs: number;
  totalMs: number;
  setupMs?: number;
  transferredBytes: number;
  passes: number;
  epoch: number;
  resumed: boolean;
}

const MiB = 1024 * 1024;
/** The longest wait for QEMU's `completed` after `migrate-continue`. */
const COMPLETION_WAIT_MS = 120_000;
/** How often `query-migrate` is read while RAM is copied. */
const POLL_MS = 100;
/** Progress facts: one a second for the first ten seconds, then one every five. */
const sampleEvery = (elapsedMs: number) => (elapsedMs < 10_000 ? 1000 : 5000);

export async function migrateOut(deps: MigrateOutDeps, request: MigrationRequest): Promise<MigrationResult> {
  const { ports, view, session, target } = deps;
  const { migrationId } = request;
  const t0 = ports.clock.now();
  const step = (phase: MigrationStep["phase"], message: string) => deps.onStep?.({ phase, message });
  await deps.record([
    vmEvent("vm.migration-requested", {
      migrationId,
      fromHost: request.fromHost,
      toHost: request.toHost,
      downtimeLimitMs: request.downtimeLimitMs,
      bandwidthMiBs: request.bandwidthMiBs,
      timeoutMs: request.timeoutMs,
    }),
  ]);

  // ---- prepare: the destination QEMU, listening.
  step("prepare", `starting the destination QEMU on host '${request.toHost}' (-incoming defer)`);
  let prepared: PreparedIncoming;
  try {
    prepared = await target.prepare({
      migrationId,
      vmId: view.vmId,
      name: view.name,
      config: view.config,
      ...(view.runtimeDir && request.fromHost === request.toHost ? { sourceRuntimeDir: view.runtimeDir } : {}),
    });
  } catch (error) {
    await deps.record([failed(migrationId, "prepare", error)]);
    throw asMigrationError(error, view.name, "prepare");
  }
  await deps.record([vmEvent("vm.migration-target-prepared", { migrationId, uri: prepared.uri, ...prepared.target })]);

  let passes = 0;
  // QEMU's MIGRATION events wake the loop at once: the guest is paused from `pre-switchover` on,
  // so every millisecond until `migrate-continue` is downtime.
  let wake: (() => void) | undefined;
  const watching: Subscription = session.events$
    .pipe(filter((e) => e.event === "MIGRATION" || e.event === "MIGRATION_PASS"))
    .subscribe((e) => {
      if (e.event === "MIGRATION_PASS") passes = Math.max(passes, Number(e.data?.pass ?? 0));
      wake?.();
    });
  // On the ports' clock, like the deadline it is checked against (a simulated clock in tests).
  const nap = async (ms: number) => {
    const woken = new AbortController();
    wake = () => woken.abort();
    await ports.clock.sleep(ms, woken.signal).catch(() => undefined);
    wake = undefined;
  };
  let phase: MigrationPhase = "transfer";
  let switchover: NewEvent | undefined;
  const deadline = t0 + request.timeoutMs;
  try {
    // ---- transfer.
    ports.crash?.("migrate.transfer");
    await enableMigrationEvents(session);
    await session.execute("migrate-set-parameters", {
      "downtime-limit": request.downtimeLimitMs,
      "max-bandwidth": Math.round(request.bandwidthMiBs * MiB),
    });
    await session.execute("migrate", { uri: prepared.uri });
    await deps.record([vmEvent("vm.migration-started", { migrationId, uri: prepared.uri })]);
    step(
      "transfer",
      `copying RAM to ${prepared.uri} (downtime limit ${request.downtimeLimitMs} ms, ${request.bandwidthMiBs} MiB/s)`,
    );
    let lastSample = ports.clock.now();
    for (;;) {
      if (deps.signal?.aborted) throw new Cancelled(deps.signal.reason === "timeout" ? "timeout" : "user");
      if (ports.clock.now() > deadline) throw new Cancelled("timeout");
      const info = await queryMigrate(session);
      const status = info.status ?? "none";
      passes = Math.max(passes, info.ram?.["dirty-sync-count"] ?? 0);
      if (status === "pre-switchover") {
        // Recorded with the commit, in one round trip: the guest is paused now.
        switchover = vmEvent("vm.migration-switchover", {
          migrationId,
          passes,
          remainingBytes: info.ram?.remaining ?? 0,
        });
        break;
      }
      if (status === "failed" || status === "cancelled" || status === "none") {
        throw new MaqetError(
          "MIGRATION_FAILED",
          `Live migration of VM '${view.name}' failed during the transfer: ${info["error-desc"] ?? `QEMU reports '${status}'`}. The VM keeps running on host '${request.fromHost}'.`,
          { details: { migrationId, status, phase: "transfer" } },
        );
      }
      const now = ports.clock.now();
      if (now - lastSample >= sampleEvery(now - t0)) {
        lastSample = now;
        await deps.record([progress(migrationId, info, passes)]);
        step("transfer", describeProgress(info, passes));
      }
      await nap(POLL_MS);
    }
    // ---- switchover: the guest is paused; the commit point.
    phase = "switchover";
    step(
      "switchover",
      `guest paused at pre-switchover after ${passes} pass(es): moving ownership to '${request.toHost}'`,
    );
    ports.crash?.("migrate.switchover");
  } catch (error) {
    watching.unsubscribe();
    await rollBack(deps, request, phase, error);
    throw error instanceof Cancelled
      ? cancelledError(view.name, request, phase, error.by)
      : asMigrationError(error, view.name, phase);
  }

  let epoch: number;
  try {
    ({ epoch } = await deps.commit(
      {
        migrationId,
        fromHost: request.fromHost,
        toHost: request.toHost,
        target: prepared.target,
        resume: deps.wasRunning,
      },
      switchover ? [switchover] : [],
    ));
  } catch (error) {
    watching.unsubscribe();
    await rollBack(deps, request, "switchover", error);
    throw asMigrationError(error, view.name, "switchover");
  }
  ports.crash?.("migrate.committed");

  // ---- completion: from here the destination is the VM.
  phase = "completion";
  step("completion", "ownership moved; sending the device state");
  await session.execute("migrate-continue", { state: "pre-switchover" });
  let final: MigrationInfo;
  // After the commit QEMU only sends what is left (bounded by the downtime limit); one that
  // never completes is left to the next load to settle (settle-migration.ts).
  const completionDeadline = ports.clock.now() + COMPLETION_WAIT_MS;
  for (let settled = 0; ; ) {
    if (ports.clock.now() > completionDeadline) {
      watching.unsubscribe();
      throw new MaqetError(
        "MIGRATION_FAILED",
        `Live migration of VM '${view.name}': QEMU did not complete within ${COMPLETION_WAIT_MS / 1000} s after the switchover; ownership has moved to '${request.toHost}', whose next load of the VM settles it.`,
        { details: { migrationId, phase: "completion" } },
      );
    }
    final = await queryMigrate(session);
    // Right after `completed`, QEMU 7.2 can still report downtime and total-time 0: read again.
    if (final.status === "completed" && (final["total-time"] ?? 0) === 0 && settled++ < 40) {
      await ports.clock.sleep(5);
      continue;
    }
    if (final.status === "completed" || final.status === "failed" || final.status === "cancelled") break;
    await ports.clock.sleep(5);
  }
  watching.unsubscribe();
  if (final.status !== "completed") {
    // QEMU re-activates the source's devices when the switchover fails: the source is the VM
    // again, committed back as the VM's owner.
    return failAfterCommit(deps, request, prepared, final, epoch);
  }
  let resumed = false;
  try {
    step("completion", `resuming the guest on host '${request.toHost}'`);
    ({ resumed } = await target.finish({ migrationId, resume: deps.wasRunning, epoch }));
  } catch (error) {
    // The destination agent went away: its next load of the VM resumes it (resumePending).
    step(
      "completion",
      `the destination did not confirm the resume (${messageOf(error)}); its agent resumes the VM when it next loads it`,
    );
  }
  await endSource(ports, session, view);
  const result: MigrationResult = {
    migrationId,
    vm: view.name,
    fromHost: request.fromHost,
    toHost: request.toHost,
    pid: prepared.target.pid,
    downtimeMs: final.downtime ?? 0,
    totalMs: final["total-time"] ?? ports.clock.now() - t0,
    ...(final["setup-time"] !== undefined ? { setupMs: final["setup-time"] } : {}),
    transferredBytes: final.ram?.transferred ?? 0,
    passes: Math.max(passes, final.ram?.["dirty-sync-count"] ?? 0),
    epoch,
    resumed,
  };
  await deps.recordAfterCommit(
    [
      vmEvent("vm.migrated", {
        migrationId,
        fromHost: request.fromHost,
        toHost: request.toHost,
        downtimeMs: result.downtimeMs,
        totalMs: result.totalMs,
        ...(result.setupMs !== undefined ? { setupMs: result.setupMs } : {}),
        transferredBytes: result.transferredBytes,
        passes: result.passes,
        resumed,
      }),
    ],
    epoch,
  );
  return result;
}

/** The source QEMU after a completed migration: `quit`, then SIGKILL if it lingers. */
async function endSource(ports: VmPorts, session: QmpSession, view: VmView): Promise<void> {
  await session.execute("quit", undefined, { timeoutMs: 2000 }).catch(() => undefined);
  await session.close().catch(() => undefined);
  if (view.pid === undefined) return;
  if (!(await ports.processes.waitGone(view.pid, view.vmId, 3000))) {
    ports.processes.kill(view.pid, "SIGKILL");
    await ports.processes.waitGone(view.pid, view.vmId, 3000);
  }
}

function progress(migrationId: string, info: MigrationInfo, passes: number): NewEvent {
  const ram = info.ram ?? {};
  return vmEvent("vm.migration-progress", {
    migrationId,
    status: info.status ?? "unknown",
    passes,
    transferredBytes: ram.transferred ?? 0,
    remainingBytes: ram.remaining ?? 0,
    totalBytes: ram.total ?? 0,
    mbps: ram.mbps ?? 0,
    ...(ram["dirty-pages-rate"] !== undefined ? { dirtyPagesRate: ram["dirty-pages-rate"] } : {}),
    ...(info["expected-downtime"] !== undefined ? { expectedDowntimeMs: info["expected-downtime"] } : {}),
  });
}

function describeProgress(info: MigrationInfo, passes: number): string {
  const ram = info.ram ?? {};
  const done = ram.total ? Math.round((100 * ((ram.total ?? 0) - (ram.remaining ?? 0))) / ram.total) : 0;
  return `pass ${passes}: ${done}% copied, ${Math.round((ram.remaining ?? 0) / MiB)} MiB left at ${Math.round(ram.mbps ?? 0)} Mbit/s`;
}

export type { MigrationTarget };
