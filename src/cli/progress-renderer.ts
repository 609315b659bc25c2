/**
 * Draws long operations' progress on stderr: a bar redrawn in place on a terminal, plain lines
 * (every 10 %) otherwise; the CLI does not subscribe at all with `--json`.
 *
 * @example
 * ```ts
 * const sub = renderProgress(maqet.progress$, { isTTY: process.stderr.isTTY, write: (t) => process.stderr.write(t) });
 * ```
 */
import type { Observable, Subscription } from "rxjs";
import type { OperationProgress } from "../api/progress-hub.ts";

export interface ProgressSink {
  isTTY: boolean;
  /** Writes text as is (no newline added). */
  write(text: string): void;
  /** Terminal width (default 80). */
  columns?: number;
}

const LABELS: Record<string, string> = {
  "disk.convert": "converting",
  "snapshot.create": "snapshot",
  "snapshot.load": "loading snapshot",
  "snapshot.delete": "deleting snapshot",
};

export function renderProgress(progress$: Observable<OperationProgress>, sink: ProgressSink): Subscription {
  const lastStep = new Map<string, number>();
  let drawn = false;
  return progress$.subscribe((p) => {
    // A start's wait (`--wait-for ssh`) has no percentage: say once what it waits for.
    if (p.operation === "vm.wait-for") {
      if (p.message !== undefined && !p.done) sink.write(`${drawn ? "\n" : ""}maqet: ${p.message}\n`);
      drawn = false;
      return;
    }
    const label = `${LABELS[p.operation] ?? p.operation} ${p.subject}`;
    const percent = Math.floor(p.percent);
    if (sink.isTTY) {
      const width = Math.max(10, Math.min(40, (sink.columns ?? 80) - label.length - 10));
      const filled = Math.round((width * percent) / 100);
      sink.write(
        `\r\x1b[2K${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(percent).padStart(3)}%`,
      );
      drawn = true;
      if (p.done) {
        sink.write(p.ok === false ? " failed\n" : "\n");
        drawn = false;
      }
      return;
    }
    const key = `${p.operation} ${p.subject}`;
    const step = Math.floor(percent / 10);
    if (p.done) {
      if (p.ok === false) sink.write(`${label}: failed at ${percent}%\n`);
      else if ((lastStep.get(key) ?? -1) < 10) sink.write(`${label}: 100%\n`);
      lastStep.delete(key);
      return;
    }
    if (step > (lastStep.get(key) ?? -1)) {
      lastStep.set(key, step);
      sink.write(`${label}: ${percent}%\n`);
    }
    void drawn;
  });
}
