/**
 * The agent's interactive console: `GET /v1/vms/:vm/console?interactive=true` with
 * `Connection: Upgrade` and `Upgrade: maqet-console.v1` (node:http hands such requests to the
 * server's `upgrade` event, not to the request handler). The agent attaches for the caller
 * (`maqet.as(caller).attachConsole`: the writer seat, `vm.console-attached` with the caller as
 * actor), answers `101 Switching Protocols` with the attach in a `Maqet-Console` header, then
 * relays raw bytes between the client and QEMU's console socket (read-only: the log's new
 * output). The client closing its end detaches; when the attach ends otherwise (VM stopped, seat
 * taken over) the agent writes one line saying why and closes. The detach is recorded by the
 * attachment. A refusal is the usual JSON error answer (CONSOLE_BUSY is 409) and no upgrade.
 * Query: `force=true`, `read-only=true`.
 *
 * @example
 * ```ts
 * server.on("upgrade", (req, socket, head) => serveConsoleUpgrade(maqet, caller, req, socket, head, live));
 * ```
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Maqet } from "../api/maqet.ts";
import type { ConsoleConnection } from "../api/ops/console-attach-ops.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { CallerIdentity } from "./caller-identity.ts";
import { errorResponse } from "./http-errors.ts";

export const CONSOLE_UPGRADE_PROTOCOL = "maqet-console.v1";
const CONSOLE_PATH = /^\/v1\/vms\/([^/]+)\/console$/;

/** True for a request this route serves (the path; the protocol is checked by {@link serveConsoleUpgrade}). */
export function isConsoleUpgrade(req: IncomingMessage): boolean {
  return CONSOLE_PATH.test(new URL(req.url ?? "/", "http://maqet").pathname);
}

/** Serves one upgrade; resolves with the error code it answered, if any. */
export async function serveConsoleUpgrade(
  maqet: Maqet,
  caller: CallerIdentity,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  live: Set<ConsoleConnection>,
  /** Given the attachment's recorded detach, so a stopping agent can wait for it. */
  track: (detached: Promise<unknown>) => void = () => undefined,
): Promise<string | undefined> {
  try {
    const url = new URL(req.url ?? "/", "http://maqet");
    const match = CONSOLE_PATH.exec(url.pathname);
    if (match === null || req.method !== "GET") {
      throw new MaqetError(
        "ROUTE_NOT_FOUND",
        `No upgrade for ${req.method} ${url.pathname}: only GET /v1/vms/:vm/console upgrades.`,
      );
    }
    const protocols = String(req.headers.upgrade ?? "")
      .split(",")
      .map((p) => p.trim().toLowerCase());
    if (!protocols.includes(CONSOLE_UPGRADE_PROTOCOL)) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `The console upgrades to '${CONSOLE_UPGRADE_PROTOCOL}' only (asked: '${req.headers.upgrade ?? ""}'). See docs/agent.md.`,
      );
    }
    const vm = decodeURIComponent(match[1]!);
    const flag = (name: string) => url.searchParams.get(name) === "true";
    const attachment = await maqet.as(caller).attachConsole(vm, { force: flag("force"), readOnly: flag("read-only") });
    const about = {
      vm: attachment.vm,
      vmId: attachment.vmId,
      session: attachment.session,
      mode: attachment.mode,
      since: attachment.since,
      ...(attachment.takeover ? { takeover: attachment.takeover } : {}),
      ...(attachment.takenOverFrom ? { takenOverFrom: attachment.takenOverFrom } : {}),
    };
    // Output that comes before the 101 is written waits for it.
    let held: Uint8Array[] | undefined = [];
    const conn = await attachment.open((bytes) => (held ? held.push(bytes) : socket.write(bytes)));
    live.add(conn);
    track(attachment.detached);
    socket.write(
      [
        "HTTP/1.1 101 Switching Protocols",
        `Upgrade: ${CONSOLE_UPGRADE_PROTOCOL}`,
        "Connection: Upgrade",
        `Maqet-Console: ${JSON.stringify(about)}`,
        "",
        "",
      ].join("\r\n"),
    );
    for (const bytes of held) socket.write(bytes);
    held = undefined;
    if (head.length > 0) conn.write(new Uint8Array(head));
    socket.on("data", (chunk: Buffer) => conn.write(new Uint8Array(chunk)));
    socket.on("end", () => conn.close("detached"));
    socket.on("close", () => conn.close("disconnected"));
    socket.on("error", () => conn.close("disconnected"));
    void conn.ended.then((end) => {
      live.delete(conn);
      if (end.reason === "taken-over")
        socket.write(
          `\r\n[maqet: console taken over by ${end.by?.user ?? "another attach"} (pid ${end.by?.pid ?? "?"}) with --force]\r\n`,
        );
      if (end.reason === "vm-stopped") socket.write(`\r\n[maqet: VM '${attachment.vm}' stopped; console closed]\r\n`);
      if (end.reason === "error") socket.write(`\r\n[maqet: console failed: ${end.message ?? "unknown error"}]\r\n`);
      socket.end();
    });
    return undefined;
  } catch (error) {
    const { status, body } = errorResponse(error);
    const text = JSON.stringify(body);
    socket.end(
      [
        `HTTP/1.1 ${status} ${status === 409 ? "Conflict" : "Error"}`,
        "Content-Type: application/json",
        `Content-Length: ${Buffer.byteLength(text)}`,
        "Connection: close",
        "",
        text,
      ].join("\r\n"),
    );
    return body.error.code;
  }
}
