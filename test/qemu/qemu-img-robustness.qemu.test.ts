/**
 * The qemu-img adapter against real processes:
 * 3. a snapshot blocked by an image lock (held by a real qemu-io) is retried with back-off, then
 *    fails quoting qemu-img; a lock released meanwhile lets a later try succeed; a hung qemu-img
 *    (a fake one on PATH, test/fixtures/hung-qemu-img) is killed at the time limit and reaped.
 * 5. creating 50 disks and running 100 more operations looks qemu-img up once and reads its
 *    version once (a wrapper on PATH logs every run).
 * 6. converting a 512 MiB image reports increasing progress ending at 100.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Clock } from "../../src/actors/ports.ts";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import { createQemuImg, qemuImgFor } from "../../src/adapters/qemu-img.ts";
import { abortableSleep } from "../../src/adapters/system-clock.ts";
import { createMaqet } from "../../src/mod.ts";
import { processAlive } from "../support/cli-runner.ts";

const run = promisify(execFile);
const realLocator = createBinaryLocator({ env: process.env });
const qemuImgPath = await realLocator.locate("qemu-img");
const qemuIo = await realLocator.locate("qemu-io").catch(() => undefined);
const HUNG_DIR = fileURLToPath(new URL("../fixtures/hung-qemu-img", import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "maqet-img-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The real clock, with every sleep (the back-off) written down. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => Date.now(),
    sleep: (ms, signal) => {
      sleeps.push(ms);
      return abortableSleep(ms, signal);
    },
  };
}

/**
 * qemu-io holding the image's write lock for `ms`; resolves once qemu-img really sees the lock.
 * Waits up to a minute for that (a loaded machine starts processes slowly), and fails at once,
 * with its output, if qemu-io ends first.
 */
async function holdLock(file: string, ms: number): Promise<ChildProcess> {
  const holder = spawn(qemuIo!, ["-f", "qcow2", "-c", `sleep ${ms}`, file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  holder.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  let exited: string | undefined;
  holder.once("exit", (code, signal) => {
    exited = `exit ${code ?? signal}`;
  });
  let last = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`qemu-io ended (${exited}) before it held the lock: ${stderr}`);
    const locked = await run(qemuImgPath, ["snapshot", "-l", "--", file]).then(
      () => false,
      (e: { stderr?: string }) => {
        last = String(e.stderr);
        return /lock/.test(last);
      },
    );
    if (locked) return holder;
    await abortableSleep(10);
  }
  holder.kill("SIGKILL");
  throw new Error(`qemu-io never took the lock within 60 s; qemu-img's last refusal: ${last || "none"}`);
}

