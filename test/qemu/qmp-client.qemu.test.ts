/**
 * QmpClient against real QEMU (`-machine none`: no guest, just the monitor). Every QEMU started
 * here is SIGKILLed in afterEach if it is still running.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom } from "rxjs";
import { filter, take, toArray } from "rxjs/operators";
import { afterEach, describe, expect, it } from "vitest";
import type { QmpEvent, QmpSession } from "../../src/actors/ports.ts";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import { createQmpConnector, QmpCommandError } from "../../src/adapters/qmp-client.ts";

// Found on PATH like every other qemu test; missing, the file fails with BINARY_NOT_FOUND and
// how to install it (a skip would hide that the tier did not run).
const QEMU = await createBinaryLocator({ env: process.env }).locate("qemu-system-x86_64");

interface Qemu {
  child: ChildProcess;
  socketPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Qemu[] = [];
const sessions: QmpSession[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const session of sessions.splice(0)) await session.close();
  for (const qemu of running.splice(0)) {
    if (qemu.child.exitCode === null && qemu.child.signalCode === null) qemu.child.kill("SIGKILL");
    await qemu.exited;
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function startQemu(): Qemu {
  const dir = mkdtempSync(join(tmpdir(), "maqet-qmp-qemu-"));
  dirs.push(dir);
  const socketPath = join(dir, "qmp.sock");
  const args = ["-machine", "none", "-nodefaults", "-display", "none"];
  const child = spawn(QEMU, [...args, "-qmp", `unix:${socketPath},server=on,wait=off`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const qemu = { child, socketPath, exited };
  running.push(qemu);
  return qemu;
}

async function startSession(): Promise<{ qemu: Qemu; qmp: QmpSession }> {
  const qemu = startQemu();
  const qmp = await createQmpConnector().connect(qemu.socketPath, { timeoutMs: 10_000 });
  sessions.push(qmp);
  return { qemu, qmp };
}

describe("QmpClient against QEMU", () => {
  it("reads a 7.x greeting, negotiates and answers query-status and query-version", async () => {
    const { qmp } = await startSession();
    expect(qmp.greeting.version.qemu.major).toBe(7);
    expect(qmp.greeting.capabilities).toContain("oob");
    const status = await qmp.execute<{ status: string; running: boolean }>("query-status");
    expect(status).toMatchObject({ status: "running", running: true });
    const version = await qmp.execute("query-version");
    expect(version).toEqual(qmp.greeting.version);
  });

  it("reports an unknown command as QmpCommandError CommandNotFound", async () => {
    const { qmp } = await startSession();
    const error = await qmp.execute("no-such-command").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QmpCommandError);
    expect(error).toBeMaqetError("QMP_ERROR");
    expect((error as QmpCommandError).errorClass).toBe("CommandNotFound");
    // The session survives a refused command.
    await expect(qmp.execute("query-status")).resolves.toBeDefined();
  });

  it("delivers STOP on stop and RESUME on cont", async () => {
    const { qmp } = await startSession();
    const two = firstValueFrom(
      qmp.events$.pipe(
        filter((e: QmpEvent) => e.event === "STOP" || e.event === "RESUME"),
        take(2),
        toArray(),
      ),
    );
    await qmp.execute("stop");
    expect(await qmp.execute("query-status")).toMatchObject({ status: "paused", running: false });
    await qmp.execute("cont");
    const events = await two;
    expect(events.map((e) => e.event)).toEqual(["STOP", "RESUME"]);
    expect(events[0]?.timestamp.seconds).toBeGreaterThan(1_600_000_000);
  });

  it("quit resolves, events$ completes and QEMU exits 0", async () => {
    const { qemu, qmp } = await startSession();
    const all = firstValueFrom(qmp.events$.pipe(toArray()));
    await expect(qmp.execute("quit")).resolves.toEqual({});
    expect(await qemu.exited).toEqual({ code: 0, signal: null });
    expect((await all).map((e) => e.event)).toContain("SHUTDOWN");
    expect(await qmp.closed).toEqual({});
    expect(qmp.isClosed).toBe(true);
  });

  it("SIGKILL rejects a pending call with QMP_DISCONNECTED and completes events$", async () => {
    const { qemu, qmp } = await startSession();
    const all = firstValueFrom(qmp.events$.pipe(toArray()));
    // Freeze QEMU so the call is still pending when it dies.
    qemu.child.kill("SIGSTOP");
    const pending = qmp.execute("query-status").catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 20));
    qemu.child.kill("SIGKILL");
    const error = await pending;
    expect(error).toBeMaqetError("QMP_DISCONNECTED");
    expect(await all).toEqual([]);
    const info = await qmp.closed;
    expect(info.error).toBeMaqetError("QMP_DISCONNECTED");
    expect(await qemu.exited).toMatchObject({ signal: "SIGKILL" });
  });
});
