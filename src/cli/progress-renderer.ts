/**
 * Draws long operations' progress on stderr; the CLI does not subscribe at all with `--json`.
 *
 * - With a percentage (disk convert, snapshots): a bar redrawn in place on a terminal, plain
 *   lines (every 10 %) otherwise.
 * - With a message (a graceful stop's steps, a start's wait condition, a wait for a busy VM):
 *   on a terminal one live line, the message and the seconds spent so far, redrawn every second
 *   and erased when the operation ends; otherwise each message once, as a plain line. A wait that
 *   ends within `quietMs` (1 s) prints nothing at all: only long waits speak.
 *
 * @example
 * ```ts
 * const sub = renderProgress(maqet.progress$, { isTTY: process.stderr.isTTY, write: (t) => process.stderr.write(t) });
 * ```
 */
import type { OperationProgress } from "../api/progress-hub.ts";
import type { Paint } from "./color.ts";

export interface ProgressSink {
  isTTY: boolean;
  /** Writes text as is (no newline added). */
  write(text: string): void;
  /** Terminal width (default 80). */
  columns?: number;
  /** How long a message-only wait stays silent, in ms (default 1000). */
  quietMs?: number;
  /** Colours for the live line (default: none). */
  paint?: Paint;
}

const LABELS: Record<string, string> = {
  "disk.convert": "converting",
  "snapshot.create": "snapshot",
  "snapshot.load": "loading snapshot",
  "snapshot.delete": "deleting snapshot",
};

/** What the terminal's live line shows now, shared by the bars and the message lines. */
interface LiveLine {
  drawn: boolean;
}

/** What renderProgress reads: an Observable, or the agent client's stream of progress frames. */
export interface ProgressSource {
  subscribe(next: (p: OperationProgress) => void): { unsubscribe(): void };
}

/** Draws until unsubscribed; unsubscribing also erases a live line still drawn. */
export function renderProgress(progress$: ProgressSource, sink: ProgressSink): { unsubscribe(): void } {
  const line: LiveLine = { drawn: false };
  const bars = barRenderer(sink, line);
  const messages = messageRenderer(sink, line);
  const subscription = progress$.subscribe((p) => {
    if (p.message !== undefined || messages.has(p)) messages.next(p);
    else bars(p);
  });
  return {
    unsubscribe: () => {
      subscription.unsubscribe();
      messages.stop();
    },
  };
}

function barRenderer(sink: ProgressSink, line: LiveLine): (p: OperationProgress) => void {
  const lastStep = new Map<string, number>();
  return (p) => {
    const label = `${LABELS[p.operation] ?? p.operation} ${p.subject}`;
    const percent = Math.floor(p.percent);
    if (sink.isTTY) {
      const width = Math.max(10, Math.min(40, (sink.columns ?? 80) - label.length - 10));
      const filled = Math.round((width * percent) / 100);
      sink.write(
        `\r\x1b[2K${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(percent).padStart(3)}%`,
      );
      line.drawn = true;
      if (p.done) {
        sink.write(p.ok === false ? " failed\n" : "\n");
        line.drawn = false;
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
  };
}

interface Waiting {
  message: string;
  /** When the operation's first message came. */
  since: number;
  /** When the current message came. */
  stepSince: number;
  /** Past the quiet period: its messages are shown. */
  shown: boolean;
  quiet?: ReturnType<typeof setTimeout>;
}

function messageRenderer(sink: ProgressSink, line: LiveLine) {
  const quietMs = sink.quietMs ?? 1000;
  const paint = sink.paint;
  const waiting = new Map<string, Waiting>();
  let ticker: ReturnType<typeof setInterval> | undefined;
  const keyOf = (p: OperationProgress) => `${p.operation} ${p.subject}`;

  /** The newest shown wait, on the one live line, with its seconds so far. */
  const redraw = (): void => {
    const shown = [...waiting.values()].filter((w) => w.shown);
    const current = shown.at(-1);
    if (current === undefined) {
      if (line.drawn) sink.write("\r\x1b[2K");
      line.drawn = false;
      return;
    }
    const elapsed = ` (${Math.floor((Date.now() - current.stepSince) / 1000)}s)`;
    const width = Math.max(20, (sink.columns ?? 80) - 1);
    const text = `maqet: ${current.message}`;
    const fitted = text.length + elapsed.length > width ? `${text.slice(0, width - elapsed.length - 1)}…` : text;
    sink.write(`\r\x1b[2K${paint ? paint.dim(fitted) : fitted}${elapsed}`);
    line.drawn = true;
  };
  const show = (w: Waiting): void => {
    w.shown = true;
    if (sink.isTTY) {
      redraw();
      ticker ??= setInterval(redraw, 1000);
      ticker.unref?.();
    } else {
      sink.write(`maqet: ${w.message}\n`);
    }
  };
  const stopTicker = (): void => {
    if (ticker !== undefined && ![...waiting.values()].some((w) => w.shown)) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };
  return {
    has: (p: OperationProgress) => waiting.has(keyOf(p)),
    next: (p: OperationProgress): void => {
      const key = keyOf(p);
      const now = Date.now();
      const w = waiting.get(key);
      if (p.done) {
        if (w === undefined) return;
        clearTimeout(w.quiet);
        waiting.delete(key);
        if (sink.isTTY && w.shown) redraw();
        stopTicker();
        return;
      }
      if (p.message === undefined) return;
      if (w === undefined) {
        const fresh: Waiting = { message: p.message, since: now, stepSince: now, shown: false };
        fresh.quiet = setTimeout(() => show(fresh), quietMs);
        fresh.quiet.unref?.();
        waiting.set(key, fresh);
        return;
      }
      w.message = p.message;
      w.stepSince = now;
      if (w.shown) {
        if (sink.isTTY) redraw();
        else sink.write(`maqet: ${w.message}\n`);
      }
    },
    stop: (): void => {
      for (const w of waiting.values()) clearTimeout(w.quiet);
      if (sink.isTTY && line.drawn) sink.write("\r\x1b[2K");
      line.drawn = false;
      waiting.clear();
      if (ticker !== undefined) clearInterval(ticker);
      ticker = undefined;
    },
  };
}
