/**
 * The `qmp` stream category: QMP security tiers (the vocabulary every QMP fact carries) and the
 * one event that does not belong to a VM's stream, `qmp.command-rejected`.
 *
 * A refused command never touches the VM: not its QEMU, not its actor, not its stream (the
 * check runs before the VM is even looked up, so the VM may not exist). Every refusal is
 * appended to the store-wide stream {@link QMP_REJECTIONS_STREAM} instead, naming the VM as the
 * caller gave it. Documented in docs/events.md and docs/security.md.
 *
 * @example
 * ```ts
 * qmpTierOf("human-monitor-command"); // "dangerous"
 * const e = qmpEvent("qmp.command-rejected", { command: "inject-nmi", tier: "dangerous", rule: "tier:dangerous", vm: "web", argumentNames: [] });
 * ```
 */
import type { QmpTier } from "../config/qmp-rules.ts";
import type { NewEvent, StoredEvent } from "./envelope.ts";

export type { QmpTier } from "../config/qmp-rules.ts";

/** The commands that are not `safe`, by tier (MAQET's lists, kept as they were). */
export const QMP_TIER_COMMANDS: { readonly [K in Exclude<QmpTier, "safe">]: readonly string[] } = {
  dangerous: ["human-monitor-command", "inject-nmi"],
  privileged: ["system_powerdown", "system_reset", "quit", "device_del", "blockdev-del"],
  "memory-dump": ["pmemsave", "memsave"],
};

/** The tier of a QMP command name; unknown names are `safe` (QEMU itself refuses what it lacks). */
export function qmpTierOf(command: string): QmpTier {
  for (const tier of ["dangerous", "privileged", "memory-dump"] as const) {
    if (QMP_TIER_COMMANDS[tier].includes(command)) return tier;
  }
  return "safe";
}

/** The stream every `qmp.command-rejected` is appended to (category `qmp`). */
export const QMP_REJECTIONS_STREAM = "qmp-rejections";

export interface QmpEventData {
  "qmp.command-rejected": {
    command: string;
    tier: QmpTier;
    /** The rule that refused it, e.g. `tier:dangerous`, `global:deny:quit`, `vm:allow` (see docs/security.md). */
    rule: string;
    /** The VM as the caller named it (name or id); it may not exist. */
    vm: string;
    /** Set when the refusal came from the VM's own `qmp:` rules (the VM was found). */
    vmId?: string;
    /** Argument names only, never values. */
    argumentNames: string[];
  };
}

export type QmpEventType = keyof QmpEventData;

/** The current schema version of each `qmp` category event type. */
export const QMP_EVENT_SCHEMA: { readonly [K in QmpEventType]: number } = {
  "qmp.command-rejected": 1,
};

export type StoredQmpEvent = { [K in QmpEventType]: StoredEvent<K, QmpEventData[K]> }[QmpEventType];

/** Builds a new `qmp` category event at its current schema version. */
export function qmpEvent<K extends QmpEventType>(type: K, data: QmpEventData[K]): NewEvent<K, QmpEventData[K]> {
  return { type, schemaVersion: QMP_EVENT_SCHEMA[type], data };
}

/** Narrows a stored event to this catalogue; undefined for any other type. */
export function asQmpEvent(event: StoredEvent): StoredQmpEvent | undefined {
  return Object.hasOwn(QMP_EVENT_SCHEMA, event.type) ? (event as StoredQmpEvent) : undefined;
}
