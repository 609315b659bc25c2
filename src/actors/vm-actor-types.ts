/**
 * What a {@link VmActor} needs and what it hands out: its dependencies, the access an exclusive
 * operation or a live migration gets, the stop options and the default timeouts.
 *
 * @example
 * ```ts
 * const deps: VmActorDeps = { ports, store, onWarning: (m) => console.warn(m) };
 * await vm.exclusive(async (access: VmAccess) => access.record([vmEvent("vm.reset", { guest: false })]));
 * ```
 */
import type { NewEvent, StoredEvent } from "../events/envelope.ts";
import type { EventStore } from "../events/event-store.ts";
import type { QmpSession, VmPorts } from "./ports.ts";
import type { VmView } from "./vm-view.ts";

export interface VmActorDeps {
  ports: VmPorts;
  store: EventStore;
  /**
   * Told when a fact seen with no operation to fail (a crash, a guest power-off, a pause) could
   * not be recorded. Otherwise the next operation on the VM surfaces it.
   */
  onWarning?: (message: string) => void;
  /**
   * Run once when the actor is loaded, after reconciling and before any operation: gives a
   * request a dead process left open its true outcome (src/actors/recover-requests.ts).
   */
  recover?: (access: VmAccess) => Promise<void>;
}

/** What {@link VmActor.exclusive} hands to the work it runs. */
export interface VmAccess {
  view: VmView;
  /** True when QEMU runs and its QMP session is open. */
  running: boolean;
  session?: QmpSession;
  ports: VmPorts;
  record(events: readonly NewEvent[]): Promise<StoredEvent[]>;
}

/** What {@link VmActor.migrateOut} hands to the migration it runs. */
export interface MigrationAccess {
  view: VmView;
  session: QmpSession;
  ports: VmPorts;
  /** Whether the guest's vCPUs ran when the migration began. */
  wasRunning: boolean;
  /** Set by the migration once ownership moved (and cleared if it was moved back). */
  moved: boolean;
  record(events: readonly NewEvent[]): Promise<StoredEvent[]>;
  /** Events the migration appended through another path (the placement's transaction). */
  adopt(events: readonly StoredEvent[]): void;
}

export interface StopOptions {
  force?: boolean;
  timeoutMs?: number;
}

export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** How often a held lease is renewed (a third of the lease store's default 30 s time to live). */
export const LEASE_RENEW_MS = 10_000;
