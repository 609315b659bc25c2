/**
 * Reads `GET /v1/events` as server-sent events: every stored event (or one VM's) from a position,
 * a `caught-up` marker, then, when following, new ones as they commit. If the connection drops
 * while following (the agent restarted), it reconnects with `Last-Event-ID` = the last position
 * received, so no event is lost or repeated; it says once that it waits.
 *
 * @example
 * ```ts
 * await followAgentEvents({ socket }, { follow: true, onEvent: (line) => console.log(line.type) });
 * ```
 */
import type { EventLine } from "../api/commands/events-commands.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { Checkpoint } from "../events/checkpoint.ts";
import { type AgentEndpoint, agentFetch, describeEndpoint } from "./agent-transport.ts";
import { createSseParser } from "./sse-parser.ts";

export interface FollowEventsOptions {
  vm?: string;
  /** Start after this global position (default: the first event), or only with new events. */
  from?: number | "end";
  /** Type prefixes to keep. */
  types?: readonly string[];
  follow: boolean;
  onEvent(line: EventLine): void;
  onCaughtUp?(position: number | null, checkpoint: Checkpoint | null): void;
  onNote?(note: string): void;
  /** Stops following (resolves 0). Default: SIGINT/SIGTERM of this process. */
  signal?: AbortSignal;
}

/** Resolves with exit code 0 when done (or stopped); rejects with the agent's error. */
export async function followAgentEvents(endpoint: AgentEndpoint, options: FollowEventsOptions): Promise<number> {
  let last = options.from;
  let caughtUp = false;
  let waiting = false;
  let connectedOnce = false;
  const stop = new AbortController();
  const signal = options.signal ?? stop.signal;
  const interrupt = () => stop.abort();
  if (!options.signal) {
    process.once("SIGINT", interrupt);
    process.once("SIGTERM", interrupt);
  }
  try {
    for (;;) {
      if (signal.aborted) return 0;
      const query = new URLSearchParams();
      if (options.vm !== undefined) query.set("vm", options.vm);
      for (const t of options.types ?? []) query.append("type", t);
      if (!options.follow) query.set("follow", "false");
      if (last !== undefined) query.set("from", String(last));
      let res: Awaited<ReturnType<typeof agentFetch>>;
      try {
        res = await agentFetch(endpoint, { method: "GET", path: `/v1/events?${query}`, accept: "text/event-stream" });
      } catch (error) {
        if (!options.follow || !connectedOnce) throw error;
        if (!waiting)
          options.onNote?.(`the agent at ${describeEndpoint(endpoint)} went away; waiting for it to come back…`);
        waiting = true;
        await delay(500, signal);
        continue;
      }
      if (res.status >= 400) throw await agentError(res);
      connectedOnce = true;
      if (waiting) options.onNote?.(`the agent is back; resuming after position ${String(last ?? 0)}`);
      waiting = false;
      const ended = await readFrames(res.body, signal, (frame) => {
        if (frame.event === "caught-up") {
          const marker = JSON.parse(frame.data) as { position: number | null; checkpoint?: Checkpoint | null };
          // A reconnect resumes after what the marker covers (also events the filters skipped).
          if (marker.position !== null && (last === undefined || last === "end" || last < marker.position)) {
            last = marker.position;
          }
          if (!caughtUp) options.onCaughtUp?.(marker.position, marker.checkpoint ?? null);
          caughtUp = true;
          return;
        }
        if (frame.event !== "message") return;
        const line = JSON.parse(frame.data) as EventLine;
        last = line.position;
        options.onEvent(line);
      });
      if (signal.aborted || !options.follow) return 0;
      if (ended === "error" || ended === "end") {
        // The agent closed the stream (stopping, or we were too slow): resume from the last id.
        if (!waiting) options.onNote?.(`the event stream from ${describeEndpoint(endpoint)} ended; reconnecting…`);
        waiting = true;
        await delay(250, signal);
      }
    }
  } finally {
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
  }
}

function readFrames(
  body: NodeJS.ReadableStream & { destroy(): void },
  signal: AbortSignal,
  onFrame: Parameters<typeof createSseParser>[0],
): Promise<"end" | "error" | "aborted"> {
  const parser = createSseParser(onFrame);
  return new Promise((resolve) => {
    const abort = () => {
      body.destroy();
      resolve("aborted");
    };
    signal.addEventListener("abort", abort, { once: true });
    body.setEncoding("utf8");
    body.on("data", (chunk: string) => parser.push(chunk));
    body.on("end", () => {
      signal.removeEventListener("abort", abort);
      resolve("end");
    });
    body.on("error", () => {
      signal.removeEventListener("abort", abort);
      resolve("error");
    });
    body.on("aborted", () => resolve("error"));
  });
}

/** The MaqetError of an agent's error answer. */
export async function agentError(res: { status: number; text(): Promise<string> }): Promise<MaqetError> {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text) as {
      error: { code: string; message: string; details?: Record<string, unknown> };
    };
    return new MaqetError(error.code as never, error.message, { details: error.details ?? {} });
  } catch {
    return new MaqetError("INTERNAL", `The agent answered ${res.status}: ${text.slice(0, 200)}`);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
