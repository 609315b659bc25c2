/**
 * ProcessControl against real processes: fake-qemu (test/fixtures/fake-qemu.mjs) for the QEMU
 * paths, `sleep` as a foreign decoy, a shell trick for a zombie, and a throwaway Node parent to
 * prove a launched QEMU outlives the process that launched it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createProcessControl, readLogTail } from "../../src/adapters/process-control.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { waitForValue } from "../support/poll.ts";
import { qmpGreeting } from "../support/qmp-greeting.ts";

const FAKE_QEMU = fileURLToPath(new URL("../fixtures/fake-qemu.mjs", import.meta.url));
const PROCESS_CONTROL_SRC = fileURLToPath(new URL("../../src/adapters/process-control.ts", import.meta.url));

let work: string;
let runtimeRoot: string;
const spawned: number[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "maqet-pc-"));
  runtimeRoot = join(work, "run");
});

afterEach(async () => {
  // Leave nothing running: launched pids by id, then our own direct children.
  for (const pid of spawned.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]. */
function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, "latin1");
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

function fakeQemuArgs(dir: string, uuid: string): string[] {
  return [
    "-name",
    "guest=t",
    "-uuid",
    uuid,
    "-S",
    "-no-shutdown",
    "-pidfile",
    `${dir}/qemu.pid`,
    "-qmp",
    `unix:${dir}/qmp.sock,server=on,wait=off`,
    "-m",
    "64M",
  ];
}

async function launchFake(vmId: string = randomUUID()) {
  const pc = createProcessControl({ runtimeRoot });
  const dir = await pc.prepareRuntimeDir(vmId);
  const launched = await pc.launch({
    binary: FAKE_QEMU,
    args: fakeQemuArgs(dir, vmId),
    runtimeDir: dir,
    logFile: `${dir}/qemu.log`,
  });
  spawned.push(launched.pid);
  return { pc, dir, vmId, launched };
}

function startSleep(): ChildProcess & { pid: number } {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  children.push(child);
  if (child.pid === undefined) throw new Error("sleep did not start");
  return child as ChildProcess & { pid: number };
}

