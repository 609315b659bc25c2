/**
 * The event catalogue: a closed, versioned, discriminated union of every fact maqet records.
 * Dotted type names; `schemaVersion` per type; old payloads are upcast on read, never rewritten.
 * Documented in docs/events.md.
 *
 * @example
 * ```ts
 * const e = vmEvent("vm.stop-requested", { force: false, timeoutMs: 30000 });
 * ```
 */
import { decodeStoredConfig, encodeStoredConfig } from "../config/stored-config.ts";
import type { PortForward, VmConfig } from "../config/vm-config.ts";
import { CONSOLE_EVENT_SCHEMA, type ConsoleEventData } from "./console-events.ts";
import type { NewEvent, StoredEvent } from "./envelope.ts";
import { MIGRATION_EVENT_SCHEMA, type MigrationEventData } from "./migration-events.ts";
import { PLACEMENT_EVENT_SCHEMA, type PlacementEventData } from "./placement-events.ts";
import { type QmpTier, qmpTierOf } from "./qmp-events.ts";
import { SNAPSHOT_EVENT_SCHEMA, type SnapshotEventData } from "./snapshot-events.ts";

/** Why a VM stopped. One detail means one situation (libvirt-style). */
export type StoppedDetail =
  /** The guest powered off (ACPI shutdown, `poweroff`), or QEMU reported SHUTDOWN after our powerdown. */
  | "shutdown"
  /** maqet ended the process itself (`quit`, SIGTERM, SIGKILL: see `method`). */
  | "destroyed"
  /** A maqet process watching the VM saw QEMU exit with no SHUTDOWN first. */
  | "crashed"
  /** The start did not complete; QEMU was cleaned up. */
  | "failed"
  /** QEMU was found gone when maqet next looked; no maqet process saw it exit. */
  | "exited-unsupervised";

export type PausedDetail =
  | "user"
  | "ioerror"
  | "watchdog"
  | "guest-panic"
  /** The guest suspended itself to RAM (ACPI S3; QMP SUSPEND). */
  | "suspended"
  | "shutdown"
  /** QEMU paused the guest to save or load a snapshot (a maqet snapshot job); it resumes by itself. */
  | "snapshot"
  | "unknown";

export type StopMethod = "powerdown" | "quit" | "sigterm" | "sigkill" | "none";

export interface VmEventData extends SnapshotEventData, ConsoleEventData, PlacementEventData, MigrationEventData {
  /**
   * Schema 2: `config` is stored in its ordered form (src/config/stored-config.ts: mappings as
   * `[key, value]` pairs, which jsonb cannot reorder); {@link vmEvent} encodes and
   * {@link asVmEvent} decodes, so readers see a {@link VmConfig}. Schema 1 stored the config as
   * plain JSON objects, whose key order jsonb lost: read as before, flagged
   * (`config.argumentOrderLost`).
   */
  "vm.defined": { vmId: string; name: string; config: VmConfig; configPath?: string };
  /** `runtimeDir`: where this run's pidfile and sockets go, so an interrupted start can be found. */
  "vm.start-requested": { timeoutMs: number; runtimeDir?: string };
  /**
   * A process took over a running VM after its previous driver died, or found it alive while the
   * stream said it was starting or stopping: what it observed (QEMU's run state).
   */
  "vm.reattached": {
    pid: number;
    status: string;
    running: boolean;
    previousHolder?: { host: string; pid: number; command: string };
  };
  "vm.started": {
    pid: number;
    qmpSocket: string;
    runtimeDir: string;
    pidFile: string;
    argv: string[];
    binary: string;
    accel: string;
    qemuVersion?: string;
    durationMs: number;
    /**
     * `ports:` as this run forwards them, host ports resolved (a `0` in the config is the free
     * port chosen at start): what `maqet port` and `maqet ssh` read. Absent without `ports:`
     * (and in events written before maqet had ports; an optional field, so still schema 1).
     */
    forwards?: PortForward[];
  };
  /** The start succeeded, but what `--wait-for` waited for did not happen in time; the VM runs on. */
  "vm.wait-failed": { condition: string; timeoutMs: number };
  "vm.start-failed": { reason: string; message: string; stderr?: string; durationMs: number };
  "vm.stop-requested": { force: boolean; timeoutMs: number };
  /** One step of a stop as it is taken: ACPI powerdown, then quit, SIGTERM, SIGKILL. */
  "vm.stop-step": { step: "powerdown" | "quit" | "sigterm" | "sigkill" };
  "vm.stopped": {
    detail: StoppedDetail;
    /** How maqet ended it, for `destroyed`/`shutdown` after a stop request. */
    method?: StopMethod;
    /** QMP SHUTDOWN's `guest` flag and `reason`, when one was seen. */
    guest?: boolean;
    reason?: string;
    exitCode?: number | null;
    signal?: string | null;
    pid?: number;
  };
  "vm.paused": { detail: PausedDetail; reason?: string };
  "vm.resumed": { reason?: string };
  /** The machine was reset: by the host (`maqet reset`, QMP system_reset) or by the guest (reboot). */
  "vm.reset": { guest: boolean; reason?: string };
  /** QEMU reported a guest panic (QMP GUEST_PANICKED); what QEMU did next follows as its own fact. */
  "vm.guest-panicked": { action?: string };
  "vm.removed": { force: boolean };
  /**
   * A stopped VM's config was changed in place (`maqet apply`, `maqet edit`): same VM, same id,
   * same stream. `before` and `after` are whole configs; `changed` the top-level keys that differ;
   * `reason` the why (given, or the command that did it). Who did it is the envelope's actor.
   */
  "vm.reconfigured": {
    before: VmConfig;
    after: VmConfig;
    changed: string[];
    via: "apply" | "edit" | "library";
    reason: string;
    configPaths?: string[];
  };
  "disk.created": { drive: string; file: string; format: string; size?: string; durationMs: number };
  "qmp.command-executed": {
    command: string;
    /** Argument names only: values can hold secrets and never reach the store. */
    argumentNames: string[];
    /** Argument values, only for the commands of `QMP_VALUE_SAFE_COMMANDS` (docs/security.md). */
    arguments?: Record<string, unknown>;
    outcome: "ok" | "error";
    errorClass?: string;
    errorDesc?: string;
    durationMs: number;
    /** Schema 2: the command's security tier, and the policy rule that allowed it (`unchecked` in schema 1 events). */
    tier: QmpTier;
    rule: string;
  };
  /**
   * A dangerous QMP command was allowed (`--allow-dangerous`): QEMU may now be in a state maqet
   * does not model (libvirt's "tainted: custom-monitor"). Recorded before the command is sent;
   * `status` and `ls` show it until the next start.
   */
  "vm.tainted": { reason: "custom-monitor"; command: string };
}

