/**
 * Live-migration facts in a VM's stream (part of the VM catalogue, vm-events.ts; docs/migration.md).
 * One migration is `vm.migration-requested` -> `-target-prepared` -> `-started` -> `-progress`
 * (sampled) -> `-switchover` -> `vm.owner-changed` (the commit point: from then on the
 * destination QEMU is the VM) -> `vm.migrated`; or it ends early with `vm.migration-failed` /
 * `vm.migration-cancelled` (the source keeps running). Every fact carries `migrationId`.
 *
 * @example
 * ```ts
 * const data: MigrationEventData["vm.migrated"] = { migrationId, downtimeMs: 41, totalMs: 812, transferredBytes: 9_000_000, passes: 3 };
 * ```
 */
import type { VmEventData } from "./vm-events.ts";

/** Where a migration was when it ended or was recovered. */
export type MigrationPhase =
  /** Before the destination QEMU listened (`-incoming defer`). */
  | "prepare"
  /** RAM being copied (QEMU status `setup`/`active`). */
  | "transfer"
  /** Paused at `pre-switchover`, ownership not yet moved. */
  | "switchover"
  /** Ownership moved; the destination not yet resumed. */
  | "completion";

/** The destination QEMU: its host and process (as `vm.started` names a run's), what `status` shows once it is the VM. */
export type MigrationTarget = { host: string } & Pick<
  VmEventData["vm.started"],
  "pid" | "qmpSocket" | "runtimeDir" | "pidFile" | "argv" | "binary" | "accel" | "qemuVersion"
>;

export interface MigrationEventData {
  "vm.migration-requested": {
    migrationId: string;
    fromHost: string;
    toHost: string;
    /** QEMU's `downtime-limit` (ms). */
    downtimeLimitMs: number;
    /** QEMU's `max-bandwidth` in MiB/s. */
    bandwidthMiBs: number;
    /** The whole migration is cancelled after this long (ms). */
    timeoutMs: number;
  };
  /** The destination QEMU runs with `-incoming defer -S` and listens at `uri`. */
  "vm.migration-target-prepared": { migrationId: string; uri: string } & MigrationTarget;
  "vm.migration-started": { migrationId: string; uri: string };
  /** A sample of QEMU's `query-migrate` (about one a second, and one per pass). */
  "vm.migration-progress": {
    migrationId: string;
    status: string;
    /** Dirty-bitmap syncs so far (`dirty-sync-count`). */
    passes: number;
    transferredBytes: number;
    remainingBytes: number;
    totalBytes: number;
    mbps: number;
    dirtyPagesRate?: number;
    expectedDowntimeMs?: number;
  };
  /** QEMU stopped the guest at `pre-switchover`: what is left goes in the downtime. */
  "vm.migration-switchover": { migrationId: string; passes: number; remainingBytes: number };
  /**
   * The commit point: ownership moved to `toHost` at owner epoch `epoch` (on a cluster, in the
   * same transaction as the placement); `target` is now the VM's QEMU.
   */
  "vm.owner-changed": {
    migrationId: string;
    fromHost: string;
    toHost: string;
    epoch: number;
    target: MigrationTarget;
    /** Whether the guest ran on the source: the destination is resumed (`cont`) once the state is in. */
    resume: boolean;
  };
  /**
   * The guest runs on the destination and the source QEMU is gone. Figures are QEMU's own;
   * `recovered`: a later driver finished a migration its coordinator did not (figures then absent).
   */
  "vm.migrated": {
    migrationId: string;
    fromHost: string;
    toHost: string;
    downtimeMs?: number;
    totalMs?: number;
    setupMs?: number;
    transferredBytes?: number;
    passes?: number;
    /** Whether the guest runs on the destination (false: it was paused before, or its resume is left to the destination's next load). */
    resumed?: boolean;
    recovered?: boolean;
  };
  /** The migration failed; the source keeps running (unless `phase` is `completion`: then see `reason`). */
  "vm.migration-failed": { migrationId: string; phase: MigrationPhase; reason: string; recovered?: boolean };
  /** Cancelled by `maqet migrate --cancel` or by its `--timeout`; the source keeps running. */
  "vm.migration-cancelled": { migrationId: string; phase: MigrationPhase; by: "user" | "timeout"; reason: string };
}

export const MIGRATION_EVENT_SCHEMA: { readonly [K in keyof MigrationEventData]: number } = {
  "vm.migration-requested": 1,
  "vm.migration-target-prepared": 1,
  "vm.migration-started": 1,
  "vm.migration-progress": 1,
  "vm.migration-switchover": 1,
  "vm.owner-changed": 1,
  "vm.migrated": 1,
  "vm.migration-failed": 1,
  "vm.migration-cancelled": 1,
};
