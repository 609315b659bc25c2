/**
 * A free TCP port on the loopback: bound to port 0, read, released. For servers a test starts
 * itself (a PostgreSQL cluster, the web console, a guest's forwarded port).
 */
import { createServer } from "node:net";

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound, then released).
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error(`no TCP port: the server's address is ${String(address)}`)),
      );
    });
  });
}
