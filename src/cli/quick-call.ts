/**
 * The `maqet` executable's first try, before it loads anything else: a quick command (`ls`,
 * `status`, `qmp`… see one-shot-commands.ts) with an agent on its socket is handed to the agent
 * whole (`POST /v1/cli`, src/cli/one-shot.ts), and this process prints the answer. Anything else,
 * and any doubt — no agent there, another maqet version, an option naming another store, an
 * agent without the `cli` route — answers `undefined`, and the executable runs its usual path
 * (cli.cjs), which handles it as it always has. Once the request is sent it is never sent again:
 * a connection that breaks after that answers `"broken"` (the command may have run).
 *
 * Built into its own small file (scripts/build.mjs) with the command table and version baked in:
 * this module and what it imports are all a quick call loads.
 *
 * @example
 * ```ts
 * const outcome = await quickCall(process.argv.slice(2), process.env, QUICK_TABLE);
 * if (typeof outcome === "number") process.exitCode = outcome;
 * ```
 */
import { writeSync } from "node:fs";
import { PlainExchangeError, plainExchange } from "../adapters/plain-http.ts";
import { callerHeaders } from "../client/caller-headers.ts";
import { agentTarget } from "./agent-target.ts";
import { isTerminal } from "./is-terminal.ts";
import type { OneShotAnswer, OneShotRequest } from "./one-shot.ts";
import { ONE_SHOT_ENV } from "./one-shot-commands.ts";

/** What the build bakes in (from the registry and package.json). */
export interface QuickTable {
  /** Every command name and alias: true when it may be handed over. */
  commands: Readonly<Record<string, boolean>>;
  /** Global options that take a value (names and aliases, without `--`). */
  globalValues: readonly string[];
  version: string;
}

/** Options that name another store, directory or file of this process's, or ask for help. */
const STAYS_HERE = new Set([
  "no-agent",
  "db",
  "data-dir",
  "maqet-data-dir",
  "runtime-dir",
  "maqet-runtime-dir",
  "config-dir",
  "maqet-config-dir",
  "log-file",
  "help",
  "version",
]);

/** Statuses `/v1/cli` answers before it runs anything: 400 and 413 (the body), 404 and 405 (no such route). */
const REFUSED_BEFORE_RUNNING = new Set([400, 404, 405, 413]);

export interface QuickTarget {
  socket: string;
  /** `--agent` as typed on the command line. */
  agent?: string;
}

/**
 * The socket to hand this call to, or undefined when it stays with the usual path. Looks at the
 * options and the first two words only; the agent parses the call in full and may still say no.
 */
export function quickTarget(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  table: QuickTable,
): QuickTarget | undefined {
  if (env.MAQET_DATABASE_URL) return undefined; // the store it names may not be the agent's: the usual path asks
  const words: string[] = [];
  let agent: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--" || token === "-h" || token === "-V") return undefined;
    if (!token.startsWith("--")) {
      if (token.startsWith("-") && token !== "-") continue; // -v, -f, -i: the agent's parse decides
      words.push(token);
      continue;
    }
    const eq = token.indexOf("=");
    const name = token.slice(2, eq === -1 ? undefined : eq);
    if (STAYS_HERE.has(name)) return undefined;
    const value = eq === -1 ? undefined : token.slice(eq + 1);
    if (name === "agent") {
      agent = value ?? argv[++i];
      if (agent === undefined) return undefined;
    } else if (value === undefined && words.length === 0 && table.globalValues.includes(name)) {
      i++; // a global option's value, not a command word
    }
  }
  const two = words.length >= 2 ? table.commands[`${words[0]} ${words[1]}`] : undefined;
  if ((two ?? table.commands[words[0] ?? ""]) !== true) return undefined;
  // Which agent, as the usual path finds it (a TCP agent's calls take that path).
  const socket = agentTarget(agent === undefined ? {} : { agent }, env)?.socket;
  return socket === undefined ? undefined : { socket, ...(agent === undefined ? {} : { agent }) };
}

export type QuickOutcome = number | "broken" | undefined;

export async function quickCall(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  table: QuickTable,
): Promise<QuickOutcome> {
  const target = quickTarget(argv, env, table);
  if (target === undefined) return undefined;
  const request: OneShotRequest = {
    argv: [...argv],
    version: table.version,
    ...(target.agent === undefined ? {} : { agent: target.agent }),
    env: Object.fromEntries(ONE_SHOT_ENV.flatMap((name) => (env[name] === undefined ? [] : [[name, env[name]]]))),
    tty: { stdout: isTerminal(1), stderr: isTerminal(2) },
  };
  let answer: OneShotAnswer;
  try {
    const reply = await plainExchange(
      { socket: target.socket },
      {
        method: "POST",
        path: "/v1/cli",
        headers: {
          host: "localhost",
          accept: "application/json",
          "content-type": "application/json",
          ...callerHeaders("cli", env),
        },
        payload: JSON.stringify(request),
      },
    );
    // Refused before anything ran (an agent without the route, a body it would not take): the
    // usual path. Any other failure may have come after the call ran: never sent twice.
    if (REFUSED_BEFORE_RUNNING.has(reply.status)) return undefined;
    if (reply.status !== 200) return "broken";
    const read = answerOf(reply.body);
    // Answered, but not as an agent answers: it may have run the call. Never sent twice.
    if (read === undefined) return "broken";
    answer = read;
  } catch (error) {
    // Sent (or partly): the agent may have run it. Never sent twice; the caller says so.
    if (error instanceof PlainExchangeError && error.connected) return "broken";
    return undefined;
  }
  if ("fallBack" in answer) return undefined;
  for (const [fd, text] of answer.output) {
    if (!writeAll(fd, text)) return 0; // stdout's reader left (`| head -1`): quietly done, as the CLI
  }
  return answer.exitCode;
}

/** The answer in a 200's body, or undefined when it is not one (not JSON, or neither shape). */
function answerOf(bytes: Uint8Array): OneShotAnswer | undefined {
  let value: unknown;
  try {
    // Buffer's own decoding: a TextDecoder's first use costs more than this whole answer.
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const answer = value as Record<string, unknown>;
  if ("fallBack" in answer) return answer as OneShotAnswer;
  const chunks = answer.output;
  const ok =
    typeof answer.exitCode === "number" &&
    Array.isArray(chunks) &&
    chunks.every((c) => Array.isArray(c) && (c[0] === 1 || c[0] === 2) && typeof c[1] === "string");
  return ok ? (answer as OneShotAnswer) : undefined;
}

/**
 * Writes text to fd whole; false when stdout's reader is gone (EPIPE). A descriptor left
 * non-blocking by whoever made it (EAGAIN) gets the rest through Node's stream.
 */
function writeAll(fd: 1 | 2, text: string): boolean {
  const data = Buffer.from(text, "utf8");
  let at = 0;
  try {
    while (at < data.length) at += writeSync(fd, data, at);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EAGAIN") {
      const stream = fd === 1 ? process.stdout : process.stderr;
      stream.on("error", () => {}); // a reader gone by then: nothing left to do about it
      stream.write(data.subarray(at));
      return true;
    }
    if (fd === 1 && code === "EPIPE") return false;
    if (fd === 2) return true; // nobody reads stderr: nothing left to tell
    throw error;
  }
  return true;
}
