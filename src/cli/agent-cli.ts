/**
 * The CLI through an agent: the parsed command becomes its API request (the route derived from
 * the registry), the answer is printed with the same renderers, `--json` and exit codes as
 * in-process. Files the command names are the caller's: relative paths are sent absolute, and
 * `add` sends its YAML (the agent may not see the file). `events` reads `/v1/events` (with
 * `--follow`, server-sent events that resume with Last-Event-ID if the agent restarts);
 * `console --follow` streams text. Imports no store, no XState, no execa.
 *
 * @example
 * ```ts
 * const code = await runThroughAgent(parsed, io, { socket: "/run/user/1000/maqet/agent.sock", explicit: false });
 * if (code === FALL_BACK) return runCli(argv, io);
 * ```
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { defaultDataDir } from "../adapters/default-dirs.ts";
import { requestFor, routeOf } from "../api/command-routes.ts";
import type { CommandInput } from "../api/commands/command-spec.ts";
import type { OperationProgress } from "../api/progress-hub.ts";
import { type AgentEndpoint, type AgentResponse, agentFetch, isUnavailable } from "../client/agent-transport.ts";
import { callerHeaders } from "../client/caller-headers.ts";
import { followAgentEvents } from "../client/follow-events.ts";
import { storeIdOf } from "../client/store-id.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import type { AgentTarget } from "./agent-target.ts";
import { colorEnabled, NO_PAINT, type Paint, paintFor } from "./color.ts";
import type { CliIo } from "./main.ts";
import { WAITING_COMMANDS, WITH_PROGRESS } from "./one-shot-commands.ts";
import type { ParsedArgs } from "./parse-args.ts";

/** Returned when no agent answers on the default socket: run in-process instead. */
export const FALL_BACK = -1;

export async function runThroughAgent(parsed: ParsedArgs, io: CliIo, target: AgentTarget): Promise<number> {
  const route = routeOf(parsed.command!.name)!;
  const json = parsed.global.json;
  const endpoint = endpointOf(target, io);
  try {
    if (!(await servesOurStore(parsed, io, endpoint, target))) return FALL_BACK;
    const input = await localInput(route.localPaths, route.configFile, parsed.input, io.env);
    const name = route.command;
    if (name === "events") return await events(endpoint, parsed.input, json, io);
    if (name === "console" && parsed.input.interactive === true) return await interactive(endpoint, parsed.input, io);
    const request = requestFor(route, input);
    const follow = route.streams === "text" && parsed.input.follow === true;
    const progress = !json && WITH_PROGRESS.has(name);
    const vm = typeof parsed.input.vm === "string" ? parsed.input.vm : undefined;
    if (io.interrupt && vm !== undefined && WAITING_COMMANDS.has(name)) {
      // The agent runs the operation, not this process: Ctrl-C ends the wait, not the operation.
      const { signals, exit } = io.interrupt;
      signals.on("SIGINT", () => {
        io.stderr(
          `\nmaqet: interrupted: the agent carries on with \`maqet ${name} ${vm}\`; VM '${vm}' may still be running. See \`maqet status ${vm}\`.`,
        );
        exit(130);
      });
    }
    const res = await agentFetch(endpoint, {
      ...request,
      accept: follow && !json ? "text/plain" : follow || progress ? "application/x-ndjson" : "application/json",
    });
    if (res.status >= 400) return await printError(res, json, io);
    if (follow) return await pipeText(res, io);
    const result = progress ? await progressThenResult(res, io) : await res.json();
    if (!json && name !== "qmp" && parsed.global.format === "yaml") {
      io.stdout((await import("./run-log.ts")).renderYaml(result));
      return 0;
    }
    if (!json && name !== "qmp") await loadRenderers();
    print(
      name,
      result,
      parsed.input,
      json,
      io,
      paintFor(colorEnabled({ isTTY: io.tty?.stdout }, io.env, parsed.global.color)),
    );
    return 0;
  } catch (error) {
    if (!target.explicit && isUnavailable(error)) return FALL_BACK;
    throw error;
  }
}

/**
 * Whether the call's operations may go to this agent: it serves the store the call names (see
 * servesOurStore), or, not named by --agent/MAQET_AGENT, it does not answer (false: run
 * in-process). For a command run in this process with its operations through the agent (`edit`).
 */
