/**
 * The host catalogue: facts about the hosts of a cluster (many agents on one PostgreSQL), one
 * stream per host, `host-<name>` (category `host`). Part of the versioned event union beside the
 * VM catalogue (vm-events.ts); documented in docs/events.md and docs/cluster.md.
 *
 * @example
 * ```ts
 * const e = hostEvent("host.fenced", { method: "mark-dead" });
 * ```
 */
import type { NewEvent, StoredEvent } from "./envelope.ts";

/** How fencing of a host was confirmed. */
export type FenceMethod =
  /** The host's own agent stopped its VMs' QEMU after losing its lease (recorded when it can still write). */
  | "self"
  /** Its lease expired longer ago than its self-fence grace (plus a margin): it has fenced itself. */
  | "grace"
  /** An operator confirmed the host is dead (`maqet host mark-dead`). */
  | "mark-dead";

export interface HostCapacity {
  memoryBytes: number;
  cpus: number;
}

export interface HostEventData {
  /** An agent joined (or re-joined) the cluster under this name; `term` rises at every join. */
  "host.joined": {
    labels: Record<string, string>;
    capacity: HostCapacity;
    term: number;
    leaseTtlMs: number;
    fenceAfterMs: number;
  };
  /** The host's lease expired (judged by the database clock): it may be dead or cut off. */
  "host.suspected": { lastRenewal: string; expiredMs: number };
  /** The lease stayed expired past the down threshold. */
  "host.down": { lastRenewal: string; expiredMs: number };
  /** The host no longer runs its VMs: confirmed so, by `method`; `reason` says why when known. */
  "host.fenced": { method: FenceMethod; reason?: string; vmsStopped?: number };
  /** The host left the cluster: its agent stopped (`stopped`) or an operator removed it (`removed`). */
  "host.left": { reason: "stopped" | "removed" };
  /** `maqet host drain`: no new placements; its VMs are moved away. */
  "host.drain-requested": { vms: number };
  /** `maqet host restore`: placements may come here again. */
  "host.restored": Record<string, never>;
}

export type HostEventType = keyof HostEventData;

/** The current schema version of each host event type. */
export const HOST_EVENT_SCHEMA: { readonly [K in HostEventType]: number } = {
  "host.joined": 1,
  "host.suspected": 1,
  "host.down": 1,
  "host.fenced": 1,
  "host.left": 1,
  "host.drain-requested": 1,
  "host.restored": 1,
};

export type StoredHostEvent = { [K in HostEventType]: StoredEvent<K, HostEventData[K]> }[HostEventType];

/**
 * A new host event at its current schema version.
 *
 * @example
 * ```ts
 * hostEvent("host.left", { reason: "stopped" });
 * ```
 */
export function hostEvent<K extends HostEventType>(type: K, data: HostEventData[K]): NewEvent<K, HostEventData[K]> {
  return { type, schemaVersion: HOST_EVENT_SCHEMA[type], data };
}

/**
 * Narrows a stored event to the host catalogue (undefined for any other type).
 *
 * @example
 * ```ts
 * const e = asHostEvent(stored);
 * ```
 */
export function asHostEvent(event: StoredEvent): StoredHostEvent | undefined {
  return Object.hasOwn(HOST_EVENT_SCHEMA, event.type) ? (event as StoredHostEvent) : undefined;
}

/** The stream of a host: `host-<name>`. */
export function hostStreamId(name: string): string {
  return `host-${name}`;
}

/** Host names: what a host name may be (a DNS label, or several joined by dots). */
export const HOST_NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62})$/;
