/**
 * maqet: an embeddable, event-sourced QEMU orchestration core.
 * The one public entry point: named exports only. `pg` and PGlite are loaded only when that
 * store is chosen.
 *
 * @example
 * ```ts
 * import { createMaqet, isMaqetError } from "maqet";
 * const maqet = createMaqet();
 * try {
 *   await maqet.start("web");
 * } catch (e) {
 *   if (isMaqetError(e, "VM_NOT_FOUND")) console.error(e.message);
 * } finally {
 *   await maqet.close();
 * }
 * ```
 */

export type { ImageCheck, ImageInfo, ImageSnapshot } from "./actors/disk-image-port.ts";
export { type EventLine, toEventLine } from "./api/commands/events-commands.ts";
export { COMMANDS, type CommandSpec, findCommand } from "./api/commands.ts";
export type { HistoryEntry } from "./api/history-entry.ts";
export type {
  AttachConsoleOptions,
  AuditBreak,
  AuditEntry,
  AuditFilter,
  AuditVerification,
  CallerIdentity,
  ConsoleAttachment,
  ConsoleConnection,
  ConsoleEnd,
  ConvertDiskOptions,
  CreateDiskOptions,
  DiskConverted,
  DiskCreated,
  DoctorCheck,
  DoctorReport,
  ForwardEntry,
  HistoryAt,
  HistoryPoint,
  KeyOptions,
  MaqetStats,
  OperationProgress,
  PortList,
  ReplayStep,
  ScreendumpOptions,
  SnapshotListing,
  SnapshotOptions,
  SnapshotOutcome,
  SshTarget,
} from "./api/maqet.ts";
export {
  type AddOptions,
  createMaqet,
  type FollowOptions,
  type Maqet,
  type MaqetOptions,
  type QmpOptions,
  type SerialConsole,
  type StartOptions,
  type StopVmOptions,
  type VmConfigInput,
} from "./api/maqet.ts";
export type { EventsMessage, EventsOps, EventsSubscribeOptions } from "./api/ops/events-ops.ts";
export { type JsonSchema, vmConfigSchema } from "./api/vm-config-schema.ts";
export type { VmStatus } from "./api/vm-status.ts";
export { createRemoteMaqet, type RemoteMaqetOptions } from "./client/remote-maqet.ts";
export type { QmpRules, QmpTier } from "./config/qmp-rules.ts";
export type {
  Accel,
  ArgumentItem,
  CloudInitConfig,
  DiskDevice,
  PortForward,
  VirtfsShare,
  VmConfig,
} from "./config/vm-config.ts";
export { ERROR_CODES, type ErrorCode, exitCodeOf } from "./errors/error-codes.ts";
export { isMaqetError, MaqetError } from "./errors/maqet-error.ts";
export {
  type Checkpoint,
  compareCheckpoints,
  formatCheckpoint,
  isCheckpoint,
  parseCheckpoint,
} from "./events/checkpoint.ts";
export type { ConsoleDetachReason, ConsoleHolderFacts, ConsoleMode } from "./events/console-events.ts";
export type { EventActor, EventMetadata, NewEvent, StoredEvent } from "./events/envelope.ts";
export type {
  AppendOptions,
  AppendResult,
  DeliveryHold,
  DeliveryHolder,
  EventFilter,
  EventStore,
  ExpectedVersion,
  ReadAllOptions,
  ReadStreamOptions,
  SubscribeFrom,
  SubscribeOptions,
  SubscriptionMessage,
} from "./events/event-store.ts";
export { QMP_EVENT_SCHEMA, QMP_TIER_COMMANDS, type QmpEventData, qmpTierOf } from "./events/qmp-events.ts";
export type { DriveSnapshots, SnapshotMethod, SnapshotRecord } from "./events/snapshot-events.ts";
export {
  type PausedDetail,
  type StoppedDetail,
  type StoredVmEvent,
  VM_EVENT_SCHEMA,
  type VmEventData,
  type VmEventType,
} from "./events/vm-events.ts";
