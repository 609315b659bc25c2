/**
 * Who sent a request. Node cannot read a unix socket peer's credentials (SO_PEERCRED), so the
 * client declares itself in headers (`Maqet-User`, `Maqet-Uid`, `Maqet-Pid`, `Maqet-Source`,
 * `Maqet-Correlation-Id`); the socket's mode (0600, or 0660 for `--group`) is what restricts who
 * may send them, so they are informational, recorded as sent (docs/agent.md "Who asked").
 * Over TCP the host is the peer address and the token is what authenticates.
 *
 * @example
 * ```ts
 * const caller = callerOf(req, { host: "web01" });
 * await maqet.as(caller).start("web");
 * ```
 */
import type { IncomingMessage } from "node:http";

import type { CallerIdentity } from "../api/caller-identity.ts";

export type { CallerIdentity };

const SAFE = /^[\w.@:+-]{1,128}$/;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const one = Array.isArray(value) ? value[0] : value;
  return one !== undefined && SAFE.test(one) ? one : undefined;
}

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * The caller of one request; `host` is the agent's host for a unix socket, the peer address over
 * TCP. A header that is malformed (not a short token) is left out rather than recorded.
 */
export function callerOf(req: IncomingMessage, where: { host: string; tcp: boolean }): CallerIdentity {
  const caller: CallerIdentity = {
    host: where.tcp ? (req.socket.remoteAddress ?? "tcp") : where.host,
    source: header(req, "maqet-source") ?? (where.tcp ? "http" : "agent-api"),
  };
  const user = header(req, "maqet-user");
  const uid = integer(header(req, "maqet-uid"));
  const pid = integer(header(req, "maqet-pid"));
  const correlationId = header(req, "maqet-correlation-id");
  if (user !== undefined) caller.user = user;
  if (uid !== undefined) caller.uid = uid;
  if (pid !== undefined) caller.pid = pid;
  if (correlationId !== undefined) caller.correlationId = correlationId;
  return caller;
}
