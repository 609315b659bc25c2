/**
 * The data-dir lock within one process: file format, waiting, reporting, stale takeover, and
 * racing takers. Real files in a temp dir; no database. Cross-process cases live in
 * test/int/data-dir-lock.int.test.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireDataDirLock, isProcessAlive, lockPathOf, removeStaleLock } from "../../src/adapters/data-dir-lock.ts";
import { waitUntil } from "../support/poll.ts";

let dir: string;
let dataDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "maqet-lock-"));
  dataDir = join(dir, "pgdata");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that existed a moment ago and is gone now. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  return child.pid!;
}

async function writeLock(holder: Record<string, unknown>): Promise<void> {
  await writeFile(lockPathOf(dataDir), JSON.stringify(holder), { mode: 0o600 });
}

/** Sets a file's mtime `seconds` into the past. */
async function age(path: string, seconds: number): Promise<void> {
  const then = new Date(Date.now() - seconds * 1000);
  await utimes(path, then, then);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

describe("acquireDataDirLock", () => {
  it("writes {pid, host, since, command} to <dataDir>.lock with mode 0600 and removes it on release", async () => {
    const lock = await acquireDataDirLock(`${dataDir}/`);
    expect(lock.path).toBe(`${dataDir}.lock`);
    const content = JSON.parse(await readFile(lock.path, "utf8"));
    expect(content).toEqual({
      pid: process.pid,
      host: hostname(),
      since: lock.holder.since,
      command: expect.any(String),
    });
    expect((await stat(lock.path)).mode & 0o777).toBe(0o600);
    await lock.release();
    await lock.release();
    await expect(stat(lock.path)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("reports a live holder as STORE_LOCKED after waiting, with the holder and the fix", async () => {
    const lock = await acquireDataDirLock(dataDir);
    const started = Date.now();
    const error = await rejection(acquireDataDirLock(dataDir, { waitMs: 250, pollMs: 20 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
    expect(error).toBeMaqetError("STORE_LOCKED");
    expect((error as { details: unknown }).details).toEqual({
      holderPid: process.pid,
      holderHost: hostname(),
      since: lock.holder.since,
      command: lock.holder.command,
      dataDir,
      lockPath: lock.path,
    });
    expect((error as Error).message).toContain(`pid ${process.pid}`);
    expect((error as Error).message).toContain(`lock file ${lock.path}`);
    expect((error as Error).message).toContain(`kill ${process.pid}`);
    expect((error as Error).message).toContain("--db");
    await lock.release();
  });

  it("gets the lock as soon as the holder releases it", async () => {
    const first = await acquireDataDirLock(dataDir);
    setTimeout(() => void first.release(), 100);
    const second = await acquireDataDirLock(dataDir, { waitMs: 5000, pollMs: 10 });
    expect(second.holder.pid).toBe(process.pid);
    await second.release();
  });

  it("takes over a lock whose holder died on this host", async () => {
    await writeLock({
      pid: deadPid(),
      host: hostname(),
      since: "2020-01-01T00:00:00.000Z",
      command: "maqet start web",
    });
    const lock = await acquireDataDirLock(dataDir, { waitMs: 0 });
    expect(JSON.parse(await readFile(lock.path, "utf8")).pid).toBe(process.pid);
    await lock.release();
  });

  it("lets exactly one of many racing takers win a stale lock", async () => {
    await writeLock({ pid: deadPid(), host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "dead" });
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => acquireDataDirLock(dataDir, { waitMs: 300, pollMs: 10 })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won.length).toBe(1);
    for (const r of results) {
      if (r.status === "rejected") expect(r.reason).toBeMaqetError("STORE_LOCKED");
    }
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
  });

  it("a taker that judged a lock dead removes nothing once someone else has taken it over", async () => {
    const stale = { pid: deadPid(), host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "dead" };
    await writeLock(stale);
    const winner = await acquireDataDirLock(dataDir, { waitMs: 0 });
    // A late taker still acting on what it read before the winner's takeover:
    expect(await removeStaleLock(lockPathOf(dataDir), stale)).toBe(false);
    expect(JSON.parse(await readFile(lockPathOf(dataDir), "utf8")).since).toBe(winner.holder.since);
    await expect(stat(`${lockPathOf(dataDir)}.takeover`)).rejects.toMatchObject({ code: "ENOENT" });
    await winner.release();
  });

  it("never takes over a lock held from another host, whatever its pid", async () => {
    await writeLock({ pid: deadPid(), host: "elsewhere.example", since: "2020-01-01T00:00:00.000Z", command: "maqet" });
    const error = await rejection(acquireDataDirLock(dataDir, { waitMs: 50, pollMs: 10 }));
    expect(error).toBeMaqetError("STORE_LOCKED");
    expect((error as { details: { holderHost: string } }).details.holderHost).toBe("elsewhere.example");
  });

  it("respects a fresh unreadable lock (it may still be being written), naming the file and the way out", async () => {
    await writeFile(lockPathOf(dataDir), "");
    const error = await rejection(acquireDataDirLock(dataDir, { waitMs: 50, pollMs: 10, staleGraceMs: 60_000 }));
    expect(error).toBeMaqetError("STORE_LOCKED");
    expect((error as Error).message).toContain(`lock file ${lockPathOf(dataDir)}`);
    expect((error as Error).message).toContain(`delete ${lockPathOf(dataDir)}`);
    expect((error as { details: unknown }).details).toEqual({ dataDir, lockPath: lockPathOf(dataDir) });
    expect(await readFile(lockPathOf(dataDir), "utf8")).toBe("");
  });

  it("takes over an empty lock older than the grace (a writer killed between create and write)", async () => {
    await writeFile(lockPathOf(dataDir), "");
    await age(lockPathOf(dataDir), 3);
    const lock = await acquireDataDirLock(dataDir, { waitMs: 0, staleGraceMs: 2000 });
    expect(JSON.parse(await readFile(lock.path, "utf8")).pid).toBe(process.pid);
    await lock.release();
  });

  it("takes over a cut-short lock older than the grace too, and only one of racing takers wins it", async () => {
    await writeFile(lockPathOf(dataDir), '{"pid": 12');
    await age(lockPathOf(dataDir), 3);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => acquireDataDirLock(dataDir, { waitMs: 300, pollMs: 10 })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won.length).toBe(1);
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
  });

  it("takes over a dead holder's lock behind an empty takeover guard older than the grace", async () => {
    await writeLock({ pid: deadPid(), host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "dead" });
    await writeFile(`${lockPathOf(dataDir)}.takeover`, "");
    await age(`${lockPathOf(dataDir)}.takeover`, 3);
    const lock = await acquireDataDirLock(dataDir, { waitMs: 0 });
    expect(JSON.parse(await readFile(lock.path, "utf8")).pid).toBe(process.pid);
    await expect(stat(`${lockPathOf(dataDir)}.takeover`)).rejects.toMatchObject({ code: "ENOENT" });
    await lock.release();
  });

  it("waits behind a fresh empty takeover guard, then reports the dead holder with the file", async () => {
    const dead = deadPid();
    await writeLock({ pid: dead, host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "dead" });
    await writeFile(`${lockPathOf(dataDir)}.takeover`, "");
    const error = await rejection(acquireDataDirLock(dataDir, { waitMs: 50, pollMs: 10, staleGraceMs: 60_000 }));
    expect(error).toBeMaqetError("STORE_LOCKED");
    expect((error as Error).message).toContain(`lock file ${lockPathOf(dataDir)}`);
    expect(JSON.parse(await readFile(lockPathOf(dataDir), "utf8")).pid).toBe(dead);
  });

  it("clears a takeover guard whose taker died after removing the stale lock", async () => {
    await writeFile(
      `${lockPathOf(dataDir)}.takeover`,
      JSON.stringify({ pid: deadPid(), host: hostname(), since: "x", command: "takeover" }),
    );
    const lock = await acquireDataDirLock(dataDir, { waitMs: 0 });
    await expect(stat(`${lockPathOf(dataDir)}.takeover`)).rejects.toMatchObject({ code: "ENOENT" });
    await lock.release();
  });

  it("never leaves a temporary file behind, and sweeps those of dead writers", async () => {
    const orphan = `${lockPathOf(dataDir)}.${deadPid()}.0badc0de.tmp`;
    await writeFile(orphan, "{}");
    const lock = await acquireDataDirLock(dataDir);
    const left = (await readdir(dir)).filter((n) => n.endsWith(".tmp"));
    expect(left).toEqual([]);
    await lock.release();
  });

  it("clears a takeover guard left by a dead taker", async () => {
    const dead = deadPid();
    await writeLock({ pid: dead, host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "dead" });
    await writeFile(
      `${lockPathOf(dataDir)}.takeover`,
      JSON.stringify({ pid: dead, host: hostname(), since: "x", command: "takeover" }),
    );
    // No waiting allowed: the dead taker's guard is cleared and the lock taken at once.
    const lock = await acquireDataDirLock(dataDir, { waitMs: 0 });
    expect(lock.holder.pid).toBe(process.pid);
    expect(JSON.parse(await readFile(lockPathOf(dataDir), "utf8"))).toMatchObject({ pid: process.pid });
    await expect(stat(`${lockPathOf(dataDir)}.takeover`)).rejects.toMatchObject({ code: "ENOENT" });
    await lock.release();
  });

  it("release leaves a lock that is no longer ours alone", async () => {
    const lock = await acquireDataDirLock(dataDir);
    await writeLock({ pid: 1, host: hostname(), since: "later", command: "someone else" });
    await lock.release();
    expect(JSON.parse(await readFile(lockPathOf(dataDir), "utf8")).since).toBe("later");
  });

  it("stops waiting when aborted", async () => {
    const lock = await acquireDataDirLock(dataDir);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("cancelled")), 50);
    await expect(acquireDataDirLock(dataDir, { waitMs: 10_000, signal: controller.signal })).rejects.toThrow(
      "cancelled",
    );
    await lock.release();
  });
});

describe("isProcessAlive", () => {
  it("tells a live process from a gone one", () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(deadPid())).toBe(false);
    expect(isProcessAlive(0)).toBe(false);
  });

  it("counts a zombie as gone", async () => {
    // sh starts a short sleep in the background, then becomes a process that never reaps it.
    const parent = spawn("sh", ["-c", "sleep 0.01 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const [line] = (await once(parent.stdout, "data")) as [Buffer];
      const zombie = Number(line.toString().trim());
      await waitUntil(
        "the background sleep to become a zombie",
        () => readFile(`/proc/${zombie}/stat`, "utf8"),
        (stat) => stat.includes(") Z"),
      );
      expect(isProcessAlive(zombie)).toBe(false);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
