/**
 * Small writers for the agent's responses: a JSON answer, an error answer, and the check of what
 * the client accepts (a stream of progress as server-sent events or NDJSON, or one JSON value).
 *
 * @example
 * ```ts
 * sendJson(res, 200, await maqet.list());
 * ```
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorResponse } from "./http-errors.ts";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** Answers with the error body; returns the error code for the request log. */
export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): string {
  const { status, body } = errorResponse(error);
  sendJson(res, status, body, headers);
  return body.error.code;
}

export type StreamFormat = "sse" | "ndjson" | undefined;

/** `sse` for `Accept: text/event-stream`, `ndjson` for `application/x-ndjson` (or jsonl), else none. */
export function streamFormat(req: IncomingMessage): StreamFormat {
  const accept = String(req.headers.accept ?? "");
  if (accept.includes("text/event-stream")) return "sse";
  if (/application\/(x-ndjson|jsonl|x-jsonlines)/.test(accept)) return "ndjson";
  return undefined;
}

/** One server-sent event frame (`data` may span lines: each gets its own `data:` field). */
export function sseFrame(fields: { id?: number | string; event?: string; data: string }): string {
  const id = fields.id === undefined ? "" : `id: ${fields.id}\n`;
  const event = fields.event === undefined ? "" : `event: ${fields.event}\n`;
  const data = fields.data
    .split("\n")
    .map((line) => `data: ${line}\n`)
    .join("");
  return `${id}${event}${data}\n`;
}
