/**
 * Facts that happened while the store was unreachable (`stop --force` with the PostgreSQL server
 * down), kept on local disk until the store is back: one JSON line per batch in
 * `<data dir>/spool/facts.jsonl` (directory 0700, file 0600). Each batch names the store it
 * belongs to (its URL without the password) and carries its events with their ids, so recording
 * it is an idempotent append (docs/events.md#idempotent-appends): a batch recorded twice — a
 * crash between the append and the spool's rewrite — is stored once. Writers and the drainer
 * take a lock directory (`spool/lock`), so no line is lost to a rewrite.
 *
 * @example
 * ```ts
 * await spoolFacts(spoolPath(dataDir), { store, streamId, vmId, name, events, spooledAt });
 * const pending = await readSpool(spoolPath(dataDir));
 * ```
 */
import { appendFile, chmod, mkdir, open, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { NewEvent } from "../events/envelope.ts";

export interface SpooledFacts {
  /** The store the facts belong to: a PostgreSQL URL without its password, or `pglite:<dir>`. */
  store: string;
  streamId: string;
  vmId: string;
  name: string;
  /** The events to append, with their ids (and metadata) fixed when spooled. */
  events: Array<NewEvent & { id: string }>;
  /** When the facts happened (ISO); the store's `recordedAt` will be when they were recorded. */
  spooledAt: string;
}

/** How long a lock may be held before another process takes it over (a crashed holder). */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 5000;

/** The spool file of a data directory. */
export function spoolPath(dataDir: string): string {
  return join(dataDir, "spool", "facts.jsonl");
}

/** The store key a spooled batch is matched on: the URL without password, or the PGlite dir. */
export function spoolStoreKey(databaseUrl: string | undefined, pgliteDir: string): string {
  if (databaseUrl === undefined) return `pglite:${pgliteDir}`;
  try {
    const url = new URL(databaseUrl);
    url.password = "";
    return url.toString();
  } catch {
    return databaseUrl;
  }
}

/** Appends one batch (durably: fsync) to the spool; creates the directory 0700 and the file 0600. */
export async function spoolFacts(path: string, facts: SpooledFacts): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await withSpoolLock(path, async () => {
    const handle = await open(path, "a", 0o600);
    try {
      await handle.appendFile(`${JSON.stringify(facts)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(path, 0o600);
  });
}

/** The spooled batches; a line that is not a whole batch (a write cut short) is skipped. */
export async function readSpool(path: string): Promise<SpooledFacts[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const out: SpooledFacts[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const facts = JSON.parse(line) as SpooledFacts;
      if (typeof facts.streamId === "string" && Array.isArray(facts.events)) out.push(facts);
    } catch {
      // a torn last line: its writer died before the fsync returned, so nobody was told "spooled"
    }
  }
  return out;
}

/**
 * Records the spooled batches with `record` (under the lock), then keeps in the spool only those
 * it did not take: `record` returns true once a batch is in the store (or known to be there).
 * Returns the batches taken. A failing `record` leaves its batch (and the rest) spooled.
 */
export async function drainSpool(
  path: string,
  record: (facts: SpooledFacts) => Promise<boolean>,
): Promise<SpooledFacts[]> {
  if (!(await exists(path))) return [];
  return withSpoolLock(path, async () => {
    const all = await readSpool(path);
    const kept: SpooledFacts[] = [];
    const taken: SpooledFacts[] = [];
    let failure: unknown;
    for (const facts of all) {
      if (failure !== undefined) {
        kept.push(facts);
        continue;
      }
      try {
        if (await record(facts)) taken.push(facts);
        else kept.push(facts);
      } catch (error) {
        failure = error;
        kept.push(facts);
      }
    }
    if (taken.length > 0) await rewrite(path, kept);
    if (failure !== undefined) throw failure;
    return taken;
  });
}

async function rewrite(path: string, kept: SpooledFacts[]): Promise<void> {
  if (kept.length === 0) {
    await unlink(path).catch(() => undefined);
    return;
  }
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(kept.map((f) => `${JSON.stringify(f)}\n`).join(""));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

/** Runs `work` holding `spool/lock` (a directory: mkdir is atomic); a lock older than 30 s is stale. */
async function withSpoolLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const lock = join(dirname(path), "lock");
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lock, { mode: 0o700 });
      await appendFile(join(lock, "owner"), `${process.pid}\n`).catch(() => undefined);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`the fact spool ${path} is locked (${lock}); remove the lock if no maqet runs`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
