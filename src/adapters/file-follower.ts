/**
 * `tail -f` for one file, as an rxjs Observable of text: what the file holds from an offset,
 * then what is appended, until the caller says the writer is done (then one last read) or
 * unsubscribes. Polls (default every 100 ms) rather than relying on inotify, so it behaves the
 * same on every filesystem. A writer that truncates the file (a new QEMU run; noticed when the
 * file is shorter than what was read, as `tail -f` does) or replaces it restarts the stream at the
 * new file's beginning. Holds one read-only file handle, nothing else.
 *
 * @example
 * ```ts
 * followFile("/run/user/1000/maqet/<vm>/serial.log", { isDone: () => !qemuAlive() })
 *   .subscribe((text) => process.stdout.write(text));
 * ```
 */
import { open, readFile, stat } from "node:fs/promises";
import { Observable } from "rxjs";
import type { Clock } from "../actors/ports.ts";
import { MaqetError } from "../errors/maqet-error.ts";
import { errnoOf } from "./errno.ts";
import { systemClock } from "./system-clock.ts";

export interface FollowFileOptions {
  /**
   * Where to start: a byte offset, or `"end"` for only what is written after subscribing (a file
   * that does not exist yet is then read from its beginning). Default 0: the whole file first.
   */
  from?: number | "end";
  /** How long to wait between looks when nothing is new. Default 100 ms. */
  pollIntervalMs?: number;
  /**
   * Asked whenever the file has nothing new; when it answers true the file is read one last time
   * to its end and the stream completes. Default: never done (follow until unsubscribed).
   */
  isDone?: () => boolean | Promise<boolean>;
  /** Time source for the waits between polls. Default: the system clock. */
  clock?: Clock;
  /** Largest read at once. Default 64 KiB. */
  chunkBytes?: number;
}

type Handle = Awaited<ReturnType<typeof open>>;

function readFailure(path: string, e: unknown): MaqetError {
  return new MaqetError("PROCESS_ERROR", `Cannot read ${path}: ${(e as Error).message}. Check its permissions.`, {
    cause: e,
    details: { path },
  });
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return 0;
    throw readFailure(path, e);
  }
}

/**
 * A whole text file (UTF-8; invalid bytes become U+FFFD); "" when it does not exist.
 *
 * @example
 * ```ts
 * const text = await readTextFile("/run/user/1000/maqet/<vm>/serial.log");
 * ```
 */
export async function readTextFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return "";
    throw readFailure(path, e);
  }
}

/**
 * Follows `path` (which may not exist yet) and emits its text in order, in chunks as read. A
 * multi-byte character split between two reads is emitted whole. Errors other than "no such
 * file" end the stream with a `PROCESS_ERROR`.
 *
 * @example
 * ```ts
 * const sub = followFile("/tmp/app.log").subscribe((t) => process.stdout.write(t));
 * setTimeout(() => sub.unsubscribe(), 5_000);
 * ```
 */
export function followFile(path: string, options: FollowFileOptions = {}): Observable<string> {
  const clock = options.clock ?? systemClock;
  const pollMs = options.pollIntervalMs ?? 100;
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const isDone = options.isDone ?? (() => false);

  return new Observable<string>((subscriber) => {
    const abort = new AbortController();
    const signal = abort.signal;
    let handle: Handle | undefined;
    let inode: number | undefined;
    let offset = typeof options.from === "number" ? Math.max(0, options.from) : 0;
    let decoder = new TextDecoder("utf-8");
    const buffer = Buffer.alloc(chunkBytes);

    const emit = (text: string): void => {
      if (text !== "" && !signal.aborted) subscriber.next(text);
    };
    const restart = async (): Promise<void> => {
      emit(decoder.decode()); // what the old file ended with
      decoder = new TextDecoder("utf-8");
      offset = 0;
      await handle?.close().catch(() => undefined);
      handle = undefined;
    };
    /** Opens the file when it exists; false when it does not (yet). */
    const ensureOpen = async (): Promise<boolean> => {
      if (handle !== undefined) return true;
      try {
        handle = await open(path, "r");
        inode = (await handle.stat()).ino;
        return true;
      } catch (e) {
        if (errnoOf(e) === "ENOENT") return false;
        throw readFailure(path, e);
      }
    };
    /** Reads what is new; true when something was read. */
    const readNew = async (): Promise<boolean> => {
      if (!(await ensureOpen())) return false;
      try {
        const size = (await handle!.stat()).size;
        if (size < offset) await restart(); // truncated: a new run writes from 0
        if (!(await ensureOpen())) return false;
        const { bytesRead } = await handle!.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) return false;
        offset += bytesRead;
        emit(decoder.decode(buffer.subarray(0, bytesRead), { stream: true }));
        return true;
      } catch (e) {
        throw e instanceof MaqetError ? e : readFailure(path, e);
      }
    };
    /** True when the path now names another file (removed and created again). */
    const replaced = async (): Promise<boolean> => {
      if (handle === undefined) return false;
      try {
        return (await stat(path)).ino !== inode;
      } catch (e) {
        if (errnoOf(e) === "ENOENT") return false; // removed: keep what we have, wait for a new one
        throw readFailure(path, e);
      }
    };

    (async () => {
      if (options.from === "end") offset = await sizeOf(path);
      for (;;) {
        if (signal.aborted) return;
        if (await readNew()) continue;
        if (await replaced()) {
          await restart();
          continue;
        }
        if (await isDone()) {
          while (!signal.aborted && (await readNew())) {
            // drain what the writer wrote before it ended
          }
          emit(decoder.decode());
          subscriber.complete();
          return;
        }
        await clock.sleep(pollMs, signal);
      }
    })()
      .catch((error: unknown) => {
        if (!signal.aborted) subscriber.error(error);
      })
      .finally(() => handle?.close().catch(() => undefined));

    return () => abort.abort();
  });
}
