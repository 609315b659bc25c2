/**
 * One process at a time per PGlite data directory.
 *
 * PGlite is a single-user Postgres: two processes opening the same directory corrupt it. The
 * lock is a file next to the directory (`<dataDir>.lock`) created with O_CREAT|O_EXCL, holding
 * `{pid, host, since, command}` as JSON. A lock whose holder died on this host is taken over;
 * a live (or remote) holder is waited for, then reported.
 *
 * Taking over must not let two racing takers both win. A taker first creates
 * `<dataDir>.lock.takeover` (O_EXCL), re-reads the lock and removes it only if it is still the
 * very lock it judged dead (same pid and since), then competes for a fresh lock with O_EXCL like
 * anyone else. Losers never delete anything they did not verify.
 *
 * @example
 * ```ts
 * const lock = await acquireDataDirLock("/home/me/.local/share/maqet/pgdata", { waitMs: 5000 });
 * try { ... } finally { await lock.release(); }
 * ```
 */
import { readFileSync, unlinkSync } from "node:fs";
import { open, readFile, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";
import { MaqetError } from "../errors/maqet-error.ts";

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  command: string;
}

export interface DataDirLockOptions {
  /** How long to wait for a live holder before throwing STORE_LOCKED. Default 5000 ms. */
  waitMs?: number;
  /** Poll interval while waiting. Default 100 ms. */
  pollMs?: number;
  signal?: AbortSignal;
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
  for (;;) {
    options.signal?.throwIfAborted();
    if (await createExclusive(path, me)) return held(path, me);
    const holder = await readHolder(path);
    if (holder === "absent") continue; // released between our create and read: try again now
    if (holder !== "unreadable" && holder.host === me.host && !isProcessAlive(holder.pid)) {
      if (await removeStaleLock(path, holder)) continue;
    }
    if (Date.now() >= deadline) throw lockedError(dataDir, path, holder, waitMs);
    await sleep(pollMs, options.signal);
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
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ...": comm may hold spaces and parentheses, so split after the last ')'.
    const state = stat.slice(stat.lastIndexOf(")") + 1).trim()[0];
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

async function createExclusive(path: string, holder: LockHolder): Promise<boolean> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, "wx", 0o600);
  } catch (error) {
    if (errnoOf(error) === "EEXIST") return false;
    throw new MaqetError(
      "STORE_ERROR",
      `Cannot create the lock file ${path}: ${String(error)}. Check the permissions of its directory.`,
      {
        cause: error,
        details: { path },
      },
    );
  }
  try {
    await file.writeFile(JSON.stringify(holder));
  } finally {
    await file.close();
  }
  return true;
}

/** The holder, "absent" when there is no lock file, "unreadable" while it is being written or is corrupt. */
async function readHolder(path: string): Promise<LockHolder | "absent" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return "absent";
    return "unreadable";
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.host !== "string") return "unreadable";
    return {
      pid: parsed.pid,
      host: parsed.host,
      since: String(parsed.since ?? ""),
      command: String(parsed.command ?? ""),
    };
  } catch {
    return "unreadable";
  }
}

/**
 * Removes the lock at `path` if it is still exactly the one `dead` describes, under the takeover
 * guard; true when the caller should retry creating the lock at once. A taker that judged a lock
 * dead a moment ago but finds someone else's fresh lock there now removes nothing.
 *
 * @example
 * ```ts
 * if (!isProcessAlive(holder.pid) && (await removeStaleLock(path, holder))) retry();
 * ```
 */
export async function removeStaleLock(path: string, dead: LockHolder): Promise<boolean> {
  const guard = `${path}.takeover`;
  const me: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command: "takeover" };
  if (!(await createExclusive(guard, me))) {
    // A taker that died inside the guard would block takeovers forever; clear its guard. (Two
    // processes clearing the same dead guard at once is the one race left, and needs a crash
    // inside a few-microsecond window first.)
    const other = await readHolder(guard);
    if (other !== "absent" && other !== "unreadable" && other.host === me.host && !isProcessAlive(other.pid)) {
      await unlink(guard).catch(() => {});
      return true;
    }
    return other === "absent";
  }
  try {
    const now = await readHolder(path);
    if (now === "absent") return true;
    if (now === "unreadable" || now.pid !== dead.pid || now.since !== dead.since) return false;
    await unlink(path).catch((error) => {
      if (errnoOf(error) !== "ENOENT") throw error;
    });
    return true;
  } finally {
    await unlink(guard).catch(() => {});
  }
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

function lockedError(dataDir: string, path: string, holder: LockHolder | "unreadable", waitMs: number): MaqetError {
  if (holder === "unreadable") {
    return new MaqetError(
      "STORE_LOCKED",
      `The maqet data directory ${dataDir} is locked by ${path}, which cannot be read (waited ${waitMs} ms). ` +
        "If no maqet process is running, delete that file; or use a PostgreSQL server with --db.",
      { details: { dataDir, lockPath: path } },
    );
  }
  return new MaqetError(
    "STORE_LOCKED",
    `The maqet data directory ${dataDir} is in use by pid ${holder.pid} on ${holder.host} since ${holder.since} ` +
      `(${holder.command || "unknown command"}); waited ${waitMs} ms. Wait for it to finish, ` +
      "or use a PostgreSQL server with --db so several processes can share the store.",
    {
      details: {
        holderPid: holder.pid,
        holderHost: holder.host,
        since: holder.since,
        command: holder.command,
        dataDir,
      },
    },
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort(): void {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", abort, { once: true });
  });
}

function procMounted(): boolean {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

function errnoOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}
