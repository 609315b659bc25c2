/**
 * A CLI call handed whole to the agent (`POST /v1/cli`): the agent parses the caller's argv with
 * its registry, runs the command's request on its own routes, in its process and as the caller,
 * and renders the answer with the CLI's renderers — the same code as the CLI's path through an
 * agent (agent-cli.ts), so the same output, `--json` and exit code. The caller's
 * executable then only prints it (quick-call.ts): no bundle of its own to load, parse or run.
 *
 * Only when it is the same maqet (the version the client sends), for commands that print one
 * answer (one-shot-commands.ts), and with no option that names another store, agent or local file;
 * otherwise the answer is `{fallBack: why}` and the client runs its usual path. Output is
 * captured in order, stdout and stderr apart.
 *
 * @example
 * ```ts
 * await runOneShot({ argv: ["ls", "--json"], version: "0.9.0" }, { version: "0.9.0", local });
 * // { exitCode: 0, output: [[1, "[...]\n"]], command: "ls" }
 * ```
 */
import { routeOf } from "../api/command-routes.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { FALL_BACK, runThroughAgent } from "./agent-cli.ts";
import type { AgentTarget } from "./agent-target.ts";
import type { CliIo } from "./main.ts";
import { isOneShot, ONE_SHOT_ENV } from "./one-shot-commands.ts";
import { type ParsedArgs, parseArgs } from "./parse-args.ts";
import { reportError } from "./report-error.ts";

export interface OneShotRequest {
  argv: string[];
  /** The client's maqet version: a call is handed over only between equal versions. */
  version: string;
  /** The `--agent` the client found on its argv (the agent checks its parse agrees). */
  agent?: string;
  env?: Partial<Record<(typeof ONE_SHOT_ENV)[number], string>>;
  /** Which of the client's stdout and stderr are terminals (colour). */
  tty?: { stdout?: boolean; stderr?: boolean };
}

export type OneShotAnswer =
  | { exitCode: number; output: Array<[1 | 2, string]>; command: string }
  | { fallBack: string };

export interface OneShotSelf {
  version: string;
  /** The agent's command routes, called in its process as the caller (see AgentEndpoint.local). */
  local: NonNullable<AgentTarget["local"]>;
}

/** Checks a `/v1/cli` body; INVALID_ARGUMENT names what is wrong. */
export function oneShotRequestOf(body: unknown): OneShotRequest {
  const bad = (what: string): never => {
    throw new MaqetError("INVALID_ARGUMENT", `POST /v1/cli: ${what} (docs/agent.md "Calls handed whole").`);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body)) bad("the body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b.argv) || !b.argv.every((w) => typeof w === "string")) bad("'argv' must be a list of strings");
  if (typeof b.version !== "string") bad("'version' must be the client's maqet version (a string)");
  if (b.agent !== undefined && typeof b.agent !== "string") bad("'agent' must be a string");
  const env: OneShotRequest["env"] = {};
  if (b.env !== undefined) {
    if (typeof b.env !== "object" || b.env === null) bad("'env' must be an object");
    for (const name of ONE_SHOT_ENV) {
      const value = (b.env as Record<string, unknown>)[name];
      if (value === undefined) continue;
      if (typeof value !== "string") bad(`'env.${name}' must be a string`);
      env[name] = value as string;
    }
  }
  const tty = (b.tty ?? {}) as Record<string, unknown>;
  return {
    argv: b.argv as string[],
    version: b.version as string,
    ...(b.agent === undefined ? {} : { agent: b.agent as string }),
    env,
    tty: { stdout: tty.stdout === true, stderr: tty.stderr === true },
  };
}

export async function runOneShot(request: OneShotRequest, self: OneShotSelf): Promise<OneShotAnswer> {
  if (request.version !== self.version) return { fallBack: `version: the agent is maqet ${self.version}` };
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(request.argv);
  } catch {
    return { fallBack: "usage: the client reports it" };
  }
  const why = notHandedOver(parsed, request);
  if (why !== undefined) return { fallBack: why };
  const output: Array<[1 | 2, string]> = [];
  const io: CliIo = {
    env: { ...request.env },
    stdout: (text) => output.push([1, `${text}\n`]),
    stderr: (text) => output.push([2, `${text}\n`]),
    write: (text) => output.push([1, text]),
    tty: { ...request.tty },
  };
  let exitCode: number;
  try {
    exitCode = await runThroughAgent(parsed, io, { explicit: true, local: self.local });
  } catch (error) {
    exitCode = reportError(error, parsed.global.json, io);
  }
  if (exitCode === FALL_BACK) return { fallBack: "the agent did not answer itself" };
  return { exitCode, output, command: parsed.command!.name };
}

/** Why this parsed call stays with the client, or undefined. */
function notHandedOver(parsed: ParsedArgs, request: OneShotRequest): string | undefined {
  const g = parsed.global;
  if (g.help || g.version) return "help and --version are answered by the client";
  if (g.db !== undefined || g.dataDir !== undefined || g.runtimeDir !== undefined || g.configDir !== undefined) {
    return "an option names a store or directory of the client's";
  }
  if (g.noAgent === true) return "--no-agent";
  if (g.logFile !== undefined) return "--log-file is written by the client";
  if (g.agent !== request.agent) return "--agent differs from the client's";
  const route = parsed.command ? routeOf(parsed.command.name) : undefined;
  if (route === undefined) return "not a command with a route";
  if (!isOneShot(route)) return `'${route.command}' runs in the client (progress, a wait, a stream or a file)`;
  return undefined;
}
