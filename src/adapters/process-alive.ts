/**
 * Whether a pid is alive on this host: through `/proc/<pid>/stat` (a zombie `Z` or dead `X`
 * process is gone), or `kill(pid, 0)` where there is no /proc. Used to tell a lock left by a
 * dead process from one a live process holds.
 *
 * @example
 * ```ts
 * isProcessAlive(process.pid); // true
 * ```
 */
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import process from "node:process";
import { errnoOf } from "./errno.ts";

/**
 * True unless the process is gone: no `/proc/<pid>` or a zombie (`Z`) / dead (`X`) state.
 * Falls back to `kill(pid, 0)` where there is no /proc.
 *
 * @example
 * ```ts
 * isProcessAlive(process.pid); // true
 * ```
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const state = procStatState(readFileSync(`/proc/${pid}/stat`, "utf8"));
    return state !== "Z" && state !== "X";
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") return true;
    if (procMounted()) return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) === "EPERM";
  }
}

/**
 * The state letter of a `/proc/<pid>/stat` line (`R`, `S`, `Z`...), undefined when the line has
 * none. "pid (comm) S ...": comm may hold spaces and parentheses, so it is read after the last ')'.
 *
 * @example
 * ```ts
 * procStatState("42 (a) b) Z 1 ..."); // "Z"
 * ```
 */
export function procStatState(stat: string): string | undefined {
  const close = stat.lastIndexOf(")");
  return close === -1 ? undefined : stat.slice(close + 2, close + 3) || undefined;
}

/**
 * How a zombie ended, as Node's `exit` event will say it (`{ code, signal }`): the wait status is
 * field 52 of its `/proc/<pid>/stat` (Linux 3.5+). Undefined unless the pid is a zombie (or for a
 * signal with two names, which the event names its own way).
 *
 * @example
 * ```ts
 * zombieExit(4242); // { code: null, signal: "SIGKILL" } for a killed child not yet reaped
 * ```
 */
export function zombieExit(pid: number): { code: number | null; signal: string | null } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  if (procStatState(stat) !== "Z") return undefined;
  const last = stat.trimEnd().split(" ").at(-1) ?? "";
  if (!/^\d+$/.test(last)) return undefined;
  const status = Number(last);
  const signo = status & 0x7f;
  if (signo === 0) return { code: (status >> 8) & 0xff, signal: null };
  const names = Object.entries(constants.signals).filter(([, n]) => n === signo);
  return names.length === 1 ? { code: null, signal: names[0]![0] } : undefined;
}

function procMounted(): boolean {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}
