/**
 * Writes a streamed command result (`console --follow`) to the terminal as it comes: each chunk
 * exactly as received (or, with `--json`, one `{"text": …}` object per line), until the stream
 * completes, or until Ctrl-C / SIGTERM, which end it normally (exit 0): the user asked to stop
 * watching, nothing failed. The signal handlers exist only while the stream runs, so Ctrl-C keeps
 * its default meaning for every other command.
 *
 * @example
 * ```ts
 * if (isStreamedResult(result)) return pipeStream(result, { write: (t) => process.stdout.write(t), json: false });
 * ```
 */
import type { StreamedResult } from "../api/commands/streamed-result.ts";

export interface PipeStreamIo {
  /** Writes text as is (no newline added). */
  write: (text: string) => void;
  json: boolean;
  /** Where Ctrl-C comes from. Default: this process. */
  signals?: Pick<NodeJS.Process, "once" | "off">;
  /** Said on Ctrl-C / SIGTERM (e.g. that the VM keeps running). */
  onInterrupt?: () => void;
}

/** Resolves with the exit code (0) when the stream ends or is interrupted; rejects with its error. */
export function pipeStream(result: StreamedResult, io: PipeStreamIo): Promise<number> {
  const signals = io.signals ?? process;
  return new Promise<number>((resolve, reject) => {
    const finish = (): void => {
      signals.off("SIGINT", interrupt);
      signals.off("SIGTERM", interrupt);
    };
    const interrupt = (): void => {
      subscription.unsubscribe();
      finish();
      io.onInterrupt?.();
      resolve(0);
    };
    signals.once("SIGINT", interrupt);
    signals.once("SIGTERM", interrupt);
    const subscription = result.output$.subscribe({
      next: (text) => io.write(io.json ? `${JSON.stringify({ text })}\n` : text),
      complete: () => {
        finish();
        resolve(result.exitCode?.() ?? 0);
      },
      error: (error: unknown) => {
        finish();
        reject(error);
      },
    });
  });
}
