/**
 * The data-dir lock across real processes: a second `node` holding the lock, a holder killed
 * with SIGKILL, a holder exiting normally, and several processes racing for one stale lock.
 * The children load the built module (dist/, built by the global setup), as users run it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireDataDirLock, lockPathOf } from "../../src/adapters/data-dir-lock.ts";

const built = fileURLToPath(new URL("../../dist/src/adapters/data-dir-lock.js", import.meta.url));

let dir: string;
let dataDir: string;
const children: ChildProcess[] = [];
beforeEach(async () => {
  if (!existsSync(built)) throw new Error(`${built} is missing: build with \`npm run build\` (the global setup does).`);
  dir = await mkdtemp(join(tmpdir(), "maqet-lock-int-"));
  dataDir = join(dir, "pgdata");
});
afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

/** Runs `body` (ES module code with `acquireDataDirLock` and `dataDir` in scope) in a new node process. */
function node(body: string): ChildProcess & { lines: string[]; line(text: string): Promise<void> } {
  const code = `import { acquireDataDirLock } from ${JSON.stringify(built)};
const dataDir = ${JSON.stringify(dataDir)};
${body}`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    lines.push(...chunk.split("\n").filter(Boolean));
    for (const w of waiters.splice(0)) w();
  });
  const line = async (text: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!lines.includes(text)) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`child never printed '${text}': ${lines.join(" | ")}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return Object.assign(child, { lines, line });
}

describe("data-dir lock across processes", () => {
  it("reports another live process as STORE_LOCKED, then takes the lock over once it is killed", async () => {
    const holder = node(`await acquireDataDirLock(dataDir); console.log("locked"); setInterval(() => {}, 1000);`);
    await holder.line("locked");

    const error = await acquireDataDirLock(dataDir, { waitMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeMaqetError("STORE_LOCKED");
    const details = (error as { details: Record<string, unknown> }).details;
    expect(details).toMatchObject({ holderPid: holder.pid, holderHost: hostname(), dataDir });
    expect(details.command).toContain("node");
    expect((error as Error).message).toMatch(new RegExp(`pid ${holder.pid} on .* since .*Wait for it to finish`));

    holder.kill("SIGKILL");
    await once(holder, "exit");
    // SIGKILL leaves the file behind; the dead pid lets us take it over.
    expect(existsSync(lockPathOf(dataDir))).toBe(true);
    const lock = await acquireDataDirLock(dataDir, { waitMs: 0 });
    expect(lock.holder.pid).toBe(process.pid);
    await lock.release();
  });

  it("removes the lock file when the holder exits normally", async () => {
    const holder = node(`await acquireDataDirLock(dataDir); console.log("locked");`);
    await holder.line("locked");
    await once(holder, "exit");
    await expect(stat(lockPathOf(dataDir))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("lets exactly one of several processes racing for a stale lock win", async () => {
    const dead = node("");
    await once(dead, "exit");
    await writeFile(
      lockPathOf(dataDir),
      JSON.stringify({ pid: dead.pid, host: hostname(), since: "2020-01-01T00:00:00.000Z", command: "crashed" }),
    );
    const startAt = Date.now() + 700; // every racer has loaded by then and starts at the same instant
    const racers = Array.from({ length: 6 }, () =>
      node(`await new Promise((r) => setTimeout(r, ${startAt} - Date.now()));
try {
  await acquireDataDirLock(dataDir, { waitMs: 1000, pollMs: 5 });
  console.log("won");
  setTimeout(() => process.exit(0), 2000);
} catch (e) {
  console.log(e.code === "STORE_LOCKED" ? "locked" : "error " + e.message);
}`),
    );
    await Promise.all(racers.map((r) => once(r, "exit")));
    const outcomes = racers.map((r) => r.lines.join(","));
    expect(outcomes.filter((o) => o === "won").length).toBe(1);
    expect(outcomes.filter((o) => o === "locked").length).toBe(racers.length - 1);
  });
});
