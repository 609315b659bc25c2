/**
 * The qemu-img adapter with a scripted runner and a manual clock: argument arrays, the version
 * read once, transient failures retried with back-off (and nothing else), the time limit that
 * kills and reaps, errors that quote qemu-img, convert progress. No process is spawned and
 * nothing sleeps for real.
 */
import { lastValueFrom, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import type { BinaryLocator } from "../../src/actors/ports.ts";
import { createQemuImg, isTransient, progressParser } from "../../src/adapters/qemu-img.ts";
import type { ToolRunner, ToolRunOptions, ToolRunResult } from "../../src/adapters/tool-runner.ts";
import { FakeClock } from "../support/fake-clock.ts";

const LOCKED = `qemu-img: Could not open '/vms/a.qcow2': Failed to get "write" lock\nIs another process using the image [/vms/a.qcow2]?\n`;
const VERSION = "qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022\n";

type Script = (
  args: readonly string[],
  options: ToolRunOptions,
) => Promise<Partial<ToolRunResult>> | Partial<ToolRunResult>;

/** A runner that answers `--version` itself and everything else from `script`, logging each call. */
function fakeRunner(script: Script) {
  const calls: string[][] = [];
  const runner: ToolRunner = {
    async run(_binary, args, options = {}) {
      calls.push([...args]);
      const answer = args[0] === "--version" ? { stdout: VERSION } : await script(args, options);
      return { exitCode: 0, signal: null, stdout: "", stderr: "", aborted: false, ...answer };
    },
  };
  return { runner, calls };
}

function countingLocator() {
  const locator = {
    lookups: 0,
    async locate(program: string) {
      locator.lookups++;
      return `/usr/bin/${program}`;
    },
  };
  return locator satisfies BinaryLocator;
}

/** A script step that hangs until aborted, then reports how it ended (like a killed process). */
const hangUntilAborted = (_args: readonly string[], options: ToolRunOptions) =>
  new Promise<Partial<ToolRunResult>>((resolve) => {
    options.signal?.addEventListener("abort", () => resolve({ exitCode: null, signal: "SIGTERM", aborted: true }), {
      once: true,
    });
  });

describe("arguments", () => {
  it("passes argument arrays with -- before paths, for every operation", async () => {
    const { runner, calls } = fakeRunner((args) => {
      if (args[0] === "info") return { stdout: JSON.stringify({ format: "qcow2", "virtual-size": 1 }) };
      if (args[0] === "check") return { stdout: JSON.stringify({ "check-errors": 0 }) };
      return {};
    });
    const img = createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() });
    await img.create("/vms/-a,b.qcow2", {
      format: "qcow2",
      size: "1G",
      options: { cluster_size: "64K", lazy_refcounts: true },
    });
    await img.create("/vms/o.qcow2", { format: "qcow2", backingFile: "/vms/base.qcow2", backingFormat: "raw" });
    await img.info("/vms/x.qcow2");
    await img.info("/vms/x.qcow2", { shared: true });
    await img.check("/vms/x.qcow2", { format: "qcow2" });
    await img.resize("/vms/x.qcow2", "2G", { shrink: true });
    await img.snapshotCreate("/vms/x.qcow2", "s1");
    await img.snapshotApply("/vms/x.qcow2", "s1");
    await img.snapshotDelete("/vms/x.qcow2", "s1");
    await lastValueFrom(img.convert("/vms/x.qcow2", "/vms/y.raw", { outputFormat: "raw", sourceFormat: "qcow2" }));
    expect(calls).toEqual([
      ["--version"],
      ["create", "-q", "-f", "qcow2", "-o", "cluster_size=64K,lazy_refcounts=on", "--", "/vms/-a,b.qcow2", "1G"],
      ["create", "-q", "-f", "qcow2", "-b", "/vms/base.qcow2", "-F", "raw", "--", "/vms/o.qcow2"],
      ["info", "--output=json", "--", "/vms/x.qcow2"],
      ["info", "--output=json", "-U", "--", "/vms/x.qcow2"],
      ["check", "--output=json", "-f", "qcow2", "--", "/vms/x.qcow2"],
      ["resize", "-q", "--shrink", "--", "/vms/x.qcow2", "2G"],
      ["snapshot", "-c", "s1", "--", "/vms/x.qcow2"],
      ["snapshot", "-a", "s1", "--", "/vms/x.qcow2"],
      ["snapshot", "-d", "s1", "--", "/vms/x.qcow2"],
      ["convert", "-p", "-f", "qcow2", "-O", "raw", "--", "/vms/x.qcow2", "/vms/y.raw"],
    ]);
  });

  it("reads the version once and looks the binary up through the locator (cached by it)", async () => {
    const { runner, calls } = fakeRunner(() => ({ stdout: JSON.stringify({ format: "raw", "virtual-size": 1 }) }));
    const img = createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() });
    await Promise.all(Array.from({ length: 20 }, () => img.info("/vms/a.raw")));
    expect(await img.version()).toBe("7.2.22");
    expect(img.versionReads).toBe(1);
    expect(calls.filter((c) => c[0] === "--version")).toHaveLength(1);
  });

  it("refuses a qemu-img older than 2.10", async () => {
    const runner: ToolRunner = {
      run: async () => ({ exitCode: 0, signal: null, stdout: "qemu-img version 2.9.0\n", stderr: "", aborted: false }),
    };
    const img = createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() });
    await expect(img.info("/x")).rejects.toMatchObject({
      code: "QEMU_IMG_FAILED",
      message: expect.stringMatching(/^qemu-img 2\.9\.0 is too old: maqet needs 2\.10 or later/),
    });
  });
});

