/**
 * Who this process is, in a way that survives pid reuse: host, pid and the kernel's start time
 * of the pid (field 22 of /proc/<pid>/stat). A lease holder is alive only if a process with its
 * pid exists, is not a zombie, and started at the same time.
 *
 * @example
 * ```ts
 * const me = currentProcessIdentity("maqet start web");
 * isSameProcessAlive(me.pid, me.processStart); // true
 * ```
 */
import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import type { LeaseIdentity } from "../events/lease-store.ts";

/** `{state, startTime}` of a pid from /proc, or undefined when there is no such process. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "?", startTime: fields[19] ?? "" };
  } catch {
    return undefined;
  }
}

export function currentProcessIdentity(command: string): LeaseIdentity {
  return {
    host: hostname(),
    pid: process.pid,
    processStart: procStat(process.pid)?.startTime ?? `unknown-${Date.now()}`,
    command: command.slice(0, 200),
  };
}

export function isSameProcessAlive(pid: number, processStart: string): boolean {
  const stat = procStat(pid);
  if (stat === undefined || stat.state === "Z" || stat.state === "X") return false;
  return stat.startTime === processStart;
}

/**
 * This process's user name from the system's user database, or undefined when it has none (a
 * container's uid with no passwd entry).
 *
 * @example
 * ```ts
 * userName(); // "ada"
 * ```
 */
export function userName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}
