/**
 * One HTTP/1.1 request whose answer is read as it comes (`node:http`, loaded on first use): the
 * agent client's path for streamed answers (progress, events, console text); plain-http.ts reads
 * one JSON value faster. A connection that cannot be made, or breaks before the answer's head,
 * rejects with a {@link PlainExchangeError} saying whether it was connected (the operation may
 * have run). Also the console's upgraded connection ({@link httpUpgrade}).
 *
 * @example
 * ```ts
 * const answer = await streamExchange({ socketPath: "/run/user/1000/maqet/agent.sock", path: "/v1/events" },
 *   { method: "GET", headers: { host: "localhost", accept: "text/event-stream" } });
 * answer.body.on("data", (chunk) => console.log(String(chunk)));
 * ```
 */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { PlainExchangeError } from "./plain-http.ts";

/** A unix socket and path, or a host, port and path. */
export type StreamTarget = { socketPath: string; path: string } | { host: string; port: number; path: string };

export interface StreamRequest {
  method: string;
  headers: Record<string, string>;
  payload?: string;
  /** Give up connecting after this long (default 10 000 ms). */
  connectTimeoutMs?: number;
}

export interface StreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as it comes. */
  body: IncomingMessage;
}

export async function streamExchange(target: StreamTarget, req: StreamRequest): Promise<StreamAnswer> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    let connected = false;
    const r = request({ ...target, method: req.method, headers: req.headers, agent: false }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    const timer = setTimeout(() => {
      if (!connected) r.destroy(new Error("connect timeout"));
    }, req.connectTimeoutMs ?? 10_000);
    r.on("socket", (socket) => {
      socket.once("connect", () => {
        connected = true;
        clearTimeout(timer);
      });
    });
    r.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new PlainExchangeError(connected, error));
    });
    r.end(req.payload);
  });
}

/** What an upgrade request got: the upgraded connection, or an ordinary answer (a refusal). */
/** The connection an upgraded request hands over (the interactive console's byte stream). */
export type UpgradedSocket = Socket;

export type UpgradeOutcome =
  | { kind: "upgraded"; headers: IncomingHttpHeaders; socket: UpgradedSocket; head: Buffer }
  | { kind: "answered"; status: number; text: string };

/** A GET with `Connection: Upgrade` (the headers say to what); rejects when the connection fails. */
export async function httpUpgrade(target: StreamTarget, headers: Record<string, string>): Promise<UpgradeOutcome> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method: "GET", headers, agent: false });
    req.on("upgrade", (res, socket: Socket, head: Buffer) => {
      socket.pause();
      resolve({ kind: "upgraded", headers: res.headers, socket, head });
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ kind: "answered", status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
