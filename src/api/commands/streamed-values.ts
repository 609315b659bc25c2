/**
 * A command result that is a stream of values read from the store while it runs (`events
 * --follow`). Unlike {@link streamedResult} text, the CLI keeps its maqet instance (and so the
 * store) open until the stream ends or the user presses Ctrl-C, and renders each value as one
 * line: the command's text renderer, or one JSON object per line (JSONL) with `--json`. A value
 * the renderer turns into an empty string prints nothing.
 *
 * @example
 * ```ts
 * return streamedValues(maqet.subscribe({ follow: true }));
 * ```
 */
import type { Observable } from "rxjs";

const STREAMED_VALUES = Symbol.for("maqet.streamed-values");

export interface StreamedValues {
  readonly [STREAMED_VALUES]: true;
  /** One value per output line. */
  readonly values$: Observable<unknown>;
}

/** Wraps a stream of values as a command result. */
export function streamedValues(values$: Observable<unknown>): StreamedValues {
  return { [STREAMED_VALUES]: true, values$ };
}

/** True for a result made by {@link streamedValues}. */
export function isStreamedValues(value: unknown): value is StreamedValues {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STREAMED_VALUES] === true;
}
