/**
 * The agent's HTTP routes, derived from the command registry: every {@link CommandSpec} has one
 * route (method + path template), and the request's parts (path parameters, query string, JSON
 * body) map to the same `CommandInput` the CLI parser builds. The agent runs `spec.invoke` on it,
 * the thin CLI and the remote library build requests with {@link requestFor}: no operation is
 * written twice. Resource-style routes come from {@link ROUTE_OVERRIDES}; a command without one
 * (added later) still gets a route by rule: `POST /v1/vms/:vm/<words>` when its first positional is
 * the VM, else `POST /v1/<words>`.
 *
 * Input names are the CLI's (positional and option names, `wait-for`, `allow-dangerous`…); in a
 * query string a boolean is `true`/`false`, a list repeats its key. Kept free of rxjs, xstate and
 * the store: the thin CLI imports it.
 *
 * @example
 * ```ts
 * const route = routeOf("start")!;            // POST /v1/vms/:vm/start
 * requestFor(route, { vm: "web", timeout: 60 }); // { method: "POST", path: "/v1/vms/web/start", body: { timeout: 60 } }
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import type { CommandInput, CommandSpec } from "./commands/command-spec.ts";
import { COMMANDS } from "./commands.ts";

export type HttpMethod = "GET" | "POST" | "DELETE";

export interface CommandRoute {
  /** The registry command this route runs. */
  readonly command: string;
  readonly spec: CommandSpec;
  readonly method: HttpMethod;
  /** Template with `:name` segments, e.g. `/v1/vms/:vm/snapshots/:name/load`. */
  readonly path: string;
  /** Inputs that are file names relative to the caller's directory: clients send them absolute. */
  readonly localPaths: readonly string[];
  /** The input naming a config file the client reads and sends as text (the agent may not see it). */
  readonly configFile?: string;
  /** How a streamed result travels: `events` (SSE from the store) or `text` (chunks). */
  readonly streams?: "events" | "text";
  /** Rewrites the CLI's input before it becomes a request (see {@link oneWordIsTheName}). */
  readonly normalize?: (input: CommandInput) => CommandInput;
  /**
   * True for an input the CLI must run in its own process, even with an agent: it needs this
   * terminal (`edit` opens $EDITOR; `rm --all` without --force asks). The route still serves
   * programs, which cannot be asked.
   */
  readonly needsTerminal?: (input: CommandInput) => boolean;
  /**
   * With `needsTerminal`: the CLI runs the command in its own process, but its operations still
   * go to the agent when one answers (`ssh` reads the VM's ports, `edit` its config through the
   * library routes: the agent may hold the embedded store).
   */
  readonly terminalViaAgent?: boolean;
}

interface Override {
  method: HttpMethod;
  path: string;
  localPaths?: string[];
  configFile?: string;
  streams?: "events" | "text";
  normalize?: (input: CommandInput) => CommandInput;
  needsTerminal?: (input: CommandInput) => boolean;
  terminalViaAgent?: boolean;
}

/** `snapshot load web snap`: the CLI reads one word after the VM as the drive slot; it is the name. */
function oneWordIsTheName(input: CommandInput): CommandInput {
  if (input.name !== undefined || input.drive === undefined) return input;
  const { drive, ...rest } = input;
  return { ...rest, name: drive };
}

