/**
 * ProcessControl with the real qemu-system-x86_64 (`-machine none`: no guest, just the process,
 * its pidfile and its QMP socket). Every QEMU started here is SIGKILLed in afterEach.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { lstat, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { LaunchedProcess, ProcessControl } from "../../src/actors/ports.ts";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import { createProcessControl } from "../../src/adapters/process-control.ts";
import { waitForValue } from "../support/poll.ts";
import { qmpGreeting } from "../support/qmp-greeting.ts";

// Found on PATH like every other qemu test; missing, the file fails with BINARY_NOT_FOUND and
// how to install it (a skip would hide that the tier did not run).
const QEMU = await createBinaryLocator({ env: process.env }).locate("qemu-system-x86_64");

let work: string;
let pc: ProcessControl;
const launched: LaunchedProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "maqet-pc-qemu-"));
  pc = createProcessControl({ runtimeRoot: join(work, "run") });
});

afterEach(async () => {
  for (const qemu of launched.splice(0)) {
    try {
      process.kill(qemu.pid, "SIGKILL");
    } catch {}
    await qemu.exit;
  }
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function startQemu(extra: string[] = []) {
  const vmId = randomUUID();
  const dir = await pc.prepareRuntimeDir(vmId);
  const paths = { pidFile: `${dir}/qemu.pid`, socket: `${dir}/qmp.sock`, log: `${dir}/qemu.log` };
  const args = ["-machine", "none", "-nodefaults", "-display", "none", "-S", "-no-shutdown"];
  args.push("-pidfile", paths.pidFile, "-qmp", `unix:${paths.socket},server=on,wait=off`);
  args.push("-name", "maqet-test", "-uuid", vmId, ...extra);
  const qemu = await pc.launch({ binary: QEMU, args, runtimeDir: dir, logFile: paths.log });
  launched.push(qemu);
  return { vmId, dir, qemu, ...paths };
}

describe("process control with real QEMU", () => {
  it("launches QEMU detached, recognises it by its marker, and sees it die of SIGKILL", async () => {
    const { vmId, qemu, pidFile, socket } = await startQemu();
    expect(await waitForValue("QEMU's pid file", () => pc.readPidFile(pidFile))).toBe(qemu.pid);
    const stat = readFileSync(`/proc/${qemu.pid}/stat`, "latin1");
    const [, , , session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    expect(Number(session)).toBe(qemu.pid);
    expect(pc.probe(qemu.pid, vmId)).toBe("alive");
    expect(pc.probe(qemu.pid, randomUUID())).toBe("foreign");

    await waitForValue("the QMP socket", async () => ((await lstat(socket).catch(() => undefined)) ? true : undefined));
    await pc.secureSocket(socket);
    expect((await lstat(socket)).mode & 0o777).toBe(0o600);

    pc.kill(qemu.pid, "SIGKILL");
    expect(await qemu.exit).toEqual({ code: null, signal: "SIGKILL" });
    expect(pc.probe(qemu.pid, vmId)).toBe("gone");
    expect(await pc.waitGone(qemu.pid, vmId, 1_000)).toBe(true);
  });

  it("clears what a killed QEMU left behind before the next start", async () => {
    const { vmId, dir, qemu, pidFile, socket } = await startQemu();
    await waitForValue("QEMU's pid file", () => pc.readPidFile(pidFile));
    await waitForValue("the QMP socket", async () => ((await lstat(socket).catch(() => undefined)) ? true : undefined));
    await expect(pc.prepareRuntimeDir(vmId)).rejects.toMatchObject({ code: "PROCESS_ERROR" });

    pc.kill(qemu.pid, "SIGKILL");
    await qemu.exit;
    expect(existsSync(pidFile) && existsSync(socket)).toBe(true); // a crash cleans nothing up
    expect(await pc.prepareRuntimeDir(vmId)).toBe(dir);
    expect(existsSync(pidFile) || existsSync(socket)).toBe(false);
    expect(existsSync(`${dir}/qemu.log`)).toBe(true);
  });

  it("observes the exit after SIGTERM: clean (code 0, message, pidfile removed) or by the signal", async () => {
    const { vmId, qemu, pidFile, socket, log } = await startQemu();
    await waitForValue("QEMU's pid file", () => pc.readPidFile(pidFile));
    await qmpGreeting(socket);
    pc.kill(qemu.pid, "SIGTERM");
    const exit = await qemu.exit;
    expect(pc.probe(qemu.pid, vmId)).toBe("gone");
    // QEMU 7.2 usually handles SIGTERM once it serves QMP, but on a loaded machine it was seen
    // (CI, 1 run in ~10) to die by the signal even after the greeting: a thread that had not
    // masked it yet takes the default action. maqet's stop path only needs the exit observed.
    if (exit.signal === null) {
      expect(exit).toEqual({ code: 0, signal: null });
      expect(existsSync(pidFile)).toBe(false); // QEMU removes its own pidfile on a clean exit
      expect(await pc.readLogTail(log, 4096)).toMatch(/terminating on signal 15/);
    } else {
      console.log("[process-control] QEMU died by SIGTERM before its handler ran (seen under load)");
      expect(exit).toEqual({ code: null, signal: "SIGTERM" });
    }
  });

  it("lets the caller explain a QEMU that refuses its options", async () => {
    const { qemu, log } = await startQemu(["-no-such-option"]);
    expect(await qemu.exit).toEqual({ code: 1, signal: null });
    expect(await pc.readLogTail(log, 4096)).toBe("qemu-system-x86_64: -no-such-option: invalid option");
  });
});
