/**
 * `maqet agent`: the long-lived process. Claims its socket (and data directory) first, before the
 * store and the API's modules load (most of a second on a loaded machine): a CLI started at the
 * same moment sees the lock at once and waits for the socket (src/adapters/starting-agent.ts)
 * instead of opening the store itself. Then serve-agent.ts opens the store once, serves the API
 * and stops gracefully on SIGTERM/SIGINT. QEMU keeps running: the next agent reattaches every VM.
 * A second signal exits at once.
 *
 * @example
 * ```ts
 * const code = await runAgent(["--log-format", "json"], { env: process.env, stderr: console.error });
 * ```
 */
import { join } from "node:path";
import { claimAgentSocket } from "../adapters/agent-socket.ts";
import { defaultDataDir, defaultRuntimeRoot } from "../adapters/default-dirs.ts";
import { agentHelp, parseAgentArgs } from "./agent-args.ts";
import { agentFailure, createAgentLog } from "./agent-log.ts";

export interface AgentIo {
  env: Record<string, string | undefined>;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Where SIGTERM/SIGINT come from (default: this process). */
  signals?: Pick<NodeJS.Process, "on" | "off">;
}

/** The default socket: `agent.sock` in maqet's runtime directory. */
export function defaultAgentSocket(env: Record<string, string | undefined>, runtimeDir?: string): string {
  return join(runtimeDir ?? defaultRuntimeRoot(env), "agent.sock");
}

/** Runs the agent until it is stopped; resolves with the exit code. */
export async function runAgent(argv: readonly string[], io: AgentIo): Promise<number> {
  let args: ReturnType<typeof parseAgentArgs>;
  try {
    args = parseAgentArgs(argv);
  } catch (error) {
    return agentFailure(error, io);
  }
  if (args.help) {
    io.stdout(agentHelp());
    return 0;
  }
  const log = createAgentLog(args.logFormat, io.stderr);
  const databaseUrl = args.db ?? io.env.MAQET_DATABASE_URL;
  const runtimeDir = args.runtimeDir ?? defaultRuntimeRoot(io.env);
  const dataDir = args.dataDir ?? defaultDataDir(io.env);
  const socket = args.socket ?? defaultAgentSocket(io.env, runtimeDir);
  let place: Awaited<ReturnType<typeof claimAgentSocket>>;
  try {
    place = await claimAgentSocket({ socket, dataDir: databaseUrl ? undefined : dataDir, group: args.group });
  } catch (error) {
    return agentFailure(error, io);
  }
  try {
    const { serveAgent } = await import("./serve-agent.ts");
    return await serveAgent({ args, io, log, place, databaseUrl, dataDir, runtimeDir, socket });
  } catch (error) {
    await place.release().catch(() => undefined);
    return agentFailure(error, io);
  }
}