describe("parsing", () => {
  it("info: format, sizes, backing file, snapshots", async () => {
    const raw = {
      format: "qcow2",
      "virtual-size": 1073741824,
      "actual-size": 200704,
      "full-backing-filename": "/vms/base.qcow2",
      "backing-filename-format": "qcow2",
      "dirty-flag": false,
      snapshots: [
        {
          id: "1",
          name: "s1",
          "vm-state-size": 753000,
          "date-sec": 1795304583,
          "date-nsec": 571979000,
          "vm-clock-sec": 2,
          "vm-clock-nsec": 5,
        },
      ],
    };
    const { runner } = fakeRunner(() => ({ stdout: JSON.stringify(raw) }));
    const info = await createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() }).info(
      "/vms/o.qcow2",
    );
    expect(info).toMatchObject({
      file: "/vms/o.qcow2",
      format: "qcow2",
      virtualSize: 1073741824,
      actualSize: 200704,
      backingFile: "/vms/base.qcow2",
      backingFormat: "qcow2",
      dirty: false,
      inUse: false,
      snapshots: [{ name: "s1", id: "1", vmStateSize: 753000, createdAt: 1795304583571, vmClockNs: 2_000_000_005 }],
    });
  });

  it("info on a locked image falls back to -U at once (no back-off) and says it is in use", async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeRunner((args) =>
      args.includes("-U")
        ? { stdout: JSON.stringify({ format: "qcow2", "virtual-size": 1 }) }
        : { exitCode: 1, stderr: LOCKED },
    );
    const info = await createQemuImg({ locator: countingLocator(), runner, clock }).info("/vms/a.qcow2");
    expect(info.inUse).toBe(true);
    expect(calls.slice(1).map((c) => c.includes("-U"))).toEqual([false, true]);
    expect(clock.now()).toBe(0);
  });

  it("check: corruption (exit 2) and leaks (exit 3) are answers, not errors", async () => {
    let exitCode = 2;
    const { runner } = fakeRunner(() => ({
      exitCode,
      stdout: JSON.stringify({ "check-errors": 0, corruptions: 4, leaks: exitCode === 3 ? 7 : 0, format: "qcow2" }),
    }));
    const img = createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() });
    expect(await img.check("/vms/a.qcow2")).toMatchObject({ status: "corrupt", corruptions: 4 });
    exitCode = 3;
    expect(await img.check("/vms/a.qcow2")).toMatchObject({ status: "leaks", leaks: 7 });
    exitCode = 0;
    expect(await img.check("/vms/a.qcow2")).toMatchObject({ status: "clean" });
  });

  it("progressParser reports each larger percentage once, across chunk boundaries", () => {
    const seen: number[] = [];
    const feed = progressParser((p) => seen.push(p));
    feed("    (0.00/100%)\r    (1.");
    feed("00/100%)\r    (1.00/100%)\r    (50.50/100%)\r");
    feed("    (49.00/100%)\r    (100.00/100%)\r\n");
    expect(seen).toEqual([0, 1, 50.5, 100]);
  });

  it("convert emits increasing progress and ends at 100 even when qemu-img printed less", async () => {
    const { runner } = fakeRunner((_args, options) => {
      for (const chunk of ["    (0.00/100%)\r", "    (25.00/100%)\r    (60.00/100%)\r"]) options.onStdout?.(chunk);
      return {};
    });
    const img = createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() });
    const values = await lastValueFrom(img.convert("/a", "/b", { outputFormat: "qcow2" }).pipe(toArray()));
    expect(values.map((v) => v.percent)).toEqual([0, 25, 60, 100]);
  });
});

