/**
 * The headers a client sends to say who it is (recorded on the events its operations append):
 * user, uid, pid and source (`cli`, or the library's `source`). The agent cannot verify them
 * (Node has no SO_PEERCRED); the socket's mode decides who may talk to it at all.
 *
 * @example
 * ```ts
 * callerHeaders("cli"); // { "maqet-user": "ada", "maqet-uid": "1000", "maqet-pid": "4242", "maqet-source": "cli" }
 * ```
 */
import { userName } from "../adapters/process-identity.ts";

export function callerHeaders(source: string, env: Record<string, string | undefined> = {}): Record<string, string> {
  const headers: Record<string, string> = { "maqet-pid": String(process.pid), "maqet-source": source };
  const user = env.USER ?? env.LOGNAME ?? userName();
  if (user) headers["maqet-user"] = user;
  const uid = process.getuid?.();
  if (uid !== undefined) headers["maqet-uid"] = String(uid);
  return headers;
}
