/**
 * The agent's request handler: authenticates (TCP only: bearer token, constant-time), routes
 * (`/v1/version`, `/v1/cli` (cli-route.ts), `/v1/events`, the library routes of library-routes.ts,
 * then one route per registry command), turns the request into the command's input, runs
 * `spec.invoke` on the caller's view of the instance (`maqet.as(caller)`), and answers JSON, a stream of progress, or a text stream (`console --follow`). Every failure is
 * an error body with a fitting status; nothing a client sends can throw out of it. Operations in
 * flight are tracked for a graceful stop.
 *
 * @example
 * ```ts
 * const handler = createAgentHandler({ maqet, version: "0.1.0", host: "web01", tcp: false });
 * http.createServer(handler.handle).listen("/run/user/1000/maqet/agent.sock");
 * ```
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { COMMAND_ROUTES, type CommandRoute } from "../api/command-routes.ts";
import type { CommandInput } from "../api/commands/command-spec.ts";
import { isStreamedResult } from "../api/commands/streamed-result.ts";
import { isStreamedValues } from "../api/commands/streamed-values.ts";
import type { Maqet } from "../api/maqet.ts";
import type { ConsoleConnection } from "../api/ops/console-attach-ops.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { tokenMatches } from "./agent-token.ts";
import { versionBody } from "./api-version.ts";
import { asCaller } from "./as-caller.ts";
import { type CallerIdentity, callerOf } from "./caller-identity.ts";
import { serveCli } from "./cli-route.ts";
import { serveConsoleUpgrade } from "./console-upgrade-route.ts";
import { serveEvents } from "./event-stream.ts";
import { sendError, sendJson, streamFormat } from "./http-reply.ts";
import { LIBRARY_ROUTES } from "./library-routes.ts";
import { streamOperation } from "./operation-stream.ts";
import { prepare } from "./prepare-call.ts";
import { DEFAULT_BODY_LIMIT, readJsonBody } from "./request-body.ts";
import { compileRoutes } from "./route-table.ts";
import {
  type AuthKind,
  isSafeMethod,
  originRefused,
  SECURITY_HEADERS,
  sameOrigin,
  type WebConsole,
} from "./web-console.ts";

export interface RequestLogEntry {
  time: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  command?: string;
  code?: string;
  correlationId?: string;
  user?: string;
  uid?: number;
  pid?: number;
  source?: string;
  host?: string;
}

export interface AgentHandlerOptions {
  maqet: Maqet;
  /** maqet's version, for `/v1/version`. */
  version: string;
  /** This host's name (the caller's host over the unix socket). */
  host: string;
  /** Over TCP every request needs the bearer token. */
  tcp: boolean;
  token?: string;
  /** The web console (TCP only): pages, login and session cookies beside the bearer token. */
  web?: WebConsole;
  bodyLimit?: number;
  heartbeatMs?: number;
  /** What `/v1/version` says about this agent (socket, store…). */
  about?: Record<string, unknown>;
  log?: (entry: RequestLogEntry) => void;
}

export interface AgentHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The server's `upgrade` event: the interactive console (src/agent/console-upgrade-route.ts). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Operations running now (not streams). */
  readonly inFlight: number;
  /** Resolves when no operation runs (or at once). */
  idle(): Promise<void>;
  /** Ends every open stream (event feeds, console follows, interactive consoles); clients resume later. */
  endStreams(): void;
}

const ROUTES = compileRoutes(COMMAND_ROUTES);
const LIBRARY = compileRoutes(LIBRARY_ROUTES);

