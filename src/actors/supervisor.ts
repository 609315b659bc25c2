/**
 * Supervision, for a long-lived process (`createMaqet({ supervise: true })`, the agent): one live
 * actor per VM for as long as the process runs. At start every VM that is not removed is
 * rehydrated and a running QEMU reattached (crash-only: what happened while nobody watched is
 * recorded then, as by any command); from then on each actor watches its QEMU, so an exit (QMP
 * EOF, then the process gone), a guest power-off, reset, panic or pause is recorded the moment
 * it happens, with no command running. A sweep every `sweepMs` loads VMs defined since, or let
 * go by another process that held them (VM_BUSY now, supervised at the next sweep), and lets go
 * of removed ones. `stop()` stops the sweeps; the orchestrator's `close()` then stops watching
 * and releases the leases. QEMU is never touched.
 *
 * @example
 * ```ts
 * const supervisor = new Supervisor(orchestrator, { clock: systemClock, onWarning: console.warn });
 * await supervisor.start(); // every VM loaded, running ones watched
 * // ... serve requests ...
 * await supervisor.stop();
 * await orchestrator.close();
 * ```
 */
import { isMaqetError } from "../errors/maqet-error.ts";
import type { Orchestrator } from "./orchestrator.ts";
import type { Clock, LeaseHolder } from "./ports.ts";
import type { VmView } from "./vm-view.ts";

export interface SupervisorOptions {
  /** Paces the sweeps. */
  clock: Clock;
  /** How often VMs without a live actor are looked for. Default 2000 ms. */
  sweepMs?: number;
  /** VMs loaded at once by a sweep (each: a lease, a stream read, maybe a QMP reconnect). Default 8. */
  concurrency?: number;
  /** Supervision problems: a VM that could not be loaded, a sweep that failed. */
  onWarning?: (message: string) => void;
  /** Which VMs this process supervises (a cluster member: those placed on its host). Default: all. */
  accept?: (view: VmView) => boolean;
  /** Runs before each sweep (a cluster member refreshes its placements). */
  beforeSweep?: () => Promise<void>;
}

/** What one sweep did. */
export interface SweepReport {
  /** VMs with a live actor in this process after the sweep. */
  supervised: number;
  /** Names loaded by this sweep. */
  loaded: string[];
  /** Names another live process drives (VM_BUSY): loaded by a later sweep once it lets go. */
  busy: string[];
  /** Names that could not be loaded for another reason (told to onWarning). */
  failed: string[];
  /** Names let go: removed, or stale (loaded afresh by the next sweep). */
  released: string[];
}

export const DEFAULT_SWEEP_MS = 2000;

export class Supervisor {
  readonly #orchestrator: Orchestrator;
  readonly #options: SupervisorOptions;
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;
  /** Busy VMs already reported, by the holder's pid: each is told once. */
  readonly #toldBusy = new Map<string, number>();

  constructor(orchestrator: Orchestrator, options: SupervisorOptions) {
    this.#orchestrator = orchestrator;
    this.#options = options;
  }

  /** Loads every VM (the first sweep, awaited), then sweeps every `sweepMs` until {@link stop}. */
  async start(): Promise<SweepReport> {
    const report = await this.sweep();
    this.#loop ??= this.#run();
    return report;
  }

  /** One pass: lets go of removed and stale VMs, loads every VM this process does not hold. */
  async sweep(): Promise<SweepReport> {
    const orchestrator = this.#orchestrator;
    await this.#options.beforeSweep?.();
    const released = await orchestrator.releaseDone();
    const accept = this.#options.accept ?? (() => true);
    const views = (await orchestrator.views()).filter(accept);
    const todo = views.filter((v) => !orchestrator.holds(v.vmId));
    // Facts found while loading (an exit nobody saw, a reattach) share the sweep's correlation id.
    const scope = { metadata: { correlationId: crypto.randomUUID() } };
    const report: SweepReport = { supervised: 0, loaded: [], busy: [], failed: [], released };
    let next = 0;
    const worker = async () => {
      while (next < todo.length && !this.#stopping.signal.aborted) {
        const view = todo[next++]!;
        try {
          await orchestrator.actor(view.vmId, scope);
          report.loaded.push(view.name);
          this.#toldBusy.delete(view.vmId);
        } catch (error) {
          if (isMaqetError(error, "VM_NOT_FOUND")) continue; // removed meanwhile
          if (isMaqetError(error, "VM_BUSY")) {
            report.busy.push(view.name);
            const holder = error.details.holder as LeaseHolder | undefined;
            if (this.#toldBusy.get(view.vmId) !== holder?.pid) {
              this.#toldBusy.set(view.vmId, holder?.pid ?? -1);
              this.#warn(
                `VM '${view.name}' is driven by another process (${error.message}); supervised once it lets go.`,
              );
            }
            continue;
          }
          report.failed.push(view.name);
          this.#warn(`VM '${view.name}' could not be loaded: ${messageOf(error)}`);
        }
      }
    };
    const workers = Math.max(1, Math.min(this.#options.concurrency ?? 8, todo.length));
    await Promise.all(Array.from({ length: workers }, worker));
    report.supervised = views.filter((v) => orchestrator.holds(v.vmId)).length;
    return report;
  }

  /** Stops sweeping (waits for a sweep in progress). Watching stops with the orchestrator's close. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { clock } = this.#options;
    const signal = this.#stopping.signal;
    while (!signal.aborted) {
      try {
        await clock.sleep(this.#options.sweepMs ?? DEFAULT_SWEEP_MS, signal);
      } catch {
        return;
      }
      if (signal.aborted) return;
      await this.sweep().catch((error: unknown) => this.#warn(`sweep failed: ${messageOf(error)}`));
    }
  }

  #warn(message: string): void {
    this.#options.onWarning?.(`supervision: ${message}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