/** Resource-style routes; every other command gets one by rule (see the module comment). */
export const ROUTE_OVERRIDES: Readonly<Record<string, Override>> = {
  add: { method: "POST", path: "/v1/vms", configFile: "config", localPaths: ["config", "vm-config"] },
  apply: { method: "POST", path: "/v1/vms/:vm/apply", localPaths: ["config", "vm-config"] },
  // Opens $EDITOR on this terminal: the CLI runs it, reading and saving the config through the
  // agent's library routes (GET/PUT /v1/vms/:vm/config) when one answers.
  edit: { method: "POST", path: "/v1/vms/:vm/edit", needsTerminal: () => true, terminalViaAgent: true },
  info: { method: "GET", path: "/v1/vms/:vm/info" },
  "storage orphaned": { method: "GET", path: "/v1/storage/orphaned" },
  "storage verify": { method: "GET", path: "/v1/vms/:vm/storage/verify" },
  "storage attach": { method: "POST", path: "/v1/storage/attach", localPaths: ["path", "config", "vm-config"] },
  ls: { method: "GET", path: "/v1/vms" },
  status: { method: "GET", path: "/v1/vms/:vm" },
  inspect: { method: "GET", path: "/v1/vms/:vm/inspect" },
  rm: { method: "DELETE", path: "/v1/vms/:vm", needsTerminal: (i) => i.all === true },
  history: { method: "GET", path: "/v1/vms/:vm/history" },
  console: { method: "GET", path: "/v1/vms/:vm/console", streams: "text" },
  port: { method: "GET", path: "/v1/vms/:vm/ports" },
  // Runs the OpenSSH client on the caller's terminal: the CLI always runs it itself.
  ssh: { method: "POST", path: "/v1/vms/:vm/ssh", needsTerminal: () => true, terminalViaAgent: true },
  qmp: { method: "POST", path: "/v1/vms/:vm/qmp" },
  "qmp screendump": { method: "POST", path: "/v1/vms/:vm/qmp/screendump", localPaths: ["file"] },
  events: { method: "GET", path: "/v1/events", streams: "events" },
  audit: { method: "GET", path: "/v1/audit" },
  "audit verify": { method: "GET", path: "/v1/audit/verify" },
  stats: { method: "GET", path: "/v1/stats" },
  "snapshot create": { method: "POST", path: "/v1/vms/:vm/snapshots", normalize: oneWordIsTheName },
  "snapshot load": { method: "POST", path: "/v1/vms/:vm/snapshots/:name/load", normalize: oneWordIsTheName },
  "snapshot delete": { method: "DELETE", path: "/v1/vms/:vm/snapshots/:name", normalize: oneWordIsTheName },
  "snapshot list": { method: "GET", path: "/v1/vms/:vm/snapshots" },
  "disk create": { method: "POST", path: "/v1/disks", localPaths: ["file", "backing"] },
  "disk info": { method: "GET", path: "/v1/disks/info", localPaths: ["file"] },
  "disk check": { method: "POST", path: "/v1/disks/check", localPaths: ["file"] },
  "disk resize": { method: "POST", path: "/v1/disks/resize", localPaths: ["file"] },
  "disk convert": { method: "POST", path: "/v1/disks/convert", localPaths: ["source", "target"] },
  doctor: { method: "GET", path: "/v1/doctor" },
  migrate: { method: "POST", path: "/v1/migrate" },
  projections: { method: "GET", path: "/v1/projections" },
  "projections rebuild": { method: "POST", path: "/v1/projections/:name/rebuild" },
  "host ls": { method: "GET", path: "/v1/hosts" },
  "host drain": { method: "POST", path: "/v1/hosts/:name/drain" },
  "host restore": { method: "POST", path: "/v1/hosts/:name/restore" },
  "host mark-dead": { method: "POST", path: "/v1/hosts/:name/mark-dead" },
  "host rm": { method: "DELETE", path: "/v1/hosts/:name" },
};

function derive(spec: CommandSpec): CommandRoute {
  const override = ROUTE_OVERRIDES[spec.name];
  const words = spec.name.split(" ").join("/");
  const byVm = spec.positionals[0]?.name === "vm";
  const base = override ?? { method: "POST" as const, path: byVm ? `/v1/vms/:vm/${words}` : `/v1/${words}` };
  return {
    command: spec.name,
    spec,
    method: base.method,
    path: base.path,
    localPaths: base.localPaths ?? [],
    ...(base.configFile ? { configFile: base.configFile } : {}),
    ...(base.streams ? { streams: base.streams } : {}),
    ...(override?.normalize ? { normalize: override.normalize } : {}),
    ...(override?.needsTerminal ? { needsTerminal: override.needsTerminal } : {}),
    ...(override?.terminalViaAgent ? { terminalViaAgent: true } : {}),
  };
}

/** One route per registry command, in registry order. */
export const COMMAND_ROUTES: readonly CommandRoute[] = COMMANDS.map(derive);

/** The route of a command (by name or alias). */
export function routeOf(command: string): CommandRoute | undefined {
  const spec = COMMANDS.find((c) => c.name === command || c.aliases?.includes(command));
  return spec ? COMMAND_ROUTES.find((r) => r.command === spec.name) : undefined;
}

/** Names of a template's `:param` segments. */
export function pathParams(template: string): string[] {
  return template
    .split("/")
    .filter((s) => s.startsWith(":"))
    .map((s) => s.slice(1));
}

/** A request a client sends for one command. */
export interface CommandRequest {
  method: HttpMethod;
  /** Path with its query string. */
  path: string;
  body?: Record<string, unknown>;
}