export type VmEventType = keyof VmEventData;

/** The current schema version of each event type. */
export const VM_EVENT_SCHEMA: { readonly [K in VmEventType]: number } = {
  "vm.defined": 2,
  "vm.start-requested": 1,
  "vm.reattached": 1,
  "vm.started": 1,
  "vm.start-failed": 1,
  "vm.wait-failed": 1,
  "vm.stop-requested": 1,
  "vm.stop-step": 1,
  "vm.stopped": 1,
  "vm.paused": 1,
  "vm.resumed": 1,
  "vm.reset": 1,
  "vm.guest-panicked": 1,
  "vm.removed": 1,
  "vm.reconfigured": 2,
  "disk.created": 1,
  "qmp.command-executed": 2,
  "vm.tainted": 1,
  ...SNAPSHOT_EVENT_SCHEMA,
  ...CONSOLE_EVENT_SCHEMA,
  ...PLACEMENT_EVENT_SCHEMA,
  ...MIGRATION_EVENT_SCHEMA,
};

export type NewVmEvent = { [K in VmEventType]: NewEvent<K, VmEventData[K]> }[VmEventType];
export type StoredVmEvent = { [K in VmEventType]: StoredEvent<K, VmEventData[K]> }[VmEventType];
/** A catalogue event without its id and metadata: what a fold reads (a projection rebuild reads no more). */
export type VmEventFacts = { [K in VmEventType]: Omit<StoredEvent<K, VmEventData[K]>, "id" | "metadata"> }[VmEventType];

/**
 * Builds a new event of the given type at its current schema version. A `vm.defined` config is
 * put in its stored (ordered) form here: `data` is then what the store keeps, and
 * {@link asVmEvent} gives the {@link VmConfig} back.
 */
export function vmEvent<K extends VmEventType>(type: K, data: VmEventData[K]): NewEvent<K, VmEventData[K]> {
  if (type === "vm.defined") {
    const defined = data as VmEventData["vm.defined"];
    const stored = { ...defined, config: encodeStoredConfig(defined.config) };
    return { type, schemaVersion: VM_EVENT_SCHEMA[type], data: stored as unknown as VmEventData[K] };
  }
  if (type === "vm.reconfigured") {
    // Both configs in the same ordered form as vm.defined's (schema 2).
    const change = data as VmEventData["vm.reconfigured"];
    const stored = { ...change, before: encodeStoredConfig(change.before), after: encodeStoredConfig(change.after) };
    return { type, schemaVersion: VM_EVENT_SCHEMA[type], data: stored as unknown as VmEventData[K] };
  }
  return { type, schemaVersion: VM_EVENT_SCHEMA[type], data };
}

export function isVmEventType(type: string): type is VmEventType {
  return Object.hasOwn(VM_EVENT_SCHEMA, type);
}

/**
 * Narrows a stored event to the catalogue, upcasting old schema versions.
 * Returns undefined for a type this version does not know (a newer writer's event).
 */
export function asVmEvent(event: StoredEvent): StoredVmEvent | undefined;
export function asVmEvent(event: Omit<StoredEvent, "id" | "metadata">): VmEventFacts | undefined;
export function asVmEvent(event: Omit<StoredEvent, "id" | "metadata">): VmEventFacts | undefined {
  if (!isVmEventType(event.type)) return undefined;
  // Upcasters, keyed by type and version.
  if (event.type === "vm.defined") {
    // Schema 2 is decoded from its ordered form; schema 1 is read as stored and flagged where the
    // lost key order changes the argv (decodeStoredConfig tells them apart by `$ordered`).
    const data = event.data as VmEventData["vm.defined"];
    return { ...event, schemaVersion: 2, data: { ...data, config: decodeStoredConfig(data.config) } } as VmEventFacts;
  }
  if (event.type === "vm.reconfigured") {
    // Schema 2 stores both configs ordered; schema 1 (before config fidelity) is read as stored.
    const data = event.data as VmEventData["vm.reconfigured"];
    return {
      ...event,
      schemaVersion: 2,
      data: { ...data, before: decodeStoredConfig(data.before), after: decodeStoredConfig(data.after) },
    } as VmEventFacts;
  }
  if (event.type === "qmp.command-executed" && event.schemaVersion === 1) {
    // Schema 1 predates QMP tiers: the tier follows from the name; no policy ran.
    const data = event.data as Omit<VmEventData["qmp.command-executed"], "tier" | "rule">;
    return {
      ...event,
      schemaVersion: 2,
      data: { ...data, tier: qmpTierOf(data.command), rule: "unchecked" },
    } as VmEventFacts;
  }
  return event as VmEventFacts;
}

export function vmStreamId(vmId: string): string {
  return `vm-${vmId}`;
}
