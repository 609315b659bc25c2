/**
 * A failed call through the agent, told as the in-process CLI tells it: the message on stderr,
 * with `--json` the error as JSON on stdout, and the error's exit code. Anything that is not a
 * MaqetError is an internal error (exit 1), with its stack.
 *
 * @example
 * ```ts
 * return reportError(error, parsed.global.json, io);
 * ```
 */
import { isMaqetError } from "../errors/maqet-error.ts";
import type { CliIo } from "./main.ts";

export function reportError(error: unknown, json: boolean, io: CliIo): number {
  if (isMaqetError(error)) {
    io.stderr(`maqet: ${error.message}`);
    if (json) io.stdout(JSON.stringify({ error: error.toJSON() }, null, 2));
    return error.exitCode ?? 1;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr(`maqet: internal error: ${message}\nThis is a bug; please report it with the command you ran.`);
  if (json) io.stdout(JSON.stringify({ error: { code: "INTERNAL", message: String(error) } }, null, 2));
  return 1;
}
