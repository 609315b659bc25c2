/**
 * A `maqet agent` that is still starting: it holds its socket's lock (`<socket>.lock`, taken
 * before it opens the store) but does not listen yet. A first agent creates its embedded store,
 * seconds of work, so `maqet agent & maqet add vm.yaml` (the README's lines) would otherwise run
 * the command in-process and meet the store lock the agent holds. The CLI waits for the socket
 * instead, saying what it waits for. Waiting ends when the socket answers, not when its file
 * exists: a socket file left by a dead agent stays until the starting one replaces it.
 *
 * @example
 * ```ts
 * if (await waitForStartingAgent(socket, { say: (t) => process.stderr.write(`${t}\n`) })) {
 *   // the agent listens on `socket` now
 * }
 * ```
 */
import { readFileSync } from "node:fs";
import { lstat, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { isProcessAlive } from "./process-alive.ts";

export interface StartingAgentOptions {
  /** Tells the user once what the wait is for (after `quietMs`). */
  say(text: string): void;
  /** Give up after this long (default 120 000 ms: a first store on a loaded machine). */
  timeoutMs?: number;
  /** Silent this long (default 1000 ms). */
  quietMs?: number;
  /** How often to look for the socket (default 50 ms). */
  everyMs?: number;
}

/**
 * True once the agent that holds `socket`'s lock listens on it; false at once when no live agent
 * on this host holds the lock (nothing to wait for), or when it stops before listening or the
 * wait times out.
 */
export async function waitForStartingAgent(socket: string, options: StartingAgentOptions): Promise<boolean> {
  const holder = await lockHolder(`${socket}.lock`);
  if (holder === undefined || !isAgentProcess(holder.pid)) return false;
  const t0 = Date.now();
  const timeoutMs = options.timeoutMs ?? 120_000;
  let said = false;
  for (;;) {
    if ((await isSocket(socket)) && (await answers(socket))) return true;
    if (!isAgentProcess(holder.pid)) return false;
    const waited = Date.now() - t0;
    if (waited >= timeoutMs) return false;
    if (!said && waited >= (options.quietMs ?? 1000)) {
      said = true;
      options.say(
        `maqet: waiting for the maqet agent (pid ${holder.pid}) to finish starting (it opens its store first) at ${socket}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}

async function lockHolder(path: string): Promise<{ pid: number } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as { pid?: unknown; host?: unknown };
    if (typeof parsed.pid !== "number" || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    if (parsed.host !== undefined && parsed.host !== hostname()) return undefined;
    return { pid: parsed.pid };
  } catch {
    return undefined; // no lock, or one being written: nothing to wait for
  }
}

/** A live (not zombie) process whose command line runs `maqet … agent`. */
function isAgentProcess(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("agent");
  } catch {
    return false;
  }
}

/** True when something accepts a connection on the unix socket (then closed at once). */
async function answers(socket: string): Promise<boolean> {
  const { connect } = await import("node:net"); // loaded only once a socket file is there
  return new Promise((resolve) => {
    const conn = connect(socket);
    conn.once("connect", () => {
      conn.destroy();
      resolve(true);
    });
    conn.once("error", () => resolve(false));
  });
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSocket();
  } catch {
    return false;
  }
}
