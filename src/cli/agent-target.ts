/**
 * Which agent (if any) a CLI call goes through: `--no-agent` never; `--agent PATH` or
 * `MAQET_AGENT` that one (it must answer, else AGENT_UNAVAILABLE); otherwise the default socket,
 * `agent.sock` in maqet's runtime directory, when something answers there and serves the store
 * the call names (`--db`, `--data-dir`, MAQET_DATABASE_URL): else the call runs in-process.
 * `MAQET_AGENT` may also be `http://HOST:PORT` with `MAQET_AGENT_TOKEN` (or a token file path in
 * `MAQET_AGENT_TOKEN_FILE`).
 *
 * @example
 * ```ts
 * agentTarget(global, process.env); // { endpoint: { socket: "/run/user/1000/maqet/agent.sock" }, explicit: false }
 * ```
 */
import { join } from "node:path";
import { defaultRuntimeRoot } from "../adapters/default-dirs.ts";
import type { AgentEndpoint } from "../client/agent-transport.ts";
import type { GlobalOptions } from "./parse-args.ts";

export interface AgentTarget {
  socket?: string;
  url?: string;
  token?: string;
  tokenFile?: string;
  /** Named by --agent or MAQET_AGENT: it must answer. */
  explicit: boolean;
  /** The agent is this process (see AgentEndpoint.local). */
  local?: AgentEndpoint["local"];
}

export function agentTarget(
  global: Pick<GlobalOptions, "noAgent" | "agent" | "runtimeDir">,
  env: Readonly<Record<string, string | undefined>>,
): AgentTarget | undefined {
  if (global.noAgent === true || env.MAQET_NO_AGENT === "1") return undefined;
  const named = global.agent ?? (env.MAQET_AGENT || undefined);
  if (named !== undefined) {
    if (/^https?:\/\//.test(named)) {
      return {
        url: named,
        ...(env.MAQET_AGENT_TOKEN ? { token: env.MAQET_AGENT_TOKEN } : {}),
        ...(env.MAQET_AGENT_TOKEN_FILE ? { tokenFile: env.MAQET_AGENT_TOKEN_FILE } : {}),
        explicit: true,
      };
    }
    return { socket: named, explicit: true };
  }
  return { socket: join(global.runtimeDir ?? defaultRuntimeRoot(env), "agent.sock"), explicit: false };
}