export function createAgentHandler(options: AgentHandlerOptions): AgentHandler {
  const running = new Set<Promise<unknown>>();
  const streams = new Set<ServerResponse>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.catch(() => undefined).finally(() => running.delete(work));
    return work;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://maqet");
    const caller = callerOf(req, { host: options.host, tcp: options.tcp });
    caller.correlationId ??= crypto.randomUUID();
    const headers: Record<string, string> = {
      "maqet-correlation-id": caller.correlationId,
      ...(options.tcp ? SECURITY_HEADERS : {}),
    };
    let command: string | undefined;
    let code: string | undefined;
    res.on("close", () => {
      options.log?.({
        time: new Date().toISOString(),
        method: req.method ?? "?",
        path: url.pathname,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...(command ? { command } : {}),
        ...(code ? { code } : {}),
        correlationId: caller.correlationId,
        ...identity(caller),
      });
    });
    try {
      if (options.tcp) {
        const how: AuthKind = options.web
          ? options.web.authOf(req)
          : tokenMatches(req.headers.authorization, options.token)
            ? "bearer"
            : "none";
        if (how === "session") caller.source = "web";
        if (options.web && !url.pathname.startsWith("/v1/")) {
          code = await options.web.serve(req, res, url, how, asCaller(options.maqet, caller));
          return;
        }
        if (how === "none") {
          res.setHeader("www-authenticate", 'Bearer realm="maqet"');
          throw new MaqetError(
            "UNAUTHORIZED",
            `Unauthorized: requests over TCP need \`Authorization: Bearer <token>\` with the agent's token${options.web ? ", or a web-console session (the login URL the agent printed)" : ""}.`,
          );
        }
        // A cookie rides along with any request the browser makes: writes must come from our pages.
        if (how === "session" && !isSafeMethod(req.method) && !sameOrigin(req)) throw originRefused();
      }
      if (url.pathname === "/v1/version" || url.pathname === "/v1/_ping") {
        if (req.method !== "GET" && req.method !== "HEAD") throw notAllowed(["GET"]);
        return sendJson(res, 200, versionBody(options), headers);
      }
      if (url.pathname === "/v1/cli") {
        if (req.method !== "POST") throw notAllowed(["POST"], res);
        command = "cli";
        const answer = await track(
          serveCli(req, {
            tcp: options.tcp,
            version: options.version,
            bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
            runCommand: (method, path, body) => runCommand(caller, method, path, body),
          }),
        );
        if ("command" in answer) command = `cli ${answer.command}`;
        return sendJson(res, 200, answer, headers);
      }
      if (url.pathname === "/v1/events" && req.method === "GET") {
        command = "events";
        streams.add(res);
        res.on("close", () => streams.delete(res));
        code = await serveEvents(options.maqet, req, res, url.searchParams, { heartbeatMs: options.heartbeatMs });
        return;
      }
      const library = LIBRARY.match(req.method ?? "GET", url.pathname);
      if (library.kind === "method") throw notAllowed(library.allowed, res);
      if (library.kind === "found") {
        command = library.route.operation;
        const limit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
        const result = await track(
          library.route.run({
            maqet: asCaller(options.maqet, caller),
            params: library.params,
            query: url.searchParams,
            body: () => readJsonBody(req, limit),
          }),
        );
        return sendJson(res, 200, result ?? null, headers);
      }
      const match = ROUTES.match(req.method ?? "GET", url.pathname);
      if (match.kind === "method") throw notAllowed(match.allowed, res);
      if (match.kind === "none") {
        throw new MaqetError(
          "ROUTE_NOT_FOUND",
          `No route for ${req.method} ${url.pathname}. The API's routes are listed in docs/agent.md; GET /v1/version names this agent's extensions.`,
        );
      }
      const { route, params } = match;
      command = route.command;
      const body =
        route.method === "POST" ? await readJsonBody(req, options.bodyLimit ?? DEFAULT_BODY_LIMIT) : undefined;
      if (route.command === "console" && url.searchParams.get("interactive") === "true") {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "The interactive console is an upgraded connection: send this GET with `Connection: Upgrade` and `Upgrade: maqet-console.v1` (docs/agent.md).",
        );
      }
      const view = asCaller(options.maqet, caller);
      const run = prepare(route, view, params, url.searchParams, body);
      const format = streamFormat(req);
      if (format && route.streams !== "text") {
        code = await track(
          streamOperation(res, {
            maqet: options.maqet,
            format,
            correlationId: caller.correlationId,
            subjects: subjectsOf(run.input, route),
            run: run.invoke,
          }),
        );
        return;
      }
      const result = await track(run.invoke());
      if (isStreamedResult(result) || isStreamedValues(result)) {
        streams.add(res);
        res.on("close", () => streams.delete(res));
        return await pipeResult(req, res, result, headers);
      }
      sendJson(res, route.command === "add" ? 201 : 200, result ?? null, headers);
    } catch (error) {
      code = sendError(res, error, headers);
    }
  };

  /** A command route run in this process for `caller` (a call handed whole: cli-route.ts). */
  const runCommand = (
    caller: CallerIdentity,
    method: string,
    path: string,
    body: Record<string, unknown> | undefined,
  ): Promise<unknown> => {
    const url = new URL(path, "http://maqet");
    const match = ROUTES.match(method, url.pathname);
    if (match.kind !== "found") throw new MaqetError("ROUTE_NOT_FOUND", `No route for ${method} ${url.pathname}.`);
    const run = prepare(match.route, asCaller(options.maqet, caller), match.params, url.searchParams, body);
    return track(run.invoke());
  };

  const consoles = new Set<ConsoleConnection>();
  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const started = performance.now();
    const caller = callerOf(req, { host: options.host, tcp: options.tcp });
    caller.correlationId ??= crypto.randomUUID();
    let code: string | undefined;
    if (options.tcp && !tokenMatches(req.headers.authorization, options.token)) {
      code = "UNAUTHORIZED";
      socket.end(
        'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="maqet"\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' +
          JSON.stringify({
            error: {
              code,
              message: "Unauthorized: requests over TCP need `Authorization: Bearer <token>` with the agent's token.",
              exitCode: 4,
            },
          }),
      );
    } else {
      // The recorded detach counts as running work: a stopping agent waits for it (idle()).
      code = await serveConsoleUpgrade(options.maqet, caller, req, socket, head, consoles, (detached) => {
        void track(detached).catch(() => undefined);
      });
    }
    options.log?.({
      time: new Date().toISOString(),
      method: req.method ?? "?",
      path: new URL(req.url ?? "/", "http://maqet").pathname,
      status: code === undefined ? 101 : 0,
      ms: Math.round((performance.now() - started) * 10) / 10,
      command: "console -i",
      ...(code ? { code } : {}),
      correlationId: caller.correlationId,
      ...identity(caller),
    });
  };

  return {
    upgrade: (req, socket, head) => {
      upgrade(req, socket, head).catch(() => socket.destroy());
    },
    handle: (req, res) => {
      handle(req, res).catch((error: unknown) => {
        // Last line of defence: answer if still possible, never let a request take the agent down.
        try {
          sendError(res, error);
        } catch {
          res.destroy();
        }
      });
    },
    get inFlight() {
      return running.size;
    },
    idle: async () => {
      while (running.size) await Promise.allSettled([...running]);
    },
    endStreams: () => {
      for (const res of streams) res.end();
      streams.clear();
      for (const conn of consoles) conn.close("disconnected");
      consoles.clear();
    },
  };
}

