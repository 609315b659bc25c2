/**
 * Progress of this instance's long operations (disk convert, snapshots) as an Observable.
 *
 * @example
 * ```ts
 * maqet.progress$.subscribe((p) => console.log(`${p.operation} ${p.subject}: ${p.percent}%`));
 * await maqet.convertDisk("/vms/a.qcow2", "/vms/a.raw", { format: "raw" });
 * ```
 */
import type { Observable } from "rxjs";
import type { MaqetContext } from "../maqet-context.ts";
import { type OperationProgress, progressObservable } from "../progress-hub.ts";

export type { OperationProgress } from "../progress-hub.ts";

export interface ProgressOps {
  /** Every progress value of this instance's long operations; the last one of each has `done`. */
  readonly progress$: Observable<OperationProgress>;
}

export function progressOps(ctx: MaqetContext): ProgressOps {
  return { progress$: progressObservable(ctx) };
}