export async function agentServesCall(parsed: ParsedArgs, io: CliIo, target: AgentTarget): Promise<boolean> {
  try {
    return await servesOurStore(parsed, io, endpointOf(target, io), target);
  } catch (error) {
    if (!target.explicit && isUnavailable(error)) return false;
    throw error;
  }
}

/** Where and as whom to call: the caller's identity headers (none in the agent's own process). */
function endpointOf(target: AgentTarget, io: CliIo): AgentEndpoint {
  const endpoint: AgentEndpoint = {
    ...(target.socket ? { socket: target.socket } : { url: target.url }),
    ...(target.token ? { token: target.token } : {}),
    ...(target.local ? { local: target.local } : {}),
    headers: target.local ? {} : callerHeaders("cli", io.env),
  };
  if (target.tokenFile) endpoint.token = readFileSync(target.tokenFile, "utf8").trim(); // node:fs: see agent-entry.ts
  return endpoint;
}

/** With --db / --data-dir (or MAQET_DATABASE_URL), the default agent is used only if it serves that store. */
async function servesOurStore(
  parsed: ParsedArgs,
  io: CliIo,
  endpoint: AgentEndpoint,
  target: AgentTarget,
): Promise<boolean> {
  const g = parsed.global;
  const databaseUrl = g.db ?? io.env.MAQET_DATABASE_URL;
  if (databaseUrl === undefined && g.dataDir === undefined) return true;
  const about = await (await agentFetch(endpoint, { method: "GET", path: "/v1/version" })).json<{ store?: string }>();
  const wanted = storeIdOf({ databaseUrl, dataDir: g.dataDir ?? defaultDataDir(io.env) });
  if (about.store === wanted) return true;
  if (target.explicit) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `The agent at ${endpoint.socket ?? endpoint.url} serves ${about.store}, not ${wanted}. Leave --db/--data-dir out to use its store, or run in-process with --no-agent.`,
    );
  }
  return false;
}

/** Paths made absolute against this process's directory; `add`'s file read and sent as text. */
async function localInput(
  localPaths: readonly string[],
  configFile: string | undefined,
  input: CommandInput,
  env: Record<string, string | undefined>,
): Promise<CommandInput> {
  const out: CommandInput = { ...input };
  for (const key of localPaths) {
    const value = out[key];
    if (typeof value === "string") out[key] = resolve(value);
    else if (Array.isArray(value)) out[key] = value.map((v) => resolve(v));
  }
  // `add FILE` alone: the YAML travels in the body (the agent may not see this file). With several
  // files or flags, the agent reads the files at their absolute paths (same host).
  const files = configFile === undefined ? [] : ((input[configFile] as string[] | string | undefined) ?? []);
  const only = Array.isArray(files) ? files : [files];
  const plain = Object.keys(input).every((k) => k === configFile || k === "name");
  if (configFile !== undefined && only.length === 1 && plain) {
    const { loadConfigText } = await import("../client/config-text.ts");
    const { text, path } = await loadConfigText(only[0]!);
    return { ...(input.name !== undefined ? { name: input.name } : {}), config: text, path } as CommandInput;
  }
  void env;
  return out;
}

function print(name: string, result: unknown, input: CommandInput, json: boolean, io: CliIo, paint: Paint): void {
  if (json || name === "qmp") {
    io.stdout(JSON.stringify(result, null, 2));
    return;
  }
  if (name === "audit" && Array.isArray(result)) {
    Object.defineProperty(result, "format", { value: input.format ?? "table", enumerable: false });
  }
  io.stdout(renderer(name, result, paint));
}

let renderResult: ((command: string, result: unknown, paint: Paint) => string) | undefined;
function renderer(name: string, result: unknown, paint: Paint): string {
  return renderResult!(name, result, paint);
}

/** Loads the renderers (only when text is printed). */
export async function loadRenderers(): Promise<void> {
  renderResult ??= (await import("./render.ts")).renderResult;
}

