/**
 * Runs one operation while streaming what it does, for a client that asked for it (`Accept:
 * text/event-stream` or `application/x-ndjson`): the events it appends (found by its correlation
 * id, from the store's subscription, opened before the operation starts so none is missed),
 * progress of its long steps (`maqet.progress$` for its VM or file), then its result or error
 * as the last frame. The HTTP status is 200 once the stream has begun; the outcome is in the last
 * frame. A client that disconnects stops the stream, never the operation: its outcome is in the
 * history.
 *
 * @example
 * ```sh
 * curl -N --unix-socket agent.sock -H 'Accept: application/x-ndjson' -X POST http://maqet/v1/vms/web/start
 * ```
 */
import type { ServerResponse } from "node:http";
import { toEventLine } from "../api/commands/events-commands.ts";
import type { Maqet, OperationProgress } from "../api/maqet.ts";
import type { EventsMessage } from "../api/ops/events-ops.ts";
import type { Checkpoint } from "../events/checkpoint.ts";
import { errorResponse } from "./http-errors.ts";
import { type StreamFormat, sseFrame } from "./http-reply.ts";

export interface StreamedOperation {
  /** The instance the events are read from (the agent's own). */
  maqet: Maqet;
  format: Exclude<StreamFormat, undefined>;
  correlationId: string;
  /** Progress subjects that belong to this operation (its VM, its files). */
  subjects: readonly string[];
  run(): Promise<unknown>;
}

/** Resolves with the error code (undefined on success) once the operation has ended. */
export async function streamOperation(res: ServerResponse, op: StreamedOperation): Promise<string | undefined> {
  const frame = (kind: string, value: unknown): string =>
    op.format === "sse"
      ? sseFrame({ event: kind, data: JSON.stringify(value) })
      : `${JSON.stringify({ [kind]: value })}\n`;
  const send = (text: string) => {
    if (!res.writableEnded && !res.destroyed) res.write(text);
  };
  let caughtUp!: () => void;
  const ready = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  // Where the live feed stands; after the operation, a catch-up read from there sends what the
  // feed had not delivered yet (an append reaches subscribers a moment after it resolves).
  let last: Checkpoint | number | "end" = "end";
  const sent = new Set<number>();
  const deliver = (m: Extract<EventsMessage, { kind: "event" }>) => {
    last = m.checkpoint;
    if (m.event.metadata?.correlationId !== op.correlationId || sent.has(m.event.globalPosition)) return;
    sent.add(m.event.globalPosition);
    send(frame("event", toEventLine(m)));
  };
  const events = op.maqet.subscribe({ from: "end" }).subscribe({
    next: (m) => {
      if (m.kind === "caughtUp") {
        last = m.checkpoint ?? 0;
        return caughtUp();
      }
      deliver(m);
    },
    error: () => caughtUp(),
  });
  const progress = op.maqet.progress$.subscribe((p: OperationProgress) => {
    if (op.subjects.some((s) => p.subject === s || p.subject.startsWith(`${s}:`))) send(frame("progress", p));
  });
  await ready;
  res.writeHead(200, {
    "content-type": op.format === "sse" ? "text/event-stream; charset=utf-8" : "application/x-ndjson; charset=utf-8",
    "cache-control": "no-store",
    "maqet-correlation-id": op.correlationId,
  });
  let code: string | undefined;
  try {
    const result = await op.run();
    events.unsubscribe();
    await catchUp(op.maqet, last, deliver);
    send(frame("result", result ?? null));
  } catch (error) {
    const { body } = errorResponse(error);
    code = body.error.code;
    send(frame("error", body.error));
  } finally {
    events.unsubscribe();
    progress.unsubscribe();
    if (!res.writableEnded) res.end();
  }
  return code;
}

function catchUp(
  maqet: Maqet,
  from: Checkpoint | number | "end",
  deliver: (m: Extract<EventsMessage, { kind: "event" }>) => void,
): Promise<void> {
  if (from === "end") return Promise.resolve();
  return new Promise((resolve) => {
    maqet.subscribe({ from, follow: false }).subscribe({
      next: (m) => {
        if (m.kind === "event") deliver(m);
      },
      error: () => resolve(),
      complete: () => resolve(),
    });
  });
}
