/**
 * The maqet facade: one object for everything a program (or the CLI) does with VMs.
 * `createMaqet` wires the real adapters; nothing is opened until the first call.
 * Directories come from options or from the `env` you pass (the CLI passes `process.env`);
 * without `env`, only binary lookup falls back to this process's PATH.
 *
 * @example
 * ```ts
 * import { createMaqet } from "maqet";
 * const maqet = createMaqet({ dataDir: "/tmp/maqet-demo" });
 * await maqet.add("examples/demo.yaml");
 * await maqet.start("demo");
 * console.log(await maqet.qmp("demo", "query-status"));
 * await maqet.stop("demo");
 * console.log((await maqet.history("demo")).map((e) => e.type));
 * await maqet.close();
 * ```
 */
import { createRemoteMaqet } from "../client/remote-maqet.ts";
import type { CallerIdentity } from "./caller-identity.ts";
import type { MaqetContext } from "./maqet-context.ts";
import { createMaqetContext } from "./maqet-context.ts";
import type { MaqetOptions } from "./maqet-options.ts";
import { type AuditOps, auditOps } from "./ops/audit-ops.ts";
import { type ConsoleAttachOps, consoleAttachOps } from "./ops/console-attach-ops.ts";
import { type ConsoleOps, consoleOps } from "./ops/console-ops.ts";
import { type DiskOps, diskOps } from "./ops/disk-ops.ts";
import { type DoctorOps, doctorOps } from "./ops/doctor-ops.ts";
import { type EventsOps, eventsOps } from "./ops/events-ops.ts";
import { type GuestOps, guestOps } from "./ops/guest-ops.ts";
import { type HistoryOps, historyOps } from "./ops/history-ops.ts";
import { type HostOps, hostOps } from "./ops/host-ops.ts";
import { type InspectOps, inspectOps } from "./ops/inspect-ops.ts";
import { type LifecycleOps, lifecycleOps } from "./ops/lifecycle-ops.ts";
import { type MaqetCompatOps, maqetCompatOps } from "./ops/maqet-compat-ops.ts";
import { type MigrationOps, migrationOps } from "./ops/migration-ops.ts";
import { type ProgressOps, progressOps } from "./ops/progress-ops.ts";
import { type ProjectionOps, projectionOps } from "./ops/projection-ops.ts";
import { type QmpOps, qmpOps } from "./ops/qmp-ops.ts";
import { type ReconfigureOps, reconfigureOps } from "./ops/reconfigure-ops.ts";
import { type SnapshotOps, snapshotOps } from "./ops/snapshot-ops.ts";
import { type StatsOps, statsOps } from "./ops/stats-ops.ts";
import { type TimeTravelOps, timeTravelOps } from "./ops/time-travel-ops.ts";
import { executeRouted, withRouting } from "./route-commands.ts";

export type { CallerIdentity } from "./caller-identity.ts";
export type { MaqetOptions } from "./maqet-options.ts";
export type { AuditBreak, AuditEntry, AuditFilter, AuditOps, AuditVerification } from "./ops/audit-ops.ts";
export type {
  AttachConsoleOptions,
  ConsoleAttachment,
  ConsoleAttachOps,
  ConsoleConnection,
  ConsoleDetachFacts,
  ConsoleEnd,
} from "./ops/console-attach-ops.ts";
export type { ConsoleOps, FollowOptions, SerialConsole } from "./ops/console-ops.ts";
export type { ConvertDiskOptions, CreateDiskOptions, DiskConverted, DiskCreated, DiskOps } from "./ops/disk-ops.ts";
export type { DoctorCheck, DoctorOps, DoctorReport } from "./ops/doctor-ops.ts";
export type { EventsMessage, EventsOps, EventsSubscribeOptions } from "./ops/events-ops.ts";
export type { ForwardEntry, GuestOps, PortList, SshTarget } from "./ops/guest-ops.ts";
export type { HistoryOps } from "./ops/history-ops.ts";
export type { HostOps } from "./ops/host-ops.ts";
export type { InspectOps, VmInspection } from "./ops/inspect-ops.ts";
export type { AddOptions, LifecycleOps, StartOptions, StopVmOptions, VmConfigInput } from "./ops/lifecycle-ops.ts";
export type {
  AddConfigsOptions,
  CleanupReport,
  MaqetCompatOps,
  OrphanReport,
  StorageVerification,
  VmInfo,
} from "./ops/maqet-compat-ops.ts";
export type { OperationProgress, ProgressOps } from "./ops/progress-ops.ts";
export type { ProjectionInfo, ProjectionOps, RebuildResult } from "./ops/projection-ops.ts";
export type { KeyOptions, QmpOps, QmpOptions, ScreendumpOptions } from "./ops/qmp-ops.ts";
export type { ApplyOptions, ReconfigureOps, ReconfigureResult, ReplaceConfigOptions } from "./ops/reconfigure-ops.ts";
export type { SnapshotListing, SnapshotOps, SnapshotOptions, SnapshotOutcome } from "./ops/snapshot-ops.ts";
export type { MaqetStats, StatsOps } from "./ops/stats-ops.ts";
export type { HistoryAt, HistoryPoint, ReplayStep, TimeTravelOps } from "./ops/time-travel-ops.ts";

