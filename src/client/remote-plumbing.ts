/**
 * The remote client's plumbing: the caller's identity as `Maqet-*` headers, a command input with
 * its unset fields left out, an event line of `/v1/events` as the store's message, the NDJSON
 * frames of a streamed operation (progress, then its result or error), a console's text stream,
 * and one AbortSignal of two.
 *
 * @example
 * ```ts
 * const result = await frames(res.body, (p) => console.log(p.percent));
 * ```
 */
import { Observable } from "rxjs";
import type { CallerIdentity } from "../api/caller-identity.ts";
import type { CommandInput } from "../api/commands/command-spec.ts";
import type { EventLine } from "../api/commands/events-commands.ts";
import type { OperationProgress } from "../api/maqet.ts";
import type { EventsMessage } from "../api/ops/events-ops.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { StoredEvent } from "../events/envelope.ts";
import { type AgentEndpoint, agentFetch } from "./agent-transport.ts";
import { agentError } from "./follow-events.ts";

export function identityHeaders(caller: CallerIdentity | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (caller === undefined) return headers;
  if (caller.user !== undefined) headers["maqet-user"] = caller.user;
  if (caller.uid !== undefined) headers["maqet-uid"] = String(caller.uid);
  if (caller.pid !== undefined) headers["maqet-pid"] = String(caller.pid);
  if (caller.source !== undefined) headers["maqet-source"] = caller.source;
  if (caller.correlationId !== undefined) headers["maqet-correlation-id"] = caller.correlationId;
  return headers;
}

export function clean(input: CommandInput): CommandInput {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== false)) as CommandInput;
}

/** The event an EventLine describes, as the store delivers it. */
export function toMessage(line: EventLine): EventsMessage {
  const metadata = {
    ...(line.actor ? { actor: line.actor } : {}),
    ...(line.correlationId ? { correlationId: line.correlationId } : {}),
    ...(line.source ? { source: line.source } : {}),
  };
  const event = {
    id: line.id,
    streamId: line.streamId,
    streamVersion: line.version,
    globalPosition: line.position,
    type: line.type,
    schemaVersion: line.schemaVersion,
    data: line.data,
    metadata,
    recordedAt: new Date(line.at),
  } as unknown as StoredEvent;
  return { kind: "event", event, checkpoint: line.checkpoint, vmName: line.vm };
}

export async function frames(
  body: AsyncIterable<unknown>,
  onProgress: (p: OperationProgress) => void,
): Promise<unknown> {
  let buffer = "";
  let outcome: { result?: unknown; error?: { code: string; message: string; details?: Record<string, unknown> } } = {};
  for await (const chunk of body) {
    buffer += String(chunk);
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      const frame = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
      buffer = buffer.slice(nl + 1);
      if ("progress" in frame) onProgress(frame.progress as OperationProgress);
      else if ("result" in frame || "error" in frame) outcome = frame as typeof outcome;
    }
  }
  if (outcome.error)
    throw new MaqetError(outcome.error.code as never, outcome.error.message, { details: outcome.error.details ?? {} });
  return outcome.result;
}

export function followConsole(endpoint: AgentEndpoint, vm: string): Observable<string> {
  return new Observable<string>((subscriber) => {
    let body: { destroy(): void } | undefined;
    agentFetch(endpoint, {
      method: "GET",
      path: `/v1/vms/${encodeURIComponent(vm)}/console?follow=true`,
      accept: "text/plain",
    })
      .then(async (res) => {
        if (res.status >= 400) throw await agentError(res);
        body = res.body;
        res.body.setEncoding("utf8");
        res.body.on("data", (chunk: string) => subscriber.next(chunk));
        res.body.on("end", () => subscriber.complete());
      })
      .catch((error: unknown) => subscriber.error(error));
    return () => body?.destroy();
  });
}

export function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const both = new AbortController();
  const abort = () => both.abort();
  if (a.aborted || b.aborted) both.abort();
  a.addEventListener("abort", abort, { once: true });
  b.addEventListener("abort", abort, { once: true });
  return both.signal;
}
