/**
 * What the agent runs for a request: the command input from the route's path, query and body, and
 * the call. `add` (`POST /v1/vms`) takes its config in the body: YAML text with the file's path,
 * YAML text typed in the web console, or a config object.
 *
 * @example
 * ```ts
 * const call = prepare(route, maqet, { vm: "web" }, new URLSearchParams(), undefined);
 * await call.invoke();
 * ```
 */
import { type CommandRoute, inputFromRequest } from "../api/command-routes.ts";
import type { CommandInput } from "../api/commands/command-spec.ts";
import { constraintsOf } from "../api/commands/host-commands.ts";
import type { Maqet } from "../api/maqet.ts";
import { readYaml } from "../config/parse-vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";

export interface PreparedCall {
  input: CommandInput;
  invoke(): Promise<unknown>;
}

/** The command input of a request and the call that runs it; `add` takes its config in the body. */
export function prepare(
  route: CommandRoute,
  maqet: Maqet,
  params: Record<string, string>,
  query: URLSearchParams,
  body: Record<string, unknown> | undefined,
): PreparedCall {
  // `add` with the YAML (or a config object) in the body; with file paths it is a plain command.
  if (
    route.configFile !== undefined &&
    body !== undefined &&
    body.config !== undefined &&
    !Array.isArray(body.config)
  ) {
    return prepareAdd(maqet, body);
  }
  const input = inputFromRequest(route, params, query, body);
  return { input, invoke: () => route.spec.invoke(maqet, input) };
}

/**
 * `POST /v1/vms`: `{"config": "<YAML text>", "path": "/abs/vm.yaml", "name"?}` (the client read
 * the file; relative paths in it resolve against the path's directory on this host), or
 * `{"config": "<YAML text>", "baseDir"?: "/abs/dir", "name"?}` (text typed in the web console), or
 * `{"config": {…object…}, "baseDir"?: "/abs/dir", "name"?}`.
 */
function prepareAdd(maqet: Maqet, body: Record<string, unknown>): PreparedCall {
  const { config, path, name, baseDir, host, constraint } = body;
  for (const key of Object.keys(body)) {
    if (!["config", "path", "name", "baseDir", "host", "constraint"].includes(key)) {
      throw new MaqetError(
        "INVALID_ARGUMENT",
        `Invalid request for POST /v1/vms (add): unknown field '${key}' (use config, path, name, baseDir, host, constraint).`,
      );
    }
  }
  if (name !== undefined && typeof name !== "string") throw addField("name", "a string");
  if (host !== undefined && typeof host !== "string") throw addField("host", "a host name");
  if (constraint !== undefined && (!Array.isArray(constraint) || !constraint.every((c) => typeof c === "string"))) {
    throw addField("constraint", "a list of KEY=VALUE labels");
  }
  const constraints = constraintsOf({ constraint: constraint as string[] | undefined });
  const options = {
    ...(name === undefined ? {} : { name }),
    ...(host === undefined ? {} : { host }),
    ...(constraints ? { constraints } : {}),
  };
  if (baseDir !== undefined && (typeof baseDir !== "string" || !baseDir.startsWith("/"))) {
    throw addField("baseDir", "an absolute directory");
  }
  const extra = typeof baseDir === "string" ? { baseDir } : {};
  if (typeof config === "string" && path === undefined) {
    // YAML text with no file behind it (the web console's editor): read exactly as a file is,
    // relative paths against `baseDir` (default: the agent's directory).
    const parsed = readYaml(config, { source: "the config text" });
    return { input: {}, invoke: () => maqet.add(parsed as Record<string, unknown>, { ...options, ...extra }) };
  }
  if (typeof config === "string") {
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw addField("path", "the config file's absolute path (relative paths inside resolve against its directory)");
    }
    return { input: { config: path }, invoke: () => maqet.add(path, { ...options, text: config }) };
  }
  if (typeof config === "object" && config !== null && !Array.isArray(config)) {
    return { input: {}, invoke: () => maqet.add(config as Record<string, unknown>, { ...options, ...extra }) };
  }
  throw addField("config", "the YAML text of a VM config, or a config object");
}

function addField(field: string, what: string): MaqetError {
  return new MaqetError("INVALID_ARGUMENT", `Invalid request for POST /v1/vms (add): '${field}' must be ${what}.`);
}
