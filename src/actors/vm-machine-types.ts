/**
 * The VM machine's vocabulary: the commands it accepts, what it keeps in its context, and how
 * an operation's outcome is reported back to the caller.
 *
 * @example
 * ```ts
 * const start: VmCommand = { type: "START", opId: "vm-1:1", timeoutMs: 30000 };
 * ```
 */
import type { StoredEvent } from "../events/envelope.ts";
import type { StopMethod } from "../events/vm-events.ts";
import type { LaunchedVm } from "./launch-qemu.ts";
import type { LaunchedProcess, LeaseHolder, QmpSession } from "./ports.ts";
import type { ReattachResult } from "./reattach-qemu.ts";
import type { StopOutcome } from "./stop-qemu.ts";
import type { VmView } from "./vm-view.ts";
import type { WatchEvent } from "./watch-qemu.ts";

export type VmCommand =
  | { type: "START"; opId: string; timeoutMs: number; runtimeDir?: string }
  | { type: "STOP"; opId: string; force: boolean; timeoutMs: number }
  | { type: "REMOVE"; opId: string; force: boolean; timeoutMs: number };

/** Facts recorded outside a machine transition (observations), applied to the view in order. */
export type RecordedEvent = { type: "RECORDED"; events: StoredEvent[] };

/**
 * A live migration out (VmActor `migrateOut`) takes over QEMU's events while it runs; at its end
 * the VM either moved (this machine retires) or stayed (the source runs on, watched again).
 */
export type MigrationEvent = { type: "MIGRATION.BEGIN" } | { type: "MIGRATION.END"; moved: boolean; running: boolean };

export type VmMachineEvent = VmCommand | WatchEvent | RecordedEvent | MigrationEvent;

export interface VmOutcome {
  opId: string;
  ok: boolean;
  error?: unknown;
  /** Nothing had to be done (stop of a stopped VM). */
  noop?: boolean;
}

export interface VmMachineContext {
  view: VmView;
  /** What reconciling found when QEMU was gone (an orphan of an interrupted start it ended). */
  gone?: Extract<ReattachResult, { kind: "gone" }>;
  /** The dead process whose lease this one took over, if any: its VM is reattached as a fact. */
  recoveredFrom?: LeaseHolder;
  session?: QmpSession;
  launched?: LaunchedProcess;
  op?: VmCommand;
  outcome?: VmOutcome;
  /** Whether QEMU's vCPUs run (false after a QMP STOP), as last observed. */
  observedRunning: boolean;
  launchResult?: LaunchedVm;
  failure?: unknown;
  stopOutcome?: StopOutcome;
  shutdown?: { guest: boolean; reason?: string; method?: StopMethod };
  exit?: { exitCode: number | null; signal: string | null };
}

export interface FinishInput {
  name: string;
  pid: number;
  marker: string;
  session?: QmpSession;
}
