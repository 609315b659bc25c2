/**
 * HTTP/1.1 to a maqet agent over its unix socket (or TCP with a bearer token): one JSON value over
 * src/adapters/plain-http.ts, streams over src/adapters/http-stream.ts (`node:http`; Node and Deno
 * both have it, no dependency). One request, a
 * JSON answer or a streamed body. A connection that cannot be made is AGENT_UNAVAILABLE; one that
 * breaks before the answer is too, with a note that the operation may have run.
 *
 * @example
 * ```ts
 * const endpoint = { socket: "/run/user/1000/maqet/agent.sock" };
 * const res = await agentFetch(endpoint, { method: "GET", path: "/v1/vms" });
 * console.log(res.status, await res.json());
 * ```
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { streamExchange } from "../adapters/http-stream.ts";
import { PlainExchangeError, plainExchange } from "../adapters/plain-http.ts";
import { MaqetError } from "../errors/maqet-error.ts";

/** Where the agent is: a unix socket, or `http://HOST:PORT` with its token. */
export interface AgentEndpoint {
  socket?: string;
  url?: string;
  token?: string;
  /** Headers sent with every request (the caller's identity). */
  headers?: Record<string, string>;
  /**
   * An agent in this process: requests go to it directly, no socket (the agent running a call
   * handed to it whole, src/cli/one-shot.ts).
   */
  local?: (req: AgentRequest) => Promise<AgentResponse>;
}

export interface AgentRequest {
  method: string;
  path: string;
  body?: unknown;
  accept?: string;
  headers?: Record<string, string>;
  /** Give up connecting after this long (default 10 000 ms: a loaded host can be slow to schedule us). */
  connectTimeoutMs?: number;
}

export interface AgentResponse {
  status: number;
  headers: IncomingMessage["headers"];
  /** The body as it comes (for streams). */
  body: IncomingMessage;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
}

/** Where an endpoint points, for messages. */
export function describeEndpoint(endpoint: AgentEndpoint): string {
  return endpoint.socket ?? endpoint.url ?? "(no agent)";
}

export function agentFetch(endpoint: AgentEndpoint, req: AgentRequest): Promise<AgentResponse> {
  if (endpoint.local) return endpoint.local(req);
  const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
  const headers: Record<string, string> = {
    accept: req.accept ?? "application/json",
    ...endpoint.headers,
    ...req.headers,
  };
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(new TextEncoder().encode(payload).length);
  }
  if (endpoint.token) headers.authorization = `Bearer ${endpoint.token}`;
  const target = endpoint.socket
    ? { socketPath: endpoint.socket, path: req.path }
    : (() => {
        const url = new URL(req.path, endpoint.url);
        return { host: url.hostname, port: Number(url.port || 80), path: url.pathname + url.search };
      })();
  // Our own Host header: left to node:http, it tests the host with isIPv6, whose first call
  // compiles a large regular expression — a few milliseconds of every CLI call through the agent.
  headers.host ??= endpoint.socket ? "localhost" : new URL(endpoint.url ?? "http://localhost").host;
  // One JSON value back: read whole over node:net (plain-http.ts says why); streams: node:http.
  const call: Call = { endpoint, target, req, headers, payload };
  return headers.accept === "application/json" ? plainFetch(call) : httpFetch(call);
}

/** One request, ready to send. */
interface Call {
  endpoint: AgentEndpoint;
  target: { socketPath: string; path: string } | { host: string; port: number; path: string };
  req: AgentRequest;
  headers: Record<string, string>;
  payload: string | undefined;
}

async function plainFetch({ endpoint, target, req, headers, payload }: Call): Promise<AgentResponse> {
  try {
    const answer = await plainExchange("socketPath" in target ? { socket: target.socketPath } : target, {
      method: req.method,
      path: target.path,
      headers,
      ...(payload === undefined ? {} : { payload }),
      ...(req.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: req.connectTimeoutMs }),
    });
    return wholeResponse(answer.status, answer.headers, answer.body);
  } catch (error) {
    if (error instanceof PlainExchangeError) {
      throw error.connected ? broken(endpoint, error.cause) : unavailable(endpoint, error.cause);
    }
    throw error;
  }
}

async function httpFetch({ endpoint, target, req, headers, payload }: Call): Promise<AgentResponse> {
  let answer: Awaited<ReturnType<typeof streamExchange>>;
  try {
    answer = await streamExchange(target, {
      method: req.method,
      headers,
      ...(payload === undefined ? {} : { payload }),
      ...(req.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: req.connectTimeoutMs }),
    });
  } catch (error) {
    if (error instanceof PlainExchangeError) {
      throw error.connected ? broken(endpoint, error.cause) : unavailable(endpoint, error.cause);
    }
    throw error;
  }
  const res = answer.body;
  const text = () =>
    new Promise<string>((done, fail) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () => done(new TextDecoder().decode(concat(chunks))));
      res.on("error", fail);
      res.on("aborted", () => fail(broken(endpoint)));
    });
  return {
    status: answer.status,
    headers: answer.headers,
    body: res,
    text,
    json: async <T>() => JSON.parse(await text()) as T,
  };
}

/**
 * An answer made in this process, as the client would read it off the wire: the value is
 * serialized to JSON and read back (dates become strings, undefined fields go).
 */
export function localResponse(status: number, value: unknown): AgentResponse {
  return wholeResponse(status, { "content-type": "application/json; charset=utf-8" }, JSON.stringify(value ?? null));
}

/** An answer already whole (read off the wire, or made here). */
function wholeResponse(status: number, headers: AgentResponse["headers"], content: Uint8Array | string): AgentResponse {
  const text = async () => (typeof content === "string" ? content : new TextDecoder().decode(content));
  let body: IncomingMessage | undefined;
  return {
    status,
    headers,
    // Made when read: a JSON answer's caller reads `json()`, and a stream costs a CLI call.
    get body() {
      body ??= Readable.from([content]) as unknown as IncomingMessage;
      return body;
    },
    text,
    json: async <T>() => JSON.parse(await text()) as T,
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * True for the error of an agent that is not there: no socket file, or nobody listening on it. A
 * slow agent (connect timeout) is not "not there": falling back to the store it holds would only
 * wait on its lock.
 */
export function isUnavailable(error: unknown): boolean {
  return (
    error instanceof MaqetError &&
    error.code === "AGENT_UNAVAILABLE" &&
    error.details.connected === false &&
    ["ENOENT", "ECONNREFUSED", "ENOTSOCK"].includes(String(error.details.errno))
  );
}

function unavailable(endpoint: AgentEndpoint, cause: NodeJS.ErrnoException): MaqetError {
  return new MaqetError(
    "AGENT_UNAVAILABLE",
    `No maqet agent answers at ${describeEndpoint(endpoint)} (${cause.code ?? cause.message}). Start one with \`maqet agent\`, or run without it: --no-agent.`,
    { cause, details: { endpoint: describeEndpoint(endpoint), connected: false, errno: cause.code ?? "timeout" } },
  );
}

function broken(endpoint: AgentEndpoint, cause?: unknown): MaqetError {
  return new MaqetError(
    "AGENT_UNAVAILABLE",
    `The connection to the maqet agent at ${describeEndpoint(endpoint)} broke before its answer; the operation may have run (\`maqet history VM\` says).`,
    { cause, details: { endpoint: describeEndpoint(endpoint), connected: true } },
  );
}

export { broken as brokenConnectionError };
