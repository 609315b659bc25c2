/**
 * One process at a time per PGlite data directory.
 *
 * PGlite is a single-user Postgres: two processes opening the same directory corrupt it. The
 * lock is a file next to the directory (`<dataDir>.lock`) holding `{pid, host, since, command}`
 * as JSON. It is written complete or not at all: the content goes to a private temporary file,
 * which is then hard-linked to the lock's name (link(2) fails when the name exists, so creation
 * stays exclusive; a rename would replace a live lock). A lock whose holder died on this host is
 * taken over; an unreadable one (empty, cut short: left by an older maqet killed between
 * creating and writing it) is taken over once it is older than a short grace; a live (or remote)
 * holder is waited for, then reported with the file and what to do.
 *
 * Taking over must not let two racing takers both win. A taker first places
 * `<dataDir>.lock.takeover` the same way, re-reads the lock and removes it only if it is still the
 * very lock it judged stale (same pid and since, or the same unreadable file), then competes for a
 * fresh lock like anyone else. Losers never delete anything they did not verify.
 *
 * @example
 * ```ts
 * const lock = await acquireDataDirLock("/home/me/.local/share/maqet/pgdata", { waitMs: 5000 });
 * try { ... } finally { await lock.release(); }
 * ```
 */
import { readFileSync, unlinkSync } from "node:fs";
import { link, open, readdir, readFile, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { MaqetError } from "../errors/maqet-error.ts";
import { type CrashHook, type CrashPoint, noCrash } from "../util/crash-points.ts";

/** How old an unreadable lock or takeover file must be before it counts as stale. */
export const DEFAULT_STALE_GRACE_MS = 2000;

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
    await sleep(pollMs, options.signal);
  }
}

/**
 * Removes what dead processes left next to the lock: temporary lock files (killed between writing
 * and linking them) and a takeover guard (killed while taking over). A live taker's guard stays.
 */
async function sweepLeftovers(path: string, graceMs: number): Promise<void> {
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

/** Places `holder` at `path` complete or not at all; false when `path` exists. */
async function placeExclusive(
  path: string,
  holder: LockHolder,
  crash: CrashHook,
  points?: { written: CrashPoint; linked: CrashPoint },
): Promise<boolean> {
  // Written in full to a private temporary file, then hard-linked into place: link(2) fails with
  // EEXIST when `path` exists (rename would replace it), so exclusive creation holds, and
  // nobody ever reads a half-written lock.
  const temp = `${path}.${process.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const file = await open(temp, "wx", 0o600);
    try {
      await file.writeFile(JSON.stringify(holder));
      await file.sync();
    } finally {
      await file.close();
    }
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw cannotCreate(path, error);
  }
  try {
    if (points) crash(points.written);
    await link(temp, path);
    if (points) crash(points.linked);
    return true;
  } catch (error) {
    if (errnoOf(error) === "EEXIST") return false;
    // A file system without hard links: the old way, exclusive create then write (a kill in
    // between leaves an empty file, which the grace below turns into a stale lock).
    if (["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK"].includes(errnoOf(error) ?? "")) {
      return createThenWrite(path, holder);
    }
    throw cannotCreate(path, error);
  } finally {
    await unlink(temp).catch(() => {});
  }
}

async function createThenWrite(path: string, holder: LockHolder): Promise<boolean> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, "wx", 0o600);
  } catch (error) {
    if (errnoOf(error) === "EEXIST") return false;
    throw cannotCreate(path, error);
  }
  try {
    await file.writeFile(JSON.stringify(holder));
  } finally {
    await file.close();
  }
  return true;
}

function cannotCreate(path: string, error: unknown): MaqetError {
  return new MaqetError(
    "STORE_ERROR",
    `Cannot create the lock file ${path}: ${String(error)}. Check the permissions of its directory.`,
    { cause: error, details: { path } },
  );
}

/** A lock file that cannot be parsed (empty, cut short, not maqet's): how old it is, and which file. */
interface Unreadable {
  kind: "unreadable";
  ageMs: number;
  ino: number;
}

/** The holder, "absent" when there is no lock file, unreadable when it is empty or corrupt. */
async function readHolder(path: string): Promise<LockHolder | "absent" | Unreadable> {
  let text: string;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
    text = await readFile(path, "utf8");
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return "absent";
    return { kind: "unreadable", ageMs: 0, ino: -1 };
  }
  const unreadable: Unreadable = { kind: "unreadable", ageMs: Date.now() - info.mtimeMs, ino: info.ino };
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.host !== "string") return unreadable;
    return {
      pid: parsed.pid,
      host: parsed.host,
      since: String(parsed.since ?? ""),
      command: String(parsed.command ?? ""),
    };
  } catch {
    return unreadable;
  }
}

function isUnreadable(value: LockHolder | "absent" | Unreadable): value is Unreadable {
  return typeof value === "object" && "kind" in value;
}

/**
 * True when a lock (or takeover guard) found at a path may be removed: its holder died on this
 * host, or it is unreadable (empty, cut short) and older than the grace. maqet writes its locks
 * complete, so only a crash of an older writer or a damaged file leaves one unreadable; a young
 * one may still be in the middle of being written by such a writer and is left alone.
 */
function isStale(found: LockHolder | Unreadable, graceMs: number): boolean {
  if (isUnreadable(found)) return found.ino !== -1 && found.ageMs >= graceMs;
  return found.host === hostname() && !isProcessAlive(found.pid);
}

/** The same lock as judged a moment ago: same holder (pid and since), or the same unreadable file. */
function isSameLock(now: LockHolder | "absent" | Unreadable, judged: LockHolder | Unreadable): boolean {
  if (now === "absent") return false;
  if (isUnreadable(judged)) return isUnreadable(now) && now.ino === judged.ino;
  return !isUnreadable(now) && now.pid === judged.pid && now.since === judged.since;
}

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
