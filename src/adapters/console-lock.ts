/**
 * The serial console's writer seat on disk: `console.lock` in the VM's runtime directory (0700),
 * a 0600 JSON file naming the holder ({@link ConsoleHolder}). The decision is
 * src/api/console-seat.ts; this file does the file work:
 *
 * - a free seat is taken by hard-linking a complete private temporary file to the lock's name
 *   (link(2) fails when the name exists: exclusive, and never a half-written lock);
 * - a stale or forced takeover renames the new record over the old one (atomic); the previous
 *   holder notices within its poll interval ({@link watchConsoleLock}) and leaves, and only then
 *   does QEMU accept the new connection (it queues a second client until the first goes);
 * - release removes the file only while it still names this session.
 *
 * Two takers racing for a stale seat may both rename; the last one wins and the other one's
 * watcher sees a foreign session and leaves ("taken-over"): never two writers for long.
 *
 * @example
 * ```ts
 * const { decision } = await acquireConsoleLock(path, holder, { force: false, host, qemuPid });
 * const stop = watchConsoleLock(path, holder.session, () => conn.close("taken-over"));
 * await releaseConsoleLock(path, holder.session);
 * ```
 */
import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { type ConsoleHolder, consoleBusyError, decideSeat, type SeatDecision } from "../actors/console-seat.ts";
import { procStat } from "./process-identity.ts";

export interface AcquireOptions {
  force: boolean;
  host: string;
  qemuPid?: number;
  /** The VM's name, for the CONSOLE_BUSY message. */
  vm: string;
  /** Whether a holder still runs. Default: its pid exists, is no zombie, and started when it said. */
  isAlive?: (holder: ConsoleHolder) => boolean;
}

/** Takes the seat for `holder`, or throws CONSOLE_BUSY naming who has it. */
export async function acquireConsoleLock(
  path: string,
  holder: ConsoleHolder,
  options: AcquireOptions,
): Promise<{ decision: SeatDecision }> {
  const isAlive = options.isAlive ?? holderAlive;
  const tmp = join(dirname(path), `.console.lock.${holder.session}`);
  await writeFile(tmp, `${JSON.stringify(holder)}\n`, { mode: 0o600, flag: "wx" });
  try {
    // A few rounds: the holder we judged may release (or be replaced) between our read and write.
    for (let round = 0; round < 5; round++) {
      try {
        await link(tmp, path);
        return { decision: { kind: "free" } };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const current = await readConsoleLock(path);
      if (current === "missing") continue;
      const decision =
        current === "unreadable"
          ? ({ kind: "stale", previous: unknownHolder() } as const)
          : decideSeat(current, { force: options.force, host: options.host, qemuPid: options.qemuPid }, isAlive);
      if (decision.kind === "busy") throw consoleBusyError(options.vm, decision.holder);
      if (decision.kind === "free") continue;
      await rename(tmp, path);
      return { decision };
    }
    throw new Error(`console lock ${path} kept changing while taking it; retry`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** The holder record, `missing` when there is none, `unreadable` for a damaged file. */
export async function readConsoleLock(path: string): Promise<ConsoleHolder | "missing" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw error;
  }
  try {
    const holder = JSON.parse(text) as ConsoleHolder;
    return typeof holder.session === "string" && typeof holder.holderPid === "number" ? holder : "unreadable";
  } catch {
    return "unreadable";
  }
}

/** Removes the lock if it still names `session` (a takeover's record is left alone). */
export async function releaseConsoleLock(path: string, session: string): Promise<void> {
  const current = await readConsoleLock(path).catch(() => "missing" as const);
  if (typeof current === "object" && current.session === session) await unlink(path).catch(() => undefined);
}

/**
 * Calls `onLost` once when the lock names another session (a takeover). Returns the stop function.
 * A missing lock is not a loss (nobody took the seat).
 */
export function watchConsoleLock(
  path: string,
  session: string,
  onLost: (by?: ConsoleHolder) => void,
  pollMs = 200,
): () => void {
  let stopped = false;
  const timer = setInterval(() => {
    void readConsoleLock(path)
      .catch(() => "missing" as const)
      .then((current) => {
        if (stopped || typeof current !== "object" || current.session === session) return;
        stop();
        onLost(current);
      });
  }, pollMs);
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  return stop;
}

/** A holder still runs: its pid exists, is no zombie, and (when recorded) started when it said. */
export function holderAlive(holder: ConsoleHolder): boolean {
  const stat = procStat(holder.holderPid);
  if (stat === undefined || stat.state === "Z" || stat.state === "X") return false;
  return holder.holderStart === undefined || stat.startTime === holder.holderStart;
}

/** This host's name, as a holder record names it. */
export function consoleHost(): string {
  return hostname();
}

function unknownHolder(): ConsoleHolder {
  return { session: "unknown", holderPid: 0, holderHost: "unknown", since: "unknown" };
}