describe("launch", () => {
  it("starts QEMU detached in its own session, writing its output to a 0600 log", async () => {
    const { pc, dir, vmId, launched } = await launchFake();
    expect(await waitForValue("QEMU's pid file", () => pc.readPidFile(`${dir}/qemu.pid`))).toBe(launched.pid);
    const [state, , pgrp, session] = statFields(launched.pid);
    expect(state).not.toBe("Z");
    expect(Number(session)).toBe(launched.pid);
    expect(Number(pgrp)).toBe(launched.pid);
    expect(pc.probe(launched.pid, vmId)).toBe("alive");
    expect((await stat(`${dir}/qemu.log`)).mode & 0o777).toBe(0o600);

    expect(await qmpGreeting(`${dir}/qmp.sock`)).toMatch(/^\{"QMP": \{"version": .*"package": "fake-qemu"/);
    pc.kill(launched.pid, "SIGTERM");
    expect(await launched.exit).toEqual({ code: 0, signal: null });
    // The log starts each run with a header; the control's own tail reads this run's output only.
    expect(await readLogTail(`${dir}/qemu.log`)).toMatch(/^-- maqet: starting QEMU at \S+ \S+fake-qemu\.mjs\n/);
    expect(await pc.readLogTail(`${dir}/qemu.log`, 2048)).toBe("fake-qemu.mjs: terminating on signal 15");
    expect(pc.probe(launched.pid, vmId)).toBe("gone");
  });

  it("reports a death by signal", async () => {
    const { pc, vmId, launched } = await launchFake();
    pc.kill(launched.pid, "SIGKILL");
    expect(await launched.exit).toEqual({ code: null, signal: "SIGKILL" });
    expect(pc.probe(launched.pid, vmId)).toBe("gone");
  });

  it("lets the caller read why QEMU refused to start", async () => {
    process.env.FAKE_QEMU_FAIL_START = "-foo: invalid option";
    try {
      const { pc, dir, launched } = await launchFake();
      expect(await launched.exit).toEqual({ code: 1, signal: null });
      expect(await pc.readLogTail(`${dir}/qemu.log`, 4096)).toBe("fake-qemu.mjs: -foo: invalid option");
    } finally {
      delete process.env.FAKE_QEMU_FAIL_START;
    }
  });

  it("fails with START_FAILED naming a missing binary and the fix", async () => {
    const pc = createProcessControl({ runtimeRoot });
    const dir = await pc.prepareRuntimeDir("missing");
    const spec = { binary: "/nonexistent/qemu-system-x86_64", args: [], runtimeDir: dir, logFile: `${dir}/qemu.log` };
    await expect(pc.launch(spec)).rejects.toMatchObject({
      code: "START_FAILED",
      details: { binary: "/nonexistent/qemu-system-x86_64", errno: "ENOENT" },
      message: expect.stringMatching(/\/nonexistent\/qemu-system-x86_64 does not exist\. Install QEMU/),
    });
  });

  it("fails with START_FAILED for a binary that is not executable", async () => {
    const pc = createProcessControl({ runtimeRoot });
    const dir = await pc.prepareRuntimeDir("noexec");
    const binary = join(work, "not-executable");
    await writeFile(binary, "#!/bin/sh\n", { mode: 0o644 });
    await expect(pc.launch({ binary, args: [], runtimeDir: dir, logFile: `${dir}/qemu.log` })).rejects.toMatchObject({
      code: "START_FAILED",
      details: { errno: "EACCES" },
    });
  });

  it("refuses a relative binary and a symlinked log file", async () => {
    const pc = createProcessControl({ runtimeRoot });
    const dir = await pc.prepareRuntimeDir("refusals");
    const logFile = `${dir}/qemu.log`;
    await expect(pc.launch({ binary: "qemu-system-x86_64", args: [], runtimeDir: dir, logFile })).rejects.toMatchObject(
      { code: "INVALID_ARGUMENT" },
    );
    await symlink(join(work, "elsewhere.log"), logFile);
    await expect(pc.launch({ binary: FAKE_QEMU, args: [], runtimeDir: dir, logFile })).rejects.toMatchObject({
      code: "PATH_REFUSED",
    });
    expect(existsSync(join(work, "elsewhere.log"))).toBe(false);
  });

  it("does not start anything when already aborted", async () => {
    const pc = createProcessControl({ runtimeRoot });
    const dir = await pc.prepareRuntimeDir("aborted");
    const spec = { binary: FAKE_QEMU, args: [], runtimeDir: dir, logFile: `${dir}/qemu.log` };
    await expect(pc.launch(spec, AbortSignal.abort(new Error("stop")))).rejects.toThrow("stop");
    expect(existsSync(`${dir}/qemu.log`)).toBe(false);
  });

  // A whole Node with a TypeScript hook starts in the parent: seconds on a busy machine, so the
  // parent gets 90 s to exit on its own (a parent that hangs fails saying so).
  it("outlives the process that launched it, which exits on its own", { timeout: 120_000 }, async () => {
    // A throwaway Node parent that loads the TypeScript source through a type-stripping hook.
    const vite = pathToFileURL(createRequire(import.meta.url).resolve("vite")).href;
    const hooks = join(work, "ts-hooks.mjs");
    await writeFile(
      hooks,
      `import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
export async function load(url, context, next) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return next(url, context);
  const { transformWithOxc } = await import(${JSON.stringify(vite)});
  const path = fileURLToPath(url);
  const { code } = await transformWithOxc(await readFile(path, "utf8"), path);
  return { format: "module", source: code, shortCircuit: true };
}`,
    );
    const register = join(work, "register.mjs");
    await writeFile(
      register,
      `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const vmId = randomUUID();
    const parent = join(work, "parent.mjs");
    await writeFile(
      parent,
      `import { createProcessControl } from ${JSON.stringify(pathToFileURL(PROCESS_CONTROL_SRC).href)};
const pc = createProcessControl({ runtimeRoot: ${JSON.stringify(runtimeRoot)} });
const dir = await pc.prepareRuntimeDir(${JSON.stringify(vmId)});
const args = ${JSON.stringify(fakeQemuArgs(join(runtimeRoot, vmId), vmId))};
const q = await pc.launch({ binary: ${JSON.stringify(FAKE_QEMU)}, args, runtimeDir: dir, logFile: dir + "/qemu.log" });
console.log(JSON.stringify({ pid: q.pid, parent: process.pid }));
// no process.exit(): the event loop must empty by itself once QEMU is unref'd`,
    );
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--import", register, parent], { timeout: 90_000 }, (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        // A parent still there after 90 s was killed by the timeout: say so, not "Command failed".
        const why = error.killed ? `did not exit on its own within 90 s (killed with ${error.signal})` : error.message;
        reject(new Error(`the launching parent ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
      });
    });
    const { pid, parent: parentPid } = JSON.parse(out) as { pid: number; parent: number };
    spawned.push(pid);

    const pc = createProcessControl({ runtimeRoot });
    expect(pc.probe(pid, vmId)).toBe("alive");
    const [, ppid, , session] = statFields(pid);
    expect(Number(session)).toBe(pid);
    expect(Number(ppid)).not.toBe(parentPid);
    expect(await waitForValue("QEMU's pid file", () => pc.readPidFile(join(runtimeRoot, vmId, "qemu.pid")))).toBe(pid);

    // Not our child: once killed, it is a zombie until its new parent reaps it (PID 1: up to ~2 s).
    pc.kill(pid, "SIGKILL");
    expect(await pc.waitGone(pid, vmId, 5_000)).toBe(true);
    expect(
      await waitForValue(`pid ${pid} to be gone`, () => (existsSync(`/proc/${pid}`) ? undefined : true), {
        timeoutMs: 10_000,
      }),
    ).toBe(true);
  });
});

describe("probe", () => {
  it("tells the VM's own process from a foreign one with a reused pid", async () => {
    const decoy = startSleep();
    const pc = createProcessControl({ runtimeRoot });
    expect(pc.probe(decoy.pid, randomUUID())).toBe("foreign");
    expect(pc.probe(decoy.pid, "sleep")).toBe("alive");
  });

  it("counts a zombie as gone although kill -0 still succeeds", async () => {
    // The background child becomes the child of `sleep 30` (the shell execs into it), which never
    // waits. It exits only once its parent is `sleep`: a child that exited earlier could be reaped
    // by the shell before the exec (it was, at load 9), leaving no zombie to test.
    const child = `while [ "$(cat /proc/$1/comm)" != sleep ]; do sleep 0.01; done`;
    const holder = spawn("sh", ["-c", `sh -c '${child}' child $$ & echo $!; exec sleep 30`], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    children.push(holder);
    const zombie = Number(await new Promise<string>((resolve) => holder.stdout?.once("data", (d) => resolve(`${d}`))));
    await waitForValue("the child to be a zombie", () => (statFields(zombie)[0] === "Z" ? true : undefined));
    expect(() => process.kill(zombie, 0)).not.toThrow();
    expect(createProcessControl({ runtimeRoot }).probe(zombie, "sleep")).toBe("gone");
  });

  it("reads how a zombie ended, as the exit event says it; nothing for a live or absent pid", async () => {
    // Zombies of `sleep 30` (which never waits), made as above: one exits 3, one is SIGKILLed.
    const wait = `while [ "$(cat /proc/$1/comm)" != sleep ]; do sleep 0.01; done`;
    const holder = spawn(
      "sh",
      ["-c", `sh -c '${wait}; exit 3' a $$ & echo $!; sh -c '${wait}; kill -9 $$' b $$ & echo $!; exec sleep 30`],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    children.push(holder);
    let out = "";
    holder.stdout?.on("data", (d) => {
      out += d;
    });
    const [exited, killed] = (await waitForValue("both pids", () =>
      out.trim().split("\n").length === 2 ? out.trim().split("\n").map(Number) : undefined,
    )) as [number, number];
    for (const pid of [exited, killed]) {
      await waitForValue(`pid ${pid} to be a zombie`, () => (statFields(pid)[0] === "Z" ? true : undefined));
    }
    const pc = createProcessControl({ runtimeRoot });
    expect(pc.zombieExit(exited)).toEqual({ code: 3, signal: null });
    expect(pc.zombieExit(killed)).toEqual({ code: null, signal: "SIGKILL" });
    expect(pc.zombieExit(holder.pid!)).toBeUndefined();
    expect(pc.zombieExit(4_194_305)).toBeUndefined();
  });

  it("counts a pid that does not exist as gone", () => {
    expect(createProcessControl({ runtimeRoot }).probe(4_194_305, "x")).toBe("gone"); // above pid_max
  });

  it("rejects pids that would address process groups, and an empty marker", () => {
    const pc = createProcessControl({ runtimeRoot });
    for (const pid of [0, -1, 1, 2.5, Number.NaN]) {
      expect(() => pc.probe(pid, "x")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
      expect(() => pc.kill(pid, "SIGKILL")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    }
    expect(() => pc.probe(process.pid, "")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});

describe("kill and waitGone", () => {
  it("ignores a process that is already gone", () => {
    expect(() => createProcessControl({ runtimeRoot }).kill(4_194_305, "SIGTERM")).not.toThrow();
  });

  it("polls on the injected clock until the process is gone", async () => {
    const decoy = startSleep();
    const clock = new FakeClock();
    const pc = createProcessControl({ runtimeRoot, clock });
    let result: boolean | undefined;
    const waiting = pc.waitGone(decoy.pid, "sleep", 1_000).then((r) => {
      result = r;
    });
    await clock.untilSleeping();
    await clock.advance(900);
    expect(result).toBeUndefined();
    decoy.kill("SIGKILL");
    await new Promise((r) => decoy.once("exit", r));
    await clock.advance(20);
    await waiting;
    expect(result).toBe(true);
    expect(clock.now()).toBeLessThanOrEqual(920);
  });

  it("looks again as soon as our child's exit settles, without sleeping out the nap", async () => {
    const decoy = startSleep();
    const exited = new Promise((r) => decoy.once("exit", r));
    const clock = new FakeClock();
    const pc = createProcessControl({ runtimeRoot, clock });
    let result: boolean | undefined;
    const waiting = pc.waitGone(decoy.pid, "sleep", 1_000, undefined, exited).then((r) => {
      result = r;
    });
    await clock.untilSleeping();
    decoy.kill("SIGKILL");
    await waiting; // the clock never moves: only the exit can have woken it
    expect(result).toBe(true);
    expect(clock.now()).toBe(0);
    expect(clock.pendingSleeps).toBe(0);
  });

  it("with an exit promise, still returns false when the timeout passes first", async () => {
    const decoy = startSleep();
    const clock = new FakeClock();
    const exited = new Promise((r) => decoy.once("exit", r));
    const waiting = createProcessControl({ runtimeRoot, clock }).waitGone(decoy.pid, "sleep", 100, undefined, exited);
    await clock.untilSleeping();
    await clock.advance(100);
    expect(await waiting).toBe(false);
  });

  it("with an exit promise, a caller's abort still ends the wait with its reason", async () => {
    const decoy = startSleep();
    const clock = new FakeClock();
    const abort = new AbortController();
    const exited = new Promise((r) => decoy.once("exit", r));
    const waiting = createProcessControl({ runtimeRoot, clock }).waitGone(
      decoy.pid,
      "sleep",
      1_000,
      abort.signal,
      exited,
    );
    await clock.untilSleeping();
    abort.abort(new Error("caller gave up"));
    await expect(waiting).rejects.toThrow("caller gave up");
  });

  it("returns false when the timeout passes first", async () => {
    const decoy = startSleep();
    const clock = new FakeClock();
    const waiting = createProcessControl({ runtimeRoot, clock }).waitGone(decoy.pid, "sleep", 100);
    await clock.untilSleeping();
    await clock.advance(100);
    expect(await waiting).toBe(false);
    expect(clock.now()).toBe(100);
  });

  it("returns at once, without sleeping, for a process that is not alive", async () => {
    const clock = new FakeClock();
    expect(await createProcessControl({ runtimeRoot, clock }).waitGone(4_194_305, "x", 1_000)).toBe(true);
    expect(clock.pendingSleeps).toBe(0);
  });

  it("stops waiting when aborted", async () => {
    const decoy = startSleep();
    const clock = new FakeClock();
    const ac = new AbortController();
    const waiting = createProcessControl({ runtimeRoot, clock }).waitGone(decoy.pid, "sleep", 60_000, ac.signal);
    await clock.untilSleeping();
    ac.abort(new Error("actor stopped"));
    await expect(waiting).rejects.toThrow("actor stopped");
    expect(clock.pendingSleeps).toBe(0);
  });
});

describe("prepareRuntimeDir", () => {
  it("creates the root and the VM directory 0700 whatever the umask, and tightens existing ones", async () => {
    const root = join(work, "fresh", "maqet");
    const pc = createProcessControl({ runtimeRoot: root });
    const oldMask = process.umask(0o000);
    try {
      expect(await pc.prepareRuntimeDir("web")).toBe(join(root, "web"));
    } finally {
      process.umask(oldMask);
    }
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, "web"))).mode & 0o777).toBe(0o700);
    await chmod(join(root, "web"), 0o755);
    await pc.prepareRuntimeDir("web");
    expect((await stat(join(root, "web"))).mode & 0o777).toBe(0o700);
  });

  it("refuses ids that are not one safe path component", async () => {
    const pc = createProcessControl({ runtimeRoot });
    for (const id of ["", "..", "../x", "a/b", "-rf", ".hidden", "a..b", "a\0b", "x".repeat(129)]) {
      await expect(pc.prepareRuntimeDir(id)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
  });

  it("refuses a symlinked VM directory or root", async () => {
    const root = join(work, "links");
    const pc = createProcessControl({ runtimeRoot: root });
    await pc.prepareRuntimeDir("ok");
    await mkdir(join(work, "target"), { recursive: true });
    await symlink(join(work, "target"), join(root, "web"));
    await expect(pc.prepareRuntimeDir("web")).rejects.toMatchObject({ code: "PATH_REFUSED" });
    await symlink(root, join(work, "links-alias"));
    const viaAlias = createProcessControl({ runtimeRoot: join(work, "links-alias") });
    await expect(viaAlias.prepareRuntimeDir("ok")).rejects.toMatchObject({ code: "PATH_REFUSED" });
  });

  // Only root can make a directory belong to another user; as anyone else this case cannot be set up.
  if (process.getuid?.() !== 0)
    console.log("[process-control] skipped 'a /tmp squatter': needs root to chown a directory");
  it.skipIf(process.getuid?.() !== 0)(
    "refuses a root created by another user (a /tmp squatter; needs root)",
    async () => {
      const root = join(work, "squatted");
      await mkdir(root, { mode: 0o777 });
      await chown(root, 65534, 65534);
      await expect(createProcessControl({ runtimeRoot: root }).prepareRuntimeDir("web")).rejects.toMatchObject({
        code: "PATH_REFUSED",
        message: expect.stringContaining("owned by uid 65534"),
      });
    },
  );

  it("removes a previous run's socket and pidfile, and keeps logs", async () => {
    const pc = createProcessControl({ runtimeRoot });
    const dir = await pc.prepareRuntimeDir("stale");
    // A socket file whose server is gone: bind, move the file away from libuv's unlink-on-close.
    const server = createServer();
    await new Promise<void>((r) => server.listen(`${dir}/bind.sock`, r));
    await rename(`${dir}/bind.sock`, `${dir}/qmp.sock`);
    await new Promise((r) => server.close(r));
    expect((await lstat(`${dir}/qmp.sock`)).isSocket()).toBe(true);
    await writeFile(`${dir}/qemu.pid`, "4194305\n");
    await writeFile(`${dir}/qemu.log`, "old run\n");
    await pc.prepareRuntimeDir("stale");
    expect((await readdir(dir)).sort()).toEqual(["qemu.log"]);
  });

  it("refuses to clear the directory of a QEMU that still runs", async () => {
    const { pc, dir, vmId, launched } = await launchFake("busy");
    await waitForValue("QEMU's pid file", () => pc.readPidFile(`${dir}/qemu.pid`));
    await expect(pc.prepareRuntimeDir(vmId)).rejects.toMatchObject({
      code: "PROCESS_ERROR",
      details: { pid: launched.pid },
    });
    pc.kill(launched.pid, "SIGKILL");
    await launched.exit;
    await pc.prepareRuntimeDir(vmId);
    expect(existsSync(`${dir}/qemu.pid`)).toBe(false);
    expect(existsSync(`${dir}/qmp.sock`)).toBe(false);
  });
});

describe("pidfile, socket and log helpers", () => {
  it("reads a pidfile as QEMU writes it, and nothing else", async () => {
    const pc = createProcessControl({ runtimeRoot });
    const file = join(work, "p.pid");
    expect(await pc.readPidFile(file)).toBeUndefined();
    for (const [text, pid] of [
      ["1234\n", 1234],
      ["", undefined],
      ["12ab\n", undefined],
      ["-5\n", undefined],
      ["0\n", undefined],
    ] as const) {
      await writeFile(file, text);
      expect(await pc.readPidFile(file)).toBe(pid);
    }
  });

  it("tightens QEMU's socket to 0600 and touches nothing but a socket", async () => {
    const { pc, dir, launched } = await launchFake();
    const socket = await waitForValue("the socket", async () =>
      (await lstat(`${dir}/qmp.sock`).catch(() => undefined)) ? true : undefined,
    );
    expect(socket).toBe(true);
    await pc.secureSocket(`${dir}/qmp.sock`);
    expect((await lstat(`${dir}/qmp.sock`)).mode & 0o777).toBe(0o600);
    await expect(pc.secureSocket(`${dir}/qemu.log`)).rejects.toMatchObject({ code: "PATH_REFUSED" });
    await expect(pc.secureSocket(`${dir}/none.sock`)).rejects.toMatchObject({ code: "PROCESS_ERROR" });
    pc.kill(launched.pid, "SIGKILL");
  });

  it("reads the tail of a log from a line boundary", async () => {
    const file = join(work, "tail.log");
    await writeFile(file, `${"x".repeat(100)}\nfirst line\nqemu-system-x86_64: -foo: invalid option\n`);
    expect(await readLogTail(file, 50)).toBe("qemu-system-x86_64: -foo: invalid option");
    expect(await readLogTail(file, 10_000)).toContain("first line");
    expect(await readLogTail(join(work, "absent.log"))).toBeUndefined();
  });
});
