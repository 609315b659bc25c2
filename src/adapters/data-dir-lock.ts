/**
 * One process at a time per PGlite data directory.
 *
 * PGlite is a single-user Postgres: two processes opening the same directory corrupt it. The
 * lock is a file next to the directory (`<dataDir>.lock`) holding `{pid, host, since, command}`
 * as JSON, written complete or not at all (src/adapters/lock-file.ts). A lock whose holder died
 * on this host is taken over; an unreadable one (empty, cut short) is taken over once it is older
 * than a short grace, without letting two racing takers both win (src/adapters/stale-lock.ts);
 * a live (or remote) holder is waited for, then reported with the file and what to do.
 *
 * @example
 * ```ts
 * const lock = await acquireDataDirLock("/home/me/.local/share/maqet/pgdata", { waitMs: 5000 });
 * try { ... } finally { await lock.release(); }
 * ```
 */
import { readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import process from "node:process";
import { MaqetError } from "../errors/maqet-error.ts";
import { abortableSleep } from "../util/abortable-sleep.ts";
import { type CrashHook, noCrash } from "../util/crash-points.ts";
import {
  DEFAULT_STALE_GRACE_MS,
  isStale,
  isUnreadable,
  type LockHolder,
  placeExclusive,
  readHolder,
  type Unreadable,
} from "./lock-file.ts";
import { removeStaleLock, sweepLeftovers } from "./stale-lock.ts";

export { DEFAULT_STALE_GRACE_MS, type LockHolder } from "./lock-file.ts";
export { isProcessAlive } from "./process-alive.ts";
export { removeStaleLock } from "./stale-lock.ts";

export interface DataDirLockOptions {
  /** How long to wait for a live holder before throwing STORE_LOCKED. Default 5000 ms. */
  waitMs?: number;
  /** Poll interval while waiting. Default 100 ms. */
  pollMs?: number;
  signal?: AbortSignal;
  /** An unreadable (empty, cut short) lock older than this is stale. Default {@link DEFAULT_STALE_GRACE_MS}. */
  staleGraceMs?: number;
  /** Test-only crash points (docs/crash-points.md). */
  crash?: CrashHook;
}

/** A held lock. `release()` is idempotent and only removes the file if it is still ours. */
export interface DataDirLock {
  readonly path: string;
  readonly holder: LockHolder;
  release(): Promise<void>;
}

/**
 * Takes the lock for `dataDir`, waiting up to `waitMs` for a live holder; throws STORE_LOCKED
 * naming the holder when it does not let go. Released on `release()` and, best effort, on exit.
 *
 * @example
 * ```ts
 * const lock = await acquireDataDirLock(dataDir);
 * process.on("SIGTERM", () => void lock.release());
 * ```
 */
export async function acquireDataDirLock(dataDir: string, options: DataDirLockOptions = {}): Promise<DataDirLock> {
  const path = lockPathOf(dataDir);
  const waitMs = options.waitMs ?? 5000;
  const pollMs = options.pollMs ?? 100;
  const deadline = Date.now() + waitMs;
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    command: process.argv.join(" ").slice(0, 500),
  };
  const graceMs = options.staleGraceMs ?? DEFAULT_STALE_GRACE_MS;
  const crash = options.crash ?? noCrash;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await placeExclusive(path, me, crash, { written: "lock.temp-written", linked: "lock.linked" })) {
      await sweepLeftovers(path, graceMs);
      return held(path, me);
    }
    const holder = await readHolder(path);
    if (holder === "absent") continue; // released between our attempt and read: try again now
    if (isStale(holder, graceMs) && (await removeStaleLock(path, holder, { graceMs, crash }))) continue;
    if (Date.now() >= deadline) throw lockedError(dataDir, path, holder, waitMs, graceMs);
    await abortableSleep(pollMs, options.signal);
  }
}

/**
 * The lock file path for a data directory: a sibling, so the directory itself stays PGlite's.
 *
 * @example
 * ```ts
 * lockPathOf("/data/pgdata/"); // "/data/pgdata.lock"
 * ```
 */
export function lockPathOf(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}.lock`;
}

function held(path: string, holder: LockHolder): DataDirLock {
  let released = false;
  // Synchronous on purpose: "exit" listeners cannot await.
  const releaseSync = (): void => {
    if (released) return;
    released = true;
    process.off("exit", releaseSync);
    try {
      const current = JSON.parse(readFileSync(path, "utf8")) as Partial<LockHolder>;
      if (current.pid === holder.pid && current.since === holder.since) unlinkSync(path);
    } catch {
      // Already gone or replaced: nothing of ours to remove.
    }
  };
  process.on("exit", releaseSync);
  return { path, holder, release: async () => releaseSync() };
}

function lockedError(
  dataDir: string,
  path: string,
  holder: LockHolder | Unreadable,
  waitMs: number,
  graceMs: number,
): MaqetError {
  if (isUnreadable(holder)) {
    return new MaqetError(
      "STORE_LOCKED",
      `The maqet data directory ${dataDir} is locked by the lock file ${path}, which cannot be read and is only ` +
        `${Math.round(holder.ageMs)} ms old (waited ${waitMs} ms; maqet takes an unreadable lock over once it is ${graceMs} ms old). ` +
        `Run the command again; if no maqet process is running, you may delete ${path}. Or use a PostgreSQL server with --db.`,
      { details: { dataDir, lockPath: path } },
    );
  }
  const here = holder.host === hostname();
  const action = here
    ? `Wait for it to finish (or stop it: kill ${holder.pid}) and run the command again; if pid ${holder.pid} is not a maqet process, delete ${path}.`
    : `It runs on another host: wait for it, or if no maqet process runs on ${holder.host} any more, delete ${path}.`;
  return new MaqetError(
    "STORE_LOCKED",
    `The maqet data directory ${dataDir} is in use by pid ${holder.pid} on ${holder.host} since ${holder.since} ` +
      `(${holder.command || "unknown command"}), as its lock file ${path} says; waited ${waitMs} ms. ${action} ` +
      "Or use a PostgreSQL server with --db so several processes can share the store.",
    {
      details: {
        holderPid: holder.pid,
        holderHost: holder.host,
        since: holder.since,
        command: holder.command,
        dataDir,
        lockPath: path,
      },
    },
  );
}