describe("retries, time limits, errors", () => {
  it("a held lock is retried with back-off (1 s, 2 s), then fails quoting qemu-img", async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeRunner(() => ({ exitCode: 1, stderr: LOCKED }));
    const img = createQemuImg({ locator: countingLocator(), runner, clock });
    const result = img.snapshotCreate("/vms/a.qcow2", "s1").catch((e) => e);
    await clock.untilSleeping();
    expect(calls.length).toBe(2); // version + the first try
    await clock.advance(999);
    expect(calls.length).toBe(2);
    await clock.advance(1);
    expect(calls.length).toBe(3);
    await clock.untilSleeping();
    await clock.advance(2000);
    const error = await result;
    expect(calls.length).toBe(4);
    expect(clock.now()).toBe(3000);
    expect(error).toMatchObject({
      code: "QEMU_IMG_FAILED",
      details: { attempts: 3, locked: true, transient: true, operation: "snapshot" },
    });
    expect(error.message).toBe(
      `qemu-img snapshot -c 's1' failed for /vms/a.qcow2: qemu-img: Could not open '/vms/a.qcow2': Failed to get "write" lock Is another process using the image [/vms/a.qcow2]? (tried 3 times). Check free space, and that no running VM holds the image (use a live snapshot for a running VM).`,
    );
  });

  it("a lock released between tries succeeds on the next try", async () => {
    const clock = new FakeClock();
    let tries = 0;
    const { runner } = fakeRunner(() =>
      ++tries === 1 ? { exitCode: 1, stderr: "qemu-img: Resource temporarily unavailable" } : {},
    );
    const img = createQemuImg({ locator: countingLocator(), runner, clock });
    const done = img.snapshotDelete("/vms/a.qcow2", "s1");
    await clock.untilSleeping();
    await clock.advance(1000);
    await done;
    expect(tries).toBe(2);
  });

  it("a permanent failure is not retried", async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeRunner(() => ({
      exitCode: 1,
      stderr: "qemu-img: Could not apply snapshot 'nope': Failed to load snapshot: No such file or directory\n",
    }));
    const error = await createQemuImg({ locator: countingLocator(), runner, clock })
      .snapshotApply("/vms/a.qcow2", "nope")
      .catch((e) => e);
    expect(calls.length).toBe(2);
    expect(error.details).toMatchObject({ attempts: 1, transient: false });
    expect(error.message).toContain(
      "qemu-img: Could not apply snapshot 'nope': Failed to load snapshot: No such file or directory",
    );
  });

  it("the time limit aborts the run (kill), waits for it to end (reap), and says so (exit 2)", async () => {
    const clock = new FakeClock();
    let ended = false;
    const { runner } = fakeRunner(async (args, options) => {
      const r = await hangUntilAborted(args, options);
      ended = true;
      return r;
    });
    const img = createQemuImg({ locator: countingLocator(), runner, clock, timeouts: { snapshot: 5000 } });
    const result = img.snapshotCreate("/vms/a.qcow2", "s1").catch((e) => e);
    await clock.untilSleeping();
    await clock.advance(5000);
    const error = await result;
    expect(ended).toBe(true);
    expect(error).toMatchObject({ code: "QEMU_IMG_TIMEOUT", exitCode: 2, details: { timeoutMs: 5000 } });
    expect(error.message).toMatch(
      /^qemu-img snapshot -c 's1' timed out after 5000 ms for \/vms\/a\.qcow2; qemu-img was killed\./,
    );
  });

  it("a caller's abort ends the run and rejects with the abort reason; a sleep between tries too", async () => {
    const clock = new FakeClock();
    const { runner } = fakeRunner(hangUntilAborted);
    const img = createQemuImg({ locator: countingLocator(), runner, clock });
    const controller = new AbortController();
    const running = img.check("/vms/a.qcow2", { signal: controller.signal }).catch((e) => e);
    await clock.untilSleeping(); // the time limit's timer
    controller.abort(new Error("ctrl-c"));
    expect((await running).message).toBe("ctrl-c");

    const locked = fakeRunner(() => ({ exitCode: 1, stderr: LOCKED }));
    const img2 = createQemuImg({ locator: countingLocator(), runner: locked.runner, clock });
    const c2 = new AbortController();
    const retrying = img2.snapshotCreate("/vms/a.qcow2", "s1", { signal: c2.signal }).catch((e) => e);
    await clock.untilSleeping();
    c2.abort(new Error("gave up"));
    expect((await retrying).message).toBe("gave up");
  });

  it("unsubscribing from convert kills qemu-img", async () => {
    let aborted = false;
    const { runner } = fakeRunner(async (args, options) => {
      const r = await hangUntilAborted(args, options);
      aborted = true;
      return r;
    });
    const img = createQemuImg({ locator: countingLocator(), runner, clock: new FakeClock() });
    const subscription = img.convert("/a", "/b", { outputFormat: "raw" }).subscribe({ error: () => undefined });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    subscription.unsubscribe();
    await new Promise((r) => setImmediate(r));
    expect(aborted).toBe(true);
  });

  it("classifies transient messages", () => {
    expect(isTransient(LOCKED)).toBe(true);
    expect(isTransient("qemu-img: error while writing: Resource temporarily unavailable")).toBe(true);
    expect(isTransient("Device or resource busy")).toBe(true);
    expect(isTransient("qemu-img: Could not open 'x': No such file or directory")).toBe(false);
    expect(isTransient("force-share=on can only be used with read-only images")).toBe(false);
  });
});
