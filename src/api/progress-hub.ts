/**
 * Progress of long operations (disk convert, snapshots, a graceful stop's steps, a start's wait
 * condition, a wait for a busy VM) as one Observable per maqet instance:
 * the library exposes it as `maqet.progress$`, the CLI draws it (a bar on a TTY, plain lines
 * otherwise, nothing with --json). Each operation may also take its own `onProgress`.
 *
 * @example
 * ```ts
 * maqet.progress$.subscribe((p) => console.log(p.operation, p.subject, p.percent));
 * ```
 */
import { type Observable, Subject } from "rxjs";
import type { MaqetContext } from "./maqet-context.ts";

export interface OperationProgress {
  /** e.g. `disk.convert`, `snapshot.create`. */
  operation: string;
  /** What it works on, for a label: a file, or `<vm>:<tag>`. */
  subject: string;
  /** 0–100, never decreasing within one operation. */
  percent: number;
  /**
   * What it is doing, when a percentage says nothing: `vm.wait` (which operation holds the VM),
   * `vm.stop` (the graceful stop's step and how long it waits), `vm.start` (the wait condition).
   */
  message?: string;
  /** `vm.stop`: `powerdown`, `quit`, `sigterm`, `sigkill`; `vm.start`: `wait`. */
  step?: string;
  /** How long the current step waits at most, in ms (`vm.stop`, `vm.start`). */
  waitMs?: number;
  /** QEMU's pid, when known (`vm.stop`, `vm.start`). */
  pid?: number;
  /** Set on the last value of an operation (success or failure). */
  done?: boolean;
  /** False on the last value of an operation that failed. */
  ok?: boolean;
}

const hubs = new WeakMap<object, Subject<OperationProgress>>();

/** The instance's hub (one for every `as()` view of it). */
export function progressHub(ctx: MaqetContext): Subject<OperationProgress> {
  let hub = hubs.get(ctx.instance);
  if (hub === undefined) {
    hub = new Subject();
    hubs.set(ctx.instance, hub);
  }
  return hub;
}

/**
 * Runs `work` with a reporter that feeds both the instance's hub and the caller's callback, and
 * reports the end (done, ok) whatever happens.
 */
export async function withProgress<T>(
  ctx: MaqetContext,
  operation: string,
  subject: string,
  onProgress: ((percent: number) => void) | undefined,
  work: (report: (percent: number) => void) => Promise<T>,
): Promise<T> {
  const hub = progressHub(ctx);
  let last = -1;
  const report = (percent: number) => {
    if (percent <= last) return;
    last = percent;
    onProgress?.(percent);
    hub.next({ operation, subject, percent });
  };
  try {
    const result = await work(report);
    if (last < 100) report(100);
    hub.next({ operation, subject, percent: 100, done: true, ok: true });
    return result;
  } catch (error) {
    hub.next({ operation, subject, percent: Math.max(0, last), done: true, ok: false });
    throw error;
  }
}

export function progressObservable(ctx: MaqetContext): Observable<OperationProgress> {
  return progressHub(ctx).asObservable();
}
