/**
 * Taking over a stale lock without letting two racing takers both win. A taker first places
 * `<lock>.takeover` (a guard, written like the lock: src/adapters/lock-file.ts), re-reads the lock
 * and removes it only if it is still the very lock it judged stale (same pid and since, or the
 * same unreadable file), then competes for a fresh lock like anyone else. Losers never delete
 * anything they did not verify. What dead processes leave next to a lock (temporary files, a
 * guard) is swept by the next holder.
 *
 * @example
 * ```ts
 * if (isStale(holder, graceMs) && (await removeStaleLock(path, holder, { graceMs }))) retry();
 * ```
 */
import { readdir, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { type CrashHook, noCrash } from "../util/crash-points.ts";
import { errnoOf } from "./errno.ts";
import {
  DEFAULT_STALE_GRACE_MS,
  isSameLock,
  isStale,
  type LockHolder,
  placeExclusive,
  readHolder,
  type Unreadable,
} from "./lock-file.ts";
import { isProcessAlive } from "./process-alive.ts";

/**
 * Removes the lock at `path` if it is still exactly the one `stale` describes, under the takeover
 * guard; true when the caller should retry creating the lock at once. A taker that judged a lock
 * stale a moment ago but finds someone else's fresh lock there now removes nothing.
 *
 * @example
 * ```ts
 * if (!isProcessAlive(holder.pid) && (await removeStaleLock(path, holder))) retry();
 * ```
 */
export async function removeStaleLock(
  path: string,
  stale: LockHolder | Unreadable,
  options: { graceMs?: number; crash?: CrashHook } = {},
): Promise<boolean> {
  const guard = `${path}.takeover`;
  const graceMs = options.graceMs ?? DEFAULT_STALE_GRACE_MS;
  const crash = options.crash ?? noCrash;
  const me: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command: "takeover" };
  if (!(await placeExclusive(guard, me, crash))) {
    // A taker that died inside the guard (or an older one that left it empty) would block
    // takeovers forever: clear its guard, if it is still the one judged.
    const other = await readHolder(guard);
    if (other === "absent") return true;
    if (isStale(other, graceMs)) {
      if (isSameLock(await readHolder(guard), other)) await unlink(guard).catch(() => {});
      return true;
    }
    return false;
  }
  try {
    const now = await readHolder(path);
    if (now === "absent") return true;
    if (!isSameLock(now, stale)) return false;
    crash("lock.takeover-guarded");
    await unlink(path).catch((error) => {
      if (errnoOf(error) !== "ENOENT") throw error;
    });
    crash("lock.stale-removed");
    return true;
  } finally {
    await unlink(guard).catch(() => {});
  }
}

/**
 * Removes what dead processes left next to the lock: temporary lock files (killed between writing
 * and linking them) and a takeover guard (killed while taking over). A live taker's guard stays.
 *
 * @example
 * ```ts
 * await sweepLeftovers(lockPathOf(dataDir), DEFAULT_STALE_GRACE_MS);
 * ```
 */
export async function sweepLeftovers(path: string, graceMs: number): Promise<void> {
  const prefix = `${basename(path)}.`;
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  for (const name of names) {
    const m = name.startsWith(prefix) ? /\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name) : null;
    if (m && !isProcessAlive(Number(m[1]))) await unlink(join(dirname(path), name)).catch(() => {});
  }
  const guard = `${path}.takeover`;
  const found = await readHolder(guard);
  if (found !== "absent" && isStale(found, graceMs) && isSameLock(await readHolder(guard), found)) {
    await unlink(guard).catch(() => {});
  }
}
