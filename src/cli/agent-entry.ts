/**
 * The `maqet` executable's first step, kept light: `maqet agent` runs the agent; a command with
 * an agent to go through (see agent-target.ts) runs as an API call (agent-cli.ts), importing no
 * store, XState or execa; anything else (no agent answering, `--no-agent`, help, `demo`) loads
 * the in-process CLI (main.ts) as before.
 *
 * @example
 * ```ts
 * process.exitCode = await runMaqet(process.argv.slice(2), io);
 * ```
 */
// node:fs, not node:fs/promises: the latter loads a dozen more of Node's own modules (readline,
// fs watchers) on every call through an agent; these are one stat and a small file.
import { lstatSync, readFileSync } from "node:fs";
import { routeOf } from "../api/command-routes.ts";
import { agentTarget } from "./agent-target.ts";
import type { CliIo } from "./main.ts";
import { type ParsedArgs, parseArgs } from "./parse-args.ts";
import { reportError } from "./report-error.ts";

const VALUE_FLAGS = new Set(["--db", "--data-dir", "--runtime-dir", "--agent", "--color"]);

/** True when the command is `agent` (after any global options). */
export function isAgentCommand(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (VALUE_FLAGS.has(token)) i++;
    else if (!token.startsWith("-")) return token === "agent";
  }
  return false;
}

export async function runMaqet(argv: readonly string[], io: CliIo): Promise<number> {
  if (isAgentCommand(argv)) {
    const { runAgent } = await import("../agent/run-agent.ts");
    return runAgent(argv, { env: io.env, stdout: io.stdout, stderr: io.stderr });
  }
  const parsed = tryParse(argv);
  const answer = parsed ? await quickAnswer(parsed) : undefined;
  if (answer !== undefined) {
    io.stdout(answer);
    return 0;
  }
  const target = parsed ? agentTarget(parsed.global, io.env) : undefined;
  const route = parsed?.command ? routeOf(parsed.command.name) : undefined;
  const viaAgent =
    parsed && route && target && !parsed.global.help && !parsed.global.version && !route.needsTerminal?.(parsed.input)
      ? async (): Promise<number | undefined> => {
          try {
            const { FALL_BACK, runThroughAgent } = await import("./agent-cli.ts");
            const code = await runThroughAgent(parsed, io, target);
            return code === FALL_BACK ? undefined : code; // no agent answered: run in-process
          } catch (error) {
            return reportError(error, parsed.global.json, io);
          }
        }
      : undefined;
  if (viaAgent && target) {
    if (target.explicit || (await isSocket(target.socket)) || (await agentStarting(target.socket, io))) {
      const code = await viaAgent();
      if (code !== undefined) return code;
      // Nothing answered on the socket file: a dead agent's, which a starting agent replaces.
      if (await agentStarting(target.socket, io)) {
        const again = await viaAgent();
        if (again !== undefined) return again;
      }
    }
  }
  const { runCli } = await import("./main.ts");
  // A second look once the in-process CLI is loaded (a few hundred milliseconds): an agent started
  // at the same moment as this command (`maqet agent & maqet ls`) holds its socket's lock by now,
  // and this command waits for it instead of opening the store the agent is about to hold.
  if (viaAgent && target && !target.explicit && (await agentStarting(target.socket, io))) {
    const code = await viaAgent();
    if (code !== undefined) return code;
  }
  // A command that needs this terminal (`ssh`, `edit`) runs here, with its operations still
  // going to the agent when one answers: the agent may hold the embedded store.
  if (parsed && route?.terminalViaAgent && route.needsTerminal?.(parsed.input) && target && !parsed.global.help) {
    if (target.explicit || (await isSocket(target.socket)) || (await agentStarting(target.socket, io))) {
      // Only an agent that serves the store this call names (--db, --data-dir, MAQET_DATABASE_URL).
      const { agentServesCall } = await import("./agent-cli.ts");
      if (await agentServesCall(parsed, io, target)) {
        const token = target.token ?? (target.tokenFile ? readFileSync(target.tokenFile, "utf8").trim() : undefined);
        return runCli(argv, io, { agent: (target.url ?? target.socket)!, ...(token ? { agentToken: token } : {}) });
      }
    }
  }
  return runCli(argv, io);
}

/**
 * A call the executable handed whole to the agent (quick-call.ts) whose connection broke after
 * the request went out: told as a call through the agent tells it (the operation may have run;
 * exit 1), never sent again.
 */
export async function reportBrokenCall(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = tryParse(argv);
  const target = parsed ? agentTarget(parsed.global, io.env) : undefined;
  const { brokenConnectionError } = await import("../client/agent-transport.ts");
  const endpoint = target?.socket !== undefined ? { socket: target.socket } : { url: target?.url };
  return reportError(brokenConnectionError(endpoint), parsed?.global.json ?? false, io);
}

function tryParse(argv: readonly string[]): ParsedArgs | undefined {
  try {
    return parseArgs(argv);
  } catch {
    return undefined; // the in-process CLI reports it, as it always has
  }
}

/**
 * `--version` and help (`maqet`, `maqet help [TOPIC]`, `maqet CMD --help`) answered here, from
 * the registry and package.json, without loading the in-process CLI (~150 ms). Undefined for
 * anything else, and when help fails (an unknown topic) or a run log is asked for: the in-process
 * CLI answers those as it always has.
 */
async function quickAnswer(parsed: ParsedArgs): Promise<string | undefined> {
  if (parsed.global.logFile !== undefined) return undefined;
  if (parsed.global.version) {
    const { packageVersion } = await import("../adapters/package-version.ts");
    return packageVersion();
  }
  if (parsed.commandName !== undefined && parsed.commandName !== "help" && !parsed.global.help) return undefined;
  const topic = parsed.commandName === "help" ? (parsed.input.topic as string | undefined) : parsed.commandName;
  try {
    const { renderHelp } = await import("./help.ts");
    return renderHelp(topic);
  } catch {
    return undefined;
  }
}

/** An agent that holds the socket's lock but does not listen yet: wait for it (starting-agent.ts). */
async function agentStarting(socket: string | undefined, io: CliIo): Promise<boolean> {
  if (socket === undefined) return false;
  const { waitForStartingAgent } = await import("../adapters/starting-agent.ts");
  return waitForStartingAgent(socket, { say: io.stderr });
}

async function isSocket(path: string | undefined): Promise<boolean> {
  if (path === undefined) return false;
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}
