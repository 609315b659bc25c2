/**
 * Colour on a terminal only: `--color auto` (default) paints when the stream is a TTY and TERM is
 * not `dumb`; `NO_COLOR` (any non-empty value, https://no-color.org) turns it off, `FORCE_COLOR`
 * (non-empty, not `0`) on; an explicit `--color always|never` wins over both. Piped output, files
 * and `--json` never carry escape codes.
 *
 * @example
 * ```ts
 * const paint = paintFor(colorEnabled({ isTTY: true }, process.env, "auto"));
 * paint.red("failed"); // "\x1b[31mfailed\x1b[39m"
 * ```
 */

export const COLOR_MODES = ["auto", "always", "never"] as const;
export type ColorMode = (typeof COLOR_MODES)[number];

export interface Paint {
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

/** Whether output to `stream` is painted. */
export function colorEnabled(
  stream: { isTTY?: boolean },
  env: Record<string, string | undefined>,
  mode: ColorMode = "auto",
): boolean {
  if (mode === "always") return true;
  if (mode === "never") return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "" && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY === true && env.TERM !== "dumb";
}

const sgr =
  (open: number, close: number) =>
  (text: string): string =>
    text === "" ? text : `\x1b[${open}m${text}\x1b[${close}m`;

const PAINTED: Paint = {
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  dim: sgr(2, 22),
  bold: sgr(1, 22),
};

const same = (text: string): string => text;

/** The plain paint: every function returns its text unchanged. */
export const NO_PAINT: Paint = { red: same, green: same, yellow: same, dim: same, bold: same };

export function paintFor(enabled: boolean): Paint {
  return enabled ? PAINTED : NO_PAINT;
}

/** A VM state in its colour: running green, paused/starting/stopping yellow, failed red, stopped dim. */
export function paintState(paint: Paint, state: string): string {
  if (state === "running") return paint.green(state);
  if (state === "failed" || state === "crashed") return paint.red(state);
  if (state === "stopped" || state === "removed") return paint.dim(state);
  return paint.yellow(state);
}
