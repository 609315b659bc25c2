/**
 * An HTTP/1.1 server (`node:http`) for the agent's handler, listening on a unix socket or a TCP
 * port; resolves once it listens. No request timeout (a start waiting for a serial line may take
 * minutes); idle keep-alive connections close after 5 s.
 *
 * @example
 * ```ts
 * const server = await listenHttp(handler, { socket: "/run/user/1000/maqet/agent.sock" });
 * server.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

export type HttpServer = Server;

export interface HttpHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** `Connection: Upgrade` requests (the interactive console). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export function listenHttp(
  handler: HttpHandler,
  where: { socket: string } | { port: number; host: string },
): Promise<HttpServer> {
  const server = createServer(handler.handle).on("upgrade", handler.upgrade);
  // Long operations (a start waiting for a serial line) must not be cut by Node's defaults.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve(server);
    };
    if ("socket" in where) server.listen(where.socket, done);
    else server.listen(where.port, where.host, done);
  });
}
