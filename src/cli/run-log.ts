/**
 * MAQET's `--log-file`, `--debug` and `--format yaml` for the CLI: a debug log of one run
 * appended to a file (the command line, every warning and error line, the exit code, with
 * times), full stack traces (with causes) for `--debug` / `-vvv`, and YAML output.
 *
 * @example
 * ```ts
 * const log = openRunLog("/tmp/maqet.log", ["start", "web"]);
 * log.write("exit 0");
 * ```
 */
import { appendFileSync } from "node:fs";
import { stringify } from "yaml";
import { MaqetError } from "../errors/maqet-error.ts";

export interface RunLog {
  write(line: string): void;
}

/**
 * Opens (creates 0600, appends) the log and writes the command line. An unwritable file is
 * invalid input, said before anything runs.
 *
 * @example
 * ```ts
 * openRunLog("maqet.log", process.argv.slice(2));
 * ```
 */
export function openRunLog(path: string, argv: readonly string[]): RunLog {
  const write = (line: string) =>
    appendFileSync(path, `${new Date().toISOString()} [${process.pid}] ${line}\n`, { mode: 0o600 });
  try {
    write(`maqet ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`);
  } catch (error) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Cannot write the log file ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}). Check --log-file's directory.`,
      { cause: error },
    );
  }
  return {
    write: (line) => {
      try {
        write(line);
      } catch {
        // The log is a convenience: a full disk must not turn a good run into a failure.
      }
    },
  };
}

/** The I/O with every stderr line also written to the log. */
export function withRunLog<T extends { stderr: (text: string) => void }>(io: T, log: RunLog | undefined): T {
  if (log === undefined) return io;
  return {
    ...io,
    stderr: (text: string) => {
      log.write(text);
      io.stderr(text);
    },
  };
}

/** The error's stack and every cause's, for `--debug`. */
export function debugTrace(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    lines.push(depth === 0 ? "" : "Caused by:");
    lines.push(current instanceof Error ? (current.stack ?? current.message) : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join("\n").trimStart();
}

/** A result as YAML (`--format yaml`). */
export function renderYaml(value: unknown): string {
  return stringify(value ?? null, { lineWidth: 0 }).replace(/\n$/, "");
}
