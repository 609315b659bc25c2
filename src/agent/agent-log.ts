/**
 * The agent's log: one line per request (and per lifecycle note) on stderr, as text for a person
 * or as JSON for a log shipper (`--log-format json`).
 *
 *     2026-12-06T20:41:02.114Z POST /v1/vms/web/start 200 41.2ms start user=ada pid=4242 source=cli corr=6f0c…
 *
 * @example
 * ```ts
 * const log = createAgentLog("json", (line) => process.stderr.write(`${line}\n`));
 * log.request({ time, method: "GET", path: "/v1/vms", status: 200, ms: 1.2 });
 * ```
 */
import { isMaqetError } from "../errors/maqet-error.ts";
import type { RequestLogEntry } from "./agent-handler.ts";

export interface AgentLog {
  request(entry: RequestLogEntry): void;
  note(message: string, fields?: Record<string, unknown>): void;
}

export function createAgentLog(format: "text" | "json", write: (line: string) => void): AgentLog {
  if (format === "json") {
    return {
      request: (entry) => write(JSON.stringify({ kind: "request", ...entry })),
      note: (message, fields = {}) =>
        write(JSON.stringify({ kind: "note", time: new Date().toISOString(), message, ...fields })),
    };
  }
  return {
    request: (e) =>
      write(
        [
          e.time,
          e.method,
          e.path,
          String(e.status),
          `${e.ms}ms`,
          e.command,
          e.code,
          e.user !== undefined ? `user=${e.user}` : undefined,
          e.pid !== undefined ? `pid=${e.pid}` : undefined,
          e.source !== undefined ? `source=${e.source}` : undefined,
          e.correlationId !== undefined ? `corr=${e.correlationId}` : undefined,
        ]
          .filter((part) => part !== undefined)
          .join(" "),
      ),
    note: (message) => write(`${new Date().toISOString()} maqet agent: ${message}`),
  };
}

/** Says why the agent cannot run (or stopped) on stderr; returns its exit code. */
export function agentFailure(error: unknown, io: { stderr: (line: string) => void }): number {
  if (isMaqetError(error)) {
    io.stderr(`maqet: ${error.message}`);
    return error.exitCode;
  }
  io.stderr(`maqet: agent failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
}