async function printError(res: AgentResponse, json: boolean, io: CliIo): Promise<number> {
  const text = await res.text();
  let body: { error?: { code?: string; message?: string; exitCode?: number; details?: Record<string, unknown> } };
  try {
    body = JSON.parse(text);
  } catch {
    body = {
      error: { code: "INTERNAL", message: `The agent answered ${res.status}: ${text.slice(0, 200)}`, exitCode: 1 },
    };
  }
  const error = body.error ?? { code: "INTERNAL", message: `The agent answered ${res.status}.`, exitCode: 1 };
  io.stderr(`maqet: ${error.message}`);
  if (json)
    io.stdout(
      JSON.stringify({ error: { code: error.code, message: error.message, details: error.details ?? {} } }, null, 2),
    );
  return error.exitCode ?? 1;
}

/** `console --follow`: chunks as they come, until the stream ends or Ctrl-C (exit 0). */
function pipeText(res: AgentResponse, io: CliIo): Promise<number> {
  const write = io.write ?? io.stdout;
  return new Promise((resolveCode) => {
    const stop = () => {
      res.body.destroy();
      resolveCode(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    res.body.setEncoding("utf8");
    res.body.on("data", (chunk: string) => write(chunk));
    res.body.on("end", () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolveCode(0);
    });
  });
}

/** `console -i`: the agent's upgraded connection at this terminal (the agent records attach and detach). */
async function interactive(endpoint: AgentEndpoint, input: CommandInput, io: CliIo): Promise<number> {
  if (input.follow === true) {
    throw new MaqetError("INVALID_ARGUMENT", "console: choose --follow (print the log) or -i (attach), not both.");
  }
  const { upgradeConsole } = await import("../client/console-upgrade.ts");
  const { runAttached } = await import("./console-session.ts");
  const upgraded = await upgradeConsole(endpoint, String(input.vm), {
    force: input.force === true,
    readOnly: input["read-only"] === true,
  });
  const about = upgraded.about;
  return runAttached(
    {
      vm: about.vm,
      mode: about.mode,
      ...(about.takeover ? { takeover: about.takeover } : {}),
      ...(about.takenOverFrom ? { takenOverFrom: about.takenOverFrom } : {}),
      open: (onData) => upgraded.open(onData),
    },
    io,
  );
}

/** NDJSON frames: progress drawn on stderr, then the result (or the error, thrown). */
async function progressThenResult(res: AgentResponse, io: CliIo): Promise<unknown> {
  const { renderProgress } = await import("./progress-renderer.ts");
  const listeners: Array<(p: OperationProgress) => void> = [];
  const progress$ = {
    subscribe: (fn: (p: OperationProgress) => void) => {
      listeners.push(fn);
      return { unsubscribe: () => void listeners.splice(listeners.indexOf(fn), 1) };
    },
  };
  const sink = io.progress ?? { isTTY: false, write: (t: string) => io.stderr(t.replace(/\n$/, "")) };
  const drawing = renderProgress(progress$, {
    ...sink,
    paint: paintFor(colorEnabled({ isTTY: io.tty?.stderr }, io.env)),
  });
  let outcome: { result?: unknown; error?: { code: string; message: string; details?: Record<string, unknown> } } = {};
  let buffer = "";
  for await (const chunk of res.body) {
    buffer += String(chunk);
    let nl = buffer.indexOf("\n");
    while (nl !== -1) {
      const frame = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
      buffer = buffer.slice(nl + 1);
      if ("progress" in frame) for (const fn of listeners) fn(frame.progress as OperationProgress);
      else if ("result" in frame || "error" in frame) outcome = frame as typeof outcome;
      nl = buffer.indexOf("\n");
    }
  }
  drawing.unsubscribe(); // a live line still drawn is erased before the result is printed
  if (outcome.error) {
    throw new MaqetError(outcome.error.code as never, outcome.error.message, { details: outcome.error.details ?? {} });
  }
  return outcome.result;
}

/** `events` (and `--follow`): /v1/events; each event printed as the in-process CLI prints it. */
async function events(endpoint: AgentEndpoint, input: CommandInput, json: boolean, io: CliIo): Promise<number> {
  if (!json) await loadRenderers();
  const write = io.write ?? io.stdout;
  return followAgentEvents(endpoint, {
    vm: typeof input.vm === "string" ? input.vm : undefined,
    from: typeof input.from === "number" ? input.from : undefined,
    follow: input.follow === true,
    onEvent: (line) => {
      const text = json ? JSON.stringify(line) : renderer("events", line, NO_PAINT);
      if (text !== "") write(`${text}\n`);
    },
    onNote: (note) => io.stderr(`maqet: ${note}`),
  });
}
