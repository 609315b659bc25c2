import type { Paint } from "../color.ts";

/**
 * A command's text output: its result in, the lines a person reads out. `--json` bypasses it.
 *
 * @example
 * ```ts
 * const render: Renderer = (result) => JSON.stringify(result);
 * ```
 */
export type Renderer = (result: unknown, paint?: Paint) => string;
