/**
 * `GET /v1/events`: the store's subscription over HTTP. Server-sent events (`Accept:
 * text/event-stream`) whose `id:` is the event's global position, so `Last-Event-ID` (or
 * `?from=`) resumes exactly after it: the store reads in commit order below its watermark, so a
 * reconnect neither loses nor repeats an event. One `event: caught-up` frame when the stored
 * events are sent, a `: heartbeat` comment every 15 s, filters `vm=` and `type=` (a prefix,
 * repeatable). `Accept: application/x-ndjson` gives the same as JSON lines; a plain request gets
 * the stored events as one JSON array (no follow). A client that reads too slowly is
 * disconnected (it resumes from its last id), never silently skipped.
 *
 * @example
 * ```sh
 * curl -N --unix-socket $XDG_RUNTIME_DIR/maqet/agent.sock -H 'Accept: text/event-stream' \
 *   'http://maqet/v1/events?vm=web&type=vm.'
 * ```
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { toEventLine } from "../api/commands/events-commands.ts";
import type { Maqet } from "../api/maqet.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { sendError, sendJson, sseFrame, streamFormat } from "./http-reply.ts";

export interface EventStreamOptions {
  /** Comment frame interval (default 15 000 ms). */
  heartbeatMs?: number;
  /** Bytes queued for a slow client before it is disconnected (default 8 MiB). */
  maxBufferedBytes?: number;
}

/** Handles one `/v1/events` request; resolves when the response has ended. */
export function serveEvents(
  maqet: Maqet,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  options: EventStreamOptions = {},
): Promise<string | undefined> {
  let from: number | undefined;
  let fromEnd = false;
  let types: string[];
  try {
    fromEnd = query.get("from") === "end" && req.headers["last-event-id"] === undefined;
    from =
      position(req.headers["last-event-id"], "Last-Event-ID") ??
      (fromEnd ? undefined : position(query.get("from") ?? undefined, "from"));
    types = query.getAll("type").filter((t) => t !== "");
    for (const key of query.keys()) {
      if (!["from", "vm", "type", "follow"].includes(key)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Invalid request for GET /v1/events: unknown parameter '${key}' (use from, vm, type, follow).`,
        );
      }
    }
  } catch (error) {
    return Promise.resolve(sendError(res, error));
  }
  const format = streamFormat(req);
  const follow = format !== undefined && query.get("follow") !== "false";
  const vm = query.get("vm") ?? undefined;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const collected: unknown[] = [];
  return new Promise((resolve) => {
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    const finish = (code?: string) => {
      if (heartbeat) clearInterval(heartbeat);
      subscription.unsubscribe();
      if (!res.writableEnded) res.end();
      resolve(code);
    };
    const start = () => {
      if (res.headersSent || format === undefined) return;
      res.writeHead(200, {
        "content-type": format === "sse" ? "text/event-stream; charset=utf-8" : "application/x-ndjson; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      });
      if (format === "sse") {
        res.write(": maqet events\n\n");
        heartbeat = setInterval(() => res.write(": heartbeat\n\n"), heartbeatMs);
        heartbeat.unref?.();
      }
    };
    const write = (text: string) => {
      res.write(text);
      if (res.writableLength > maxBuffered) finish("SLOW_CLIENT");
    };
    res.on("close", () => finish());
    const subscription = maqet
      .subscribe({ vm, from: fromEnd ? "end" : (from ?? "start"), follow: format !== undefined ? follow : false })
      .subscribe({
        next: (message) => {
          if (message.kind === "caughtUp") {
            if (format === undefined) return;
            start();
            const data = JSON.stringify({
              position: message.checkpoint?.position ?? null,
              checkpoint: message.checkpoint,
            });
            write(format === "sse" ? sseFrame({ event: "caught-up", data }) : `{"caughtUp":${data}}\n`);
            return;
          }
          if (types.length && !types.some((t) => message.event.type.startsWith(t))) return;
          const line = toEventLine(message);
          if (format === undefined) {
            collected.push(line);
            return;
          }
          start();
          const data = JSON.stringify(line);
          write(format === "sse" ? sseFrame({ id: line.position, data }) : `${data}\n`);
        },
        error: (error: unknown) => {
          if (!res.headersSent) return finish(sendError(res, error));
          if (format === "sse")
            res.write(sseFrame({ event: "error", data: JSON.stringify({ message: String(error) }) }));
          finish("STREAM_ERROR");
        },
        complete: () => {
          if (format === undefined && !res.headersSent) sendJson(res, 200, collected);
          else start();
          finish();
        },
      });
  });
}

function position(raw: string | string[] | undefined, what: string): number | undefined {
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (text === undefined || text === "") return undefined;
  if (!/^\d{1,15}$/.test(text)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `Invalid ${what} '${text}': a global position (an integer >= 0, the id of the last event you have).`,
    );
  }
  return Number(text);
}
