/**
 * Placement facts in a VM's stream (part of the VM catalogue, vm-events.ts): where a VM runs in a
 * cluster, and its recovery after its host was lost. Each `vm.placed` carries the new owner
 * epoch, the fencing token the store checks (migrations/0009-hosts.ts).
 *
 * @example
 * ```ts
 * const data: PlacementEventData["vm.placed"] = { host: "lab2", reason: "new", epoch: 1 };
 * ```
 */

/** Why a VM was placed where it is. */
export type PlacementReason =
  /** `add --host NAME`. */
  | "pinned"
  /** `add`: the scheduler chose (fewest VMs, ties at random, labels and free capacity). */
  | "new"
  /** Its host was drained: stop here, start there. */
  | "evacuation"
  /** Its host was lost and fenced; `ha: restart` brings it back elsewhere. */
  | "recovery"
  /** A live migration moved it (`maqet migrate`, `host drain --live`); `vm.owner-changed` follows in the same transaction. */
  | "migration"
  /** Adopted by the first host that saw it without a placement (a VM defined before clustering). */
  | "adopted";

export interface PlacementEventData {
  /** The VM's owner host changed; `epoch` is the new owner epoch (+1), `from` the previous owner. */
  "vm.placed": {
    host: string;
    reason: PlacementReason;
    epoch: number;
    from?: string;
    constraints?: Record<string, string>;
  };
  /** The VM's host was fenced and the VM (`ha: restart`) is about to be placed elsewhere. */
  "vm.recovering": { from: string; fenceMethod: string };
}

export const PLACEMENT_EVENT_SCHEMA: { readonly [K in keyof PlacementEventData]: number } = {
  "vm.placed": 1,
  "vm.recovering": 1,
};