function subjectsOf(input: CommandInput, route: CommandRoute): string[] {
  const subjects = typeof input.vm === "string" ? [input.vm] : [];
  for (const p of route.localPaths) if (typeof input[p] === "string") subjects.push(input[p] as string);
  return subjects;
}

/** A text stream (console --follow) as chunks; a value stream as JSON lines. Ends with the stream. */
function pipeResult(
  req: IncomingMessage,
  res: ServerResponse,
  result: unknown,
  headers: Record<string, string>,
): Promise<void> {
  const text = isStreamedResult(result);
  const ndjson = !text || streamFormat(req) === "ndjson";
  res.writeHead(200, {
    "content-type": ndjson ? "application/x-ndjson; charset=utf-8" : "text/plain; charset=utf-8",
    "cache-control": "no-store",
    ...(text ? { "maqet-about": JSON.stringify(result.about) } : {}),
    ...headers,
  });
  const source$ = isStreamedResult(result) ? result.output$ : isStreamedValues(result) ? result.values$ : undefined;
  return new Promise((resolve) => {
    const subscription = source$!.subscribe({
      next: (value: unknown) => {
        res.write(text && !ndjson ? String(value) : `${JSON.stringify(text ? { text: value } : value)}\n`);
      },
      error: (error: unknown) => {
        res.write(`${JSON.stringify({ error: { message: String(error) } })}\n`);
        res.end();
        resolve();
      },
      complete: () => {
        res.end();
        resolve();
      },
    });
    // The response's close (not the request's: that fires once the request is read).
    res.on("close", () => {
      subscription.unsubscribe();
      resolve();
    });
  });
}

function notAllowed(allowed: string[], res?: ServerResponse): MaqetError {
  res?.setHeader("allow", allowed.join(", "));
  return new MaqetError("ROUTE_NOT_FOUND", `Method not allowed here; this path takes ${allowed.join(", ")}.`, {
    details: { allowed },
  });
}

function identity(caller: CallerIdentity): Partial<RequestLogEntry> {
  const out: Partial<RequestLogEntry> = {};
  if (caller.user !== undefined) out.user = caller.user;
  if (caller.uid !== undefined) out.uid = caller.uid;
  if (caller.pid !== undefined) out.pid = caller.pid;
  if (caller.source !== undefined) out.source = caller.source;
  if (caller.host !== undefined) out.host = caller.host;
  return out;
}
