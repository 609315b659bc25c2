/**
 * A lock file holding `{pid, host, since, command}` as JSON: placed complete or not at all, read
 * back, and judged stale or not. The content goes to a private temporary file, which is then
 * hard-linked to the lock's name (link(2) fails when the name exists, so creation stays
 * exclusive; a rename would replace a live lock), so nobody ever reads a half-written lock. A
 * file that cannot be parsed (empty, cut short: left by an older maqet killed between creating and
 * writing it) is "unreadable", and stale only once older than a short grace. Used for the data
 * directory's lock and its takeover guard (src/adapters/data-dir-lock.ts, stale-lock.ts).
 *
 * @example
 * ```ts
 * if (!(await placeExclusive(path, me, noCrash))) console.log(await readHolder(path));
 * ```
 */
import { link, open, readFile, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";
import { MaqetError } from "../errors/maqet-error.ts";
import type { CrashHook, CrashPoint } from "../util/crash-points.ts";
import { errnoOf } from "./errno.ts";
import { isProcessAlive } from "./process-alive.ts";

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

/** A lock file that cannot be parsed (empty, cut short, not maqet's): how old it is, and which file. */
export interface Unreadable {
  kind: "unreadable";
  ageMs: number;
  ino: number;
}

/**
 * Places `holder` at `path` complete or not at all; false when `path` exists.
 *
 * @example
 * ```ts
 * await placeExclusive(`${path}.takeover`, me, crash); // true: the guard is ours
 * ```
 */
export async function placeExclusive(
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

/**
 * The holder, "absent" when there is no lock file, unreadable when it is empty or corrupt.
 *
 * @example
 * ```ts
 * const found = await readHolder("/data/pgdata.lock"); // { pid: 4242, host: "box", ... }
 * ```
 */
export async function readHolder(path: string): Promise<LockHolder | "absent" | Unreadable> {
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

/** True for a lock file that could not be parsed ({@link Unreadable}). */
export function isUnreadable(value: LockHolder | "absent" | Unreadable): value is Unreadable {
  return typeof value === "object" && "kind" in value;
}

/**
 * True when a lock (or takeover guard) found at a path may be removed: its holder died on this
 * host, or it is unreadable (empty, cut short) and older than the grace. maqet writes its locks
 * complete, so only a crash of an older writer or a damaged file leaves one unreadable; a young
 * one may still be in the middle of being written by such a writer and is left alone.
 *
 * @example
 * ```ts
 * isStale({ pid: 999999, host: hostname(), since: "", command: "" }, 2000); // true: no such process
 * ```
 */
export function isStale(found: LockHolder | Unreadable, graceMs: number): boolean {
  if (isUnreadable(found)) return found.ino !== -1 && found.ageMs >= graceMs;
  return found.host === hostname() && !isProcessAlive(found.pid);
}

/**
 * The same lock as judged a moment ago: same holder (pid and since), or the same unreadable file.
 *
 * @example
 * ```ts
 * if (isSameLock(await readHolder(path), judged)) await unlink(path);
 * ```
 */
export function isSameLock(now: LockHolder | "absent" | Unreadable, judged: LockHolder | Unreadable): boolean {
  if (now === "absent") return false;
  if (isUnreadable(judged)) return isUnreadable(now) && now.ino === judged.ino;
  return !isUnreadable(now) && now.pid === judged.pid && now.since === judged.since;
}
