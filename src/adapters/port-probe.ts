/**
 * Host ports for `ports:` forwards, and the SSH banner check of `--wait-for ssh`:
 *
 * - `bindForwards` checks each fixed host port is free (binds it, then lets it go) and picks a
 *   free port for each `0` (the kernel's choice for a bind to port 0); a port in use is a
 *   PORT_IN_USE error (exit 3) naming the forward, before QEMU is spawned. (QEMU's own refusal,
 *   in the short gap between this check and its bind, is mapped to the same error by the start.)
 * - `sshAnswers` connects to the forwarded port and reads the server's identification line: true
 *   once it starts with `SSH-2.0` (RFC 4253 §4.2). QEMU's user networking accepts a forwarded
 *   connection even when nothing listens in the guest (it then closes it), so a TCP connect alone
 *   proves nothing.
 *
 * @example
 * ```ts
 * const probe = createPortProbe();
 * const bound = await probe.bindForwards([{ hostIp: "127.0.0.1", hostPort: 0, guestPort: 22, protocol: "tcp" }]);
 * bound[0].hostPort; // e.g. 41873
 * await probe.sshAnswers("127.0.0.1", bound[0].hostPort, 2000);
 * ```
 */
import { createSocket } from "node:dgram";
import { createConnection, createServer } from "node:net";
import type { PortProbe } from "../actors/ports.ts";
import type { PortForward } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";

export function createPortProbe(): PortProbe {
  return {
    bindForwards: async (forwards) => {
      const out: PortForward[] = [];
      for (const [i, forward] of forwards.entries()) {
        // A free port chosen now must not be chosen twice for this VM.
        let port = await bindOnce(forward, i);
        while (forward.hostPort === 0 && out.some((f) => f.protocol === forward.protocol && f.hostPort === port)) {
          port = await bindOnce(forward, i);
        }
        out.push({ ...forward, hostPort: port });
      }
      return out;
    },
    sshAnswers: (host, port, timeoutMs) => sshBanner(host, port, timeoutMs),
  };
}

/**
 * The error of a forward whose host port is taken.
 *
 * @example
 * ```ts
 * portInUseError({ hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }, 0).code; // "PORT_IN_USE"
 * ```
 */
export function portInUseError(forward: PortForward, index: number | undefined, cause?: unknown): MaqetError {
  const where = index === undefined ? "" : ` (ports[${index}])`;
  return new MaqetError(
    "PORT_IN_USE",
    `Host port ${forward.hostIp}:${forward.hostPort}/${forward.protocol}${where} is already in use, so guest port ${forward.guestPort} cannot be forwarded there. Stop what listens on it (\`ss -ltnp 'sport = :${forward.hostPort}'\`), or choose another host port in ports: (0 picks a free one).`,
    {
      cause,
      details: {
        hostIp: forward.hostIp,
        hostPort: forward.hostPort,
        guestPort: forward.guestPort,
        protocol: forward.protocol,
        ...(index === undefined ? {} : { keyPath: `ports[${index}]` }),
      },
    },
  );
}

function bindOnce(forward: PortForward, index: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE" || error.code === "EACCES") reject(portInUseError(forward, index, error));
      else {
        reject(
          new MaqetError(
            "INVALID_ARGUMENT",
            `Cannot listen on ${forward.hostIp}:${forward.hostPort} for ports[${index}]: ${error.message}. Use an address of this host (127.0.0.1 or 0.0.0.0).`,
            { cause: error, details: { keyPath: `ports[${index}]` } },
          ),
        );
      }
    };
    if (forward.protocol === "udp") {
      const socket = createSocket("udp4");
      socket.once("error", fail);
      socket.bind({ address: forward.hostIp, port: forward.hostPort, exclusive: true }, () => {
        const { port } = socket.address();
        socket.close(() => resolve(port));
      });
      return;
    }
    const server = createServer();
    server.once("error", fail);
    server.listen({ host: forward.hostIp, port: forward.hostPort, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : forward.hostPort;
      server.close(() => resolve(port));
    });
  });
}

function sshBanner(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let text = "";
    const socket = createConnection({ host, port });
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      text += chunk;
      // Servers may send other lines first; the identification line is the one that counts.
      if (/(^|\n)SSH-2\.0-/.test(text)) done(true);
      else if (text.length > 8192) done(false);
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}
