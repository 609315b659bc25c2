/**
 * The shape of a command definition, and the small input helpers every command group uses.
 * One definition per operation: the library method it calls, and what the CLI derives from it
 * (parser, help, dispatch).
 *
 * @example
 * ```ts
 * const hello: CommandSpec = { name: "hello", summary: "…", positionals: [], options: [], examples: [], invoke: async () => "hi" };
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import type { Maqet } from "../maqet.ts";

export interface PositionalSpec {
  name: string;
  description: string;
  optional?: boolean;
  /** Takes every remaining argument (the last positional only); the input gets them joined by NUL as `string[]` via {@link list}. */
  variadic?: boolean;
}

export interface OptionSpec {
  name: string;
  type: "boolean" | "string" | "number";
  description: string;
  /** Placeholder shown in help, e.g. SECONDS. */
  value?: string;
  /** Other spellings accepted (MAQET's, older ones); help shows only `name`. */
  aliases?: string[];
  /** May be given several times; the input gets every value, in order, as `string[]`. */
  multiple?: boolean;
  /** With `multiple`: also takes the words after it up to the next option (`--vm-config a.yaml b.yaml`, argparse's nargs `*`). */
  greedy?: boolean;
}

export type CommandInput = Record<string, string | number | boolean | string[] | undefined>;

/** A variadic positional's values (empty when none were given). */
export function list(input: CommandInput, key: string): string[] {
  const value = input[key];
  return Array.isArray(value) ? value : value === undefined ? [] : [String(value)];
}

/**
 * What the CLI (not the library) offers a command that talks to the user: the environment, and a
 * yes/no question on a terminal. Absent when a command runs without a user (library, agent).
 */
export interface CommandIo {
  env: Record<string, string | undefined>;
  /** Asks on the terminal; absent when stdin is not a terminal (then a command must not guess). */
  confirm?: (question: string) => Promise<boolean>;
}

export interface CommandSpec {
  /** One word (`start`) or a group and a word (`snapshot create`, `qmp keys`). */
  name: string;
  aliases?: string[];
  summary: string;
  positionals: PositionalSpec[];
  options: OptionSpec[];
  examples: string[];
  invoke(maqet: Maqet, input: CommandInput, io?: CommandIo): Promise<unknown>;
  /** The CLI's exit code for a result that is not an error (default 0), e.g. `doctor --strict` with a failed check: 1. */
  exitCode?(input: CommandInput, result: unknown): number;
}

export const seconds = (value: unknown): number | undefined =>
  typeof value === "number" ? Math.round(value * 1000) : undefined;
export const text = (input: CommandInput, key: string): string => String(input[key]);

/** A wait that must last some time: `--timeout 0` would fail before QEMU had a chance. */
export function positiveSeconds(value: unknown, what: string): number | undefined {
  const ms = seconds(value);
  if (ms !== undefined && ms <= 0) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--timeout must be more than 0 seconds for ${what} (got ${String(value)}).`,
    );
  }
  return ms;
}

export function parseJsonObject(raw: unknown): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(raw));
  } catch (error) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--args is not valid JSON (${(error as Error).message}). Example: --args '{"filename": "/tmp/shot.ppm"}'.`,
      {
        cause: error,
      },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `--args must be a JSON object, like '{"key": "value"}' (got ${String(raw)}).`,
    );
  }
  return parsed as Record<string, unknown>;
}

export const TIMEOUT: OptionSpec = {
  name: "timeout",
  type: "number",
  value: "SECONDS",
  description: "how long to wait",
};