/**
 * The request for a command's input: path parameters filled in, the rest in the query string
 * (GET, DELETE) or the JSON body (POST). Undefined inputs are left out.
 *
 * @example
 * ```ts
 * requestFor(routeOf("history")!, { vm: "web", version: 3 }); // GET /v1/vms/web/history?version=3
 * ```
 */
export function requestFor(route: CommandRoute, given: CommandInput): CommandRequest {
  const input = route.normalize ? route.normalize(given) : given;
  const params = new Set(pathParams(route.path));
  for (const p of params) {
    if (input[p] === undefined || Array.isArray(input[p])) {
      throw new MaqetError("INVALID_ARGUMENT", `Invalid arguments: missing <${p}> for ${route.command}.`);
    }
  }
  const path = route.path.replace(/:([a-z-]+)/g, (_, p: string) => encodeURIComponent(String(input[p])));
  const rest = Object.entries(input).filter(([k, v]) => !params.has(k) && v !== undefined);
  if (route.method === "POST") return { method: route.method, path, body: Object.fromEntries(rest) };
  const query = new URLSearchParams();
  for (const [k, v] of rest) {
    for (const one of Array.isArray(v) ? v : [v]) query.append(k, String(one));
  }
  const qs = query.toString();
  return { method: route.method, path: qs ? `${path}?${qs}` : path };
}

/**
 * The command input of a request: path parameters, then the query string or the JSON body,
 * each value checked against the command's positional and option specs (a number given as text
 * in a query is converted). Unknown names are refused, like an unknown CLI option.
 *
 * @example
 * ```ts
 * inputFromRequest(routeOf("stop")!, { vm: "web" }, new URLSearchParams(), { force: true });
 * ```
 */
export function inputFromRequest(
  route: CommandRoute,
  params: Record<string, string>,
  query: URLSearchParams,
  body: Record<string, unknown> | undefined,
): CommandInput {
  const input: CommandInput = { ...params };
  const given: Array<[string, unknown]> =
    route.method === "POST" ? Object.entries(body ?? {}) : [...new Set(query.keys())].map((k) => [k, query.getAll(k)]);
  for (const [name, raw] of given) {
    if (name in params) continue;
    const option = route.spec.options.find((o) => o.name === name);
    const positional = route.spec.positionals.find((p) => p.name === name);
    if (!option && !positional) throw bad(route, `unknown field '${name}'`);
    const fromQuery = route.method !== "POST";
    const values = fromQuery ? (raw as string[]) : [raw];
    if (positional?.variadic || option?.multiple) {
      const list = fromQuery ? values : raw;
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
        throw bad(route, `'${name}' must be a list of strings`);
      }
      input[name] = list as string[];
      continue;
    }
    if (values.length !== 1) throw bad(route, `'${name}' is given more than once`);
    const value = values[0];
    if (value === undefined || value === null) continue;
    input[name] = convert(route, name, option?.type ?? "string", value, fromQuery);
  }
  for (const p of route.spec.positionals) {
    if (!p.optional && !p.variadic && input[p.name] === undefined) throw bad(route, `missing '${p.name}'`);
  }
  return input;
}

function convert(
  route: CommandRoute,
  name: string,
  type: "string" | "number" | "boolean",
  value: unknown,
  fromQuery: boolean,
): string | number | boolean {
  if (type === "boolean") {
    if (typeof value === "boolean") return value;
    if (fromQuery && (value === "true" || value === "" || value === "1")) return true;
    if (fromQuery && (value === "false" || value === "0")) return false;
    throw bad(route, `'${name}' must be true or false (got ${JSON.stringify(value)})`);
  }
  if (type === "number") {
    const n = typeof value === "number" ? value : fromQuery && typeof value === "string" ? Number(value) : Number.NaN;
    if (!Number.isFinite(n) || n < 0) {
      throw bad(route, `'${name}' must be a non-negative number (got ${JSON.stringify(value)})`);
    }
    return n;
  }
  // The API takes `args` (QMP arguments) as an object as well as the CLI's JSON text.
  if (typeof value === "object" && value !== null && !Array.isArray(value) && name === "args") {
    return JSON.stringify(value);
  }
  if (typeof value !== "string") throw bad(route, `'${name}' must be a string (got ${JSON.stringify(value)})`);
  return value;
}

function bad(route: CommandRoute, problem: string): MaqetError {
  return new MaqetError(
    "INVALID_ARGUMENT",
    `Invalid request for ${route.method} ${route.path} (${route.command}): ${problem}. See docs/agent.md for its fields.`,
  );
}
