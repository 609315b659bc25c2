/**
 * A command result that is a stream of text rather than one value (`console --follow`). The CLI
 * closes its maqet instance first (releasing the embedded store's lock, since a stream may last
 * hours), then writes each chunk as it comes, exactly as received, until the stream completes or
 * the user presses Ctrl-C. The stream must therefore not need the store.
 *
 * @example
 * ```ts
 * const serial = await maqet.console("web");
 * return streamedResult(serial.follow$(), { vm: serial.vm, path: serial.path });
 * ```
 */
import type { Observable } from "rxjs";

const STREAMED = Symbol.for("maqet.streamed-result");

export interface StreamedResult {
  readonly [STREAMED]: true;
  /** Text chunks, written as they are (no newline added). */
  readonly output$: Observable<string>;
  /** What the stream is about (e.g. the VM and file), for `--json` and for programs. */
  readonly about: Record<string, unknown>;
  /** The CLI's exit code once the stream has completed (default 0), e.g. `maqet ssh`: ssh's. */
  readonly exitCode?: () => number;
}

/** Wraps a text stream as a command result. */
export function streamedResult(
  output$: Observable<string>,
  about: Record<string, unknown> = {},
  exitCode?: () => number,
): StreamedResult {
  return { [STREAMED]: true, output$, about, ...(exitCode ? { exitCode } : {}) };
}

/** True for a result made by {@link streamedResult}. */
export function isStreamedResult(value: unknown): value is StreamedResult {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STREAMED] === true;
}