/** Store-level operations. */
export interface StoreOps {
  /** Applies pending schema migrations (also done on open); returns their names. */
  migrate(): Promise<string[]>;
  /** Closes QMP connections and the store (of the instance, also when called on an `as()` view). Running VMs keep running. */
  close(): Promise<void>;
}

/** Acting for another caller (an agent serving many users). */
export interface CallerOps {
  /**
   * A view of this same instance (same store, same live VMs) whose every operation stamps
   * `caller` on the events it appends (`metadata.actor`: the identity fields given;
   * `metadata.source`), with that operation's own fresh correlation id (or
   * `caller.correlationId` when given). Views share nothing mutable: 50 callers acting at once
   * each find their own identity and correlation id on their own events. Operations on one VM
   * run one at a time, in call order (a caller that must wait sees `vm.wait` on `progress$`);
   * operations on different VMs run in parallel.
   *
   * @example
   * ```ts
   * const maqet = createMaqet({ source: "agent" });
   * const alice = maqet.as({ user: "alice", uid: 1000, pid: 4242, host: "lab1" });
   * await alice.start("web");
   * (await maqet.history("web")).at(-1)?.actor; // { user: "alice", uid: 1000, pid: 4242, host: "lab1" }
   * ```
   */
  as(caller: CallerIdentity): Maqet;
}

/**
 * The whole facade: one operation group per concern (src/api/ops/*). A new group is a file there
 * plus one line in this interface and one in {@link createMaqet}.
 */
export interface Maqet
  extends LifecycleOps,
    InspectOps,
    QmpOps,
    HistoryOps,
    EventsOps,
    TimeTravelOps,
    AuditOps,
    StatsOps,
    ConsoleOps,
    GuestOps,
    ConsoleAttachOps,
    SnapshotOps,
    DiskOps,
    DoctorOps,
    ProgressOps,
    ProjectionOps,
    ReconfigureOps,
    MaqetCompatOps,
    HostOps,
    MigrationOps,
    StoreOps,
    CallerOps {}

function storeOps(ctx: MaqetContext): StoreOps {
  return {
    migrate: async () => (await ctx.open()).migrate(),
    close: () => ctx.close(),
  };
}

export function createMaqet(options: MaqetOptions = {}): Maqet {
  if (options.agent !== undefined) {
    return createRemoteMaqet({
      agent: options.agent,
      ...(options.agentToken ? { token: options.agentToken } : {}),
      ...(options.source ? { source: options.source } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
  }
  const ctx = createMaqetContext(options);
  const maqet = facade(ctx);
  // A cluster member runs the commands routed to it on this same instance, as their caller.
  ctx.hooks.execute = (command) => executeRouted(maqet, command, ctx);
  return maqet;
}

function facade(ctx: MaqetContext): Maqet {
  return withRouting(ctx, {
    ...lifecycleOps(ctx),
    ...inspectOps(ctx),
    ...qmpOps(ctx),
    ...historyOps(ctx),
    ...eventsOps(ctx),
    ...timeTravelOps(ctx),
    ...auditOps(ctx),
    ...statsOps(ctx),
    ...consoleOps(ctx),
    ...guestOps(ctx),
    ...consoleAttachOps(ctx),
    ...snapshotOps(ctx),
    ...diskOps(ctx),
    ...doctorOps(ctx),
    ...progressOps(ctx),
    ...projectionOps(ctx),
    ...reconfigureOps(ctx),
    ...maqetCompatOps(ctx),
    ...storeOps(ctx),
    ...hostOps(ctx),
    ...migrationOps(ctx),
    as: (caller) => facade(ctx.as(caller)),
  });
}