describe.skipIf(qemuIo === undefined)("3. a held lock: retried with back-off, then qemu-img's message", () => {
  it("fails after 3 tries (waits 100 then 200 ms), quoting qemu-img", async () => {
    const file = join(dir, "locked.qcow2");
    await run(qemuImgPath, ["create", "-q", "-f", "qcow2", "--", file, "16M"]);
    const holder = await holdLock(file, 20_000);
    try {
      const clock = recordingClock();
      const img = createQemuImg({ locator: realLocator, clock, retry: { initialDelayMs: 100 } });
      const t0 = Date.now();
      const error = await img.snapshotCreate(file, "s1").catch((e) => e);
      expect(error).toMatchObject({ code: "QEMU_IMG_FAILED", exitCode: 1, details: { attempts: 3, locked: true } });
      expect(error.message).toContain(
        `qemu-img snapshot -c 's1' failed for ${file}: qemu-img: Could not open '${file}': Failed to get "write" lock Is another process using the image [${file}]? (tried 3 times).`,
      );
      // The back-off waits (the other sleeps are the per-run time limits: 10 s version, 300 s snapshot).
      expect(clock.sleeps.filter((ms) => ms < 10_000)).toEqual([100, 200]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      // Reading is not blocked: info falls back to a shared read (-U) and says the image is in use.
      expect(await img.info(file)).toMatchObject({ format: "qcow2", inUse: true });
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("succeeds on a later try when the other process lets go", async () => {
    const file = join(dir, "released.qcow2");
    await run(qemuImgPath, ["create", "-q", "-f", "qcow2", "--", file, "16M"]);
    // Held until the first back-off wait begins; then the holder lets go (and is gone) before
    // that wait ends. So the first try is refused for the lock and the second one succeeds,
    // however slow the machine.
    const holder = await holdLock(file, 600_000);
    onTestFinished(() => {
      holder.kill("SIGKILL");
    });
    const gone = new Promise((resolve) => holder.once("exit", resolve));
    const inner = recordingClock();
    const clock: Clock & { sleeps: number[] } = {
      ...inner,
      sleep: async (ms, signal) => {
        const wait = inner.sleep(ms, signal);
        if (ms < 10_000 && inner.sleeps.filter((s) => s < 10_000).length === 1) {
          holder.kill("SIGKILL");
          await gone;
        }
        return wait;
      },
    };
    const img = createQemuImg({ locator: realLocator, clock, retry: { initialDelayMs: 300, attempts: 4 } });
    await img.snapshotCreate(file, "s1");
    // Exactly one back-off wait (the others are the per-run time limits): refused once, then done.
    expect(clock.sleeps.filter((ms) => ms < 10_000)).toEqual([300]);
    expect((await img.snapshotList(file)).map((s) => s.name)).toEqual(["s1"]);
  });
});

describe("3. a hung qemu-img (fake on PATH) is killed at the time limit and reaped", () => {
  it("QEMU_IMG_TIMEOUT (exit 2) after the limit; the process is gone, not a zombie", async () => {
    const pidFile = join(dir, "hung.pid");
    process.env.FAKE_QEMU_IMG_PIDFILE = pidFile;
    try {
      const locator = createBinaryLocator({ env: { PATH: HUNG_DIR } });
      expect(await locator.locate("qemu-img")).toBe(join(HUNG_DIR, "qemu-img"));
      const img = createQemuImg({ locator, timeouts: { snapshot: 500 } });
      const t0 = Date.now();
      const error = await img.snapshotCreate(join(dir, "any.qcow2"), "s1").catch((e) => e);
      const elapsed = Date.now() - t0;
      expect(error).toMatchObject({ code: "QEMU_IMG_TIMEOUT", exitCode: 2, details: { timeoutMs: 500 } });
      expect(error.message).toMatch(
        /^qemu-img snapshot -c 's1' timed out after 500 ms for .*any\.qcow2; qemu-img was killed\./,
      );
      expect(elapsed).toBeGreaterThanOrEqual(500);
      expect(elapsed).toBeLessThan(4000);
      const pid = Number((await readFile(pidFile, "utf8")).trim());
      expect(pid).toBeGreaterThan(0);
      expect(await processAlive(pid)).toBe(false);
      await expect(stat(`/proc/${pid}`)).rejects.toMatchObject({ code: "ENOENT" }); // reaped: no zombie left
    } finally {
      delete process.env.FAKE_QEMU_IMG_PIDFILE;
    }
  });
});

describe("5. 50 disks and 100 operations: one qemu-img lookup, one version read", () => {
  it("counts lookups with the locator and qemu-img runs with a logging wrapper on PATH", {
    timeout: 240_000,
  }, async () => {
    const bin = join(dir, "wrapped-bin");
    const log = join(dir, "qemu-img-calls.log");
    await run("mkdir", ["-p", bin]);
    await writeFile(join(bin, "qemu-img"), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${qemuImgPath}' "$@"\n`);
    await chmod(join(bin, "qemu-img"), 0o755);
    const locator = createBinaryLocator({ env: { PATH: bin } });
    const maqet = createMaqet({ dataDir: join(dir, "lookup-data"), ports: { locator } });
    try {
      const disks = join(dir, "fifty");
      await run("mkdir", ["-p", disks]);
      const files = Array.from({ length: 50 }, (_, i) => join(disks, `d${i}.${i % 5 === 0 ? "raw" : "qcow2"}`));
      // Ten at a time: concurrent first calls share one lookup and one version read too.
      for (let i = 0; i < files.length; i += 10) {
        await Promise.all(
          files
            .slice(i, i + 10)
            .map((f) => maqet.createDisk(f, { format: f.endsWith(".raw") ? "raw" : "qcow2", size: "1M" })),
        );
      }
      let operations = 0;
      for (const f of files) {
        await maqet.diskInfo(f);
        operations++;
      }
      for (const f of files.slice(0, 30)) {
        await maqet.checkDisk(f);
        operations++;
      }
      for (const f of files.slice(0, 20)) {
        await maqet.resizeDisk(f, "2M"); // two runs: resize, then info for the new size
        operations += 2;
      }
      expect(operations).toBe(120);
      expect(locator.lookups).toBe(1);
      expect(qemuImgFor(locator).versionReads).toBe(1);
      const calls = (await readFile(log, "utf8")).trim().split("\n");
      expect(calls.filter((c) => c === "--version")).toHaveLength(1);
      expect(calls.length).toBe(1 + 50 + 120);
    } finally {
      await maqet.close();
    }
  });
});

describe.skipIf(qemuIo === undefined)("6. convert of a 512 MiB image reports progress", () => {
  it("increasing values ending at 100, on the Observable and through maqet", async () => {
    const source = join(dir, "big.qcow2");
    const maqet = createMaqet({ dataDir: join(dir, "convert-data"), env: { PATH: process.env.PATH } });
    try {
      await maqet.createDisk(source, { format: "qcow2", size: "512M" });
      await run(qemuIo!, ["-f", "qcow2", "-c", "write -P 0xab 0 32M", "-c", "write -P 0xcd 480M 32M", source]);

      // The adapter's own Observable.
      const values: number[] = [];
      await new Promise<void>((resolve, reject) =>
        qemuImgFor(realLocator)
          .convert(source, join(dir, "big-direct.raw"), { outputFormat: "raw" })
          .subscribe({ next: (p) => values.push(p.percent), error: reject, complete: resolve }),
      );
      expect(values.length).toBeGreaterThanOrEqual(10);
      expect(values.every((v, i) => i === 0 || v > values[i - 1]!)).toBe(true);
      expect(values[0]).toBe(0);
      expect(values.at(-1)).toBe(100);

      // Through the facade: the per-call callback and maqet.progress$ see the same values.
      const seen: number[] = [];
      const hub: number[] = [];
      const sub = maqet.progress$.subscribe((p) => hub.push(p.percent));
      const target = join(dir, "big.raw");
      const result = await maqet.convertDisk(source, target, { format: "raw", onProgress: (p) => seen.push(p) });
      sub.unsubscribe();
      expect(result).toMatchObject({ target, format: "raw", virtualSize: 512 * 1024 * 1024 });
      expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
      expect(seen.at(-1)).toBe(100);
      expect(hub.slice(0, seen.length)).toEqual(seen);
      expect((await stat(target)).mode & 0o777).toBe(0o600);
      const { stdout } = await run(qemuIo!, ["-f", "raw", "-c", "read -P 0xcd 480M 32M", target]);
      expect(stdout).not.toMatch(/Pattern verification failed/);
    } finally {
      await maqet.close();
    }
  });
});
