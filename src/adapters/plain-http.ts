/**
 * One HTTP/1.1 exchange over `node:net`, read whole: the agent client's path for answers that are
 * one JSON value (most CLI calls). `node:http` costs ~10 ms of CPU to import on these machines —
 * a fifth of what a call through the agent may cost above a bare `node -e 0` — while `node:net` is
 * loaded by Node's own start-up. Streamed answers (progress, events, console) keep `node:http`.
 *
 * The request is written as `Connection: close` and the answer read to its length (then the
 * connection is closed from this side), or to the end of the connection (`Transfer-Encoding:
 * chunked` is decoded). Header values and the path may not
 * hold CR, LF or NUL (no header injection from a caller's name).
 *
 * @example
 * ```ts
 * const answer = await plainExchange({ socket: "/run/user/1000/maqet/agent.sock" },
 *   { method: "GET", path: "/v1/vms", headers: { host: "localhost", accept: "application/json" } });
 * answer.status; // 200
 * ```
 */
import { Buffer } from "node:buffer";
import { connect } from "node:net";

export interface PlainTarget {
  socket?: string;
  host?: string;
  port?: number;
}

export interface PlainRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  payload?: string;
  connectTimeoutMs?: number;
}

export interface PlainAnswer {
  status: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Why an exchange failed: before the connection was made, or after (the request may have run). */
export class PlainExchangeError extends Error {
  constructor(
    readonly connected: boolean,
    override readonly cause: NodeJS.ErrnoException,
  ) {
    super(cause.message);
  }
}

/** CR, LF or NUL: a header or path holding one could smuggle another (no regular expression: see below). */
function unsafe(text: string): boolean {
  return text.includes("\r") || text.includes("\n") || text.includes("\0");
}

export function plainExchange(target: PlainTarget, req: PlainRequest): Promise<PlainAnswer> {
  for (const [name, value] of Object.entries(req.headers)) {
    if (unsafe(name) || unsafe(value)) throw new TypeError(`invalid character in HTTP header '${name}'`);
  }
  if (!isPathText(req.path)) throw new TypeError(`invalid character in request path '${req.path}'`);
  const payload = req.payload === undefined ? undefined : Buffer.from(req.payload, "utf8");
  const lines = [`${req.method} ${req.path} HTTP/1.1`];
  for (const [name, value] of Object.entries(req.headers)) lines.push(`${name}: ${value}`);
  lines.push("connection: close");
  if (payload !== undefined && req.headers["content-length"] === undefined) {
    lines.push(`content-length: ${payload.length}`);
  }
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");

  return new Promise((resolve, reject) => {
    const socket = target.socket
      ? connect({ path: target.socket })
      : connect({ host: target.host ?? "localhost", port: target.port ?? 80 });
    let connected = false;
    let settled = false;
    const chunks: Buffer[] = [];
    const fail = (error: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new PlainExchangeError(connected, error));
    };
    const timer = setTimeout(() => {
      if (!connected) fail(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" }));
    }, req.connectTimeoutMs ?? 10_000);
    socket.once("connect", () => {
      connected = true;
      clearTimeout(timer);
      socket.write(payload === undefined ? head : Buffer.concat([head, payload]));
    });
    // An answer with a content-length is whole once that many bytes are in: taken then, without
    // waiting for the agent to close the connection (another turn of both event loops).
    let received = 0;
    let whole: number | undefined;
    const finish = () => {
      if (settled) return;
      try {
        const answer = parseAnswer(Buffer.concat(chunks));
        settled = true;
        socket.destroy();
        resolve(answer);
      } catch (error) {
        fail(error as NodeJS.ErrnoException);
      }
    };
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      whole ??= wholeLength(chunks.length === 1 ? chunk : Buffer.concat(chunks));
      if (whole !== undefined && whole >= 0 && received >= whole) finish();
    });
    socket.once("error", fail);
    socket.once("end", finish);
  });
}

/**
 * The length of the whole answer when its headers are in and give a content-length (-1 when the
 * answer ends with the connection instead: chunked, or no length); undefined while headers come.
 */
export function wholeLength(raw: Buffer): number | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const fields = headerFields(raw.subarray(0, end).toString("latin1").split("\r\n"), 1);
  if (isChunked(fields)) return -1;
  const length = fields["content-length"];
  return length !== undefined && isDigits(length) ? end + 4 + Number(length) : -1;
}

/** Parses a whole HTTP/1.1 response. */
export function parseAnswer(raw: Buffer): PlainAnswer {
  const end = raw.indexOf("\r\n\r\n");
  if (end === -1) throw Object.assign(new Error("the answer ended before its headers did"), { code: "ECONNRESET" });
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const statusLine = lines[0]!;
  const status = statusLine.slice(9, 12);
  if (!(statusLine.startsWith("HTTP/1.0 ") || statusLine.startsWith("HTTP/1.1 ")) || !isDigits(status)) {
    throw Object.assign(new Error(`not an HTTP answer: '${statusLine.slice(0, 40)}'`), { code: "EPROTO" });
  }
  const headers = headerFields(lines, 1);
  let body = raw.subarray(end + 4);
  if (isChunked(headers)) body = dechunk(body);
  else if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    if (body.length < length) {
      throw Object.assign(new Error(`the answer ended after ${body.length} of ${length} bytes`), {
        code: "ECONNRESET",
      });
    }
    body = body.subarray(0, length);
  }
  return { status: Number(status), headers, body };
}

// Plain string work, no regular expressions: each one is compiled on its first use, and a CLI
// call through the agent parses one answer (see src/cli/quick-call.ts).

/** Header lines from `from` on as lower-cased names to trimmed values (a repeated one keeps its last). */
function headerFields(lines: readonly string[], from: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** A request path: printable ASCII without spaces (what requestFor makes: segments are URL-encoded). */
function isPathText(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 32 || c >= 127) return false;
  }
  return true;
}

function isChunked(headers: Record<string, string>): boolean {
  return (headers["transfer-encoding"] ?? "").toLowerCase().includes("chunked");
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd === -1) break;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString("latin1").split(";")[0]!, 16);
    if (!Number.isFinite(size)) break;
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (start + size > data.length) break;
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
  throw Object.assign(new Error("the chunked answer ended early"), { code: "ECONNRESET" });
}
