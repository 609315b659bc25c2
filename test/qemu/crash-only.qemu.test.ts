/**
 * Crash-only: the process driving VMs is killed with SIGKILL while a VM runs, mid-start and
 * mid-stop; a fresh process shows each VM's true state, the stream explains every transition,
 * and no QEMU is left that maqet does not know about. Real QEMU, embedded store.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProcessControl } from "../../src/adapters/process-control.ts";
import { createMaqet, type Maqet } from "../../src/mod.ts";
import { projectRoot } from "../support/build-dist.ts";
import { processAlive, waitFor } from "../support/cli-runner.ts";
import { waitUntil } from "../support/poll.ts";

let dir: string;
let dataDir: string;
let runtimeDir: string;
const children: ChildProcess[] = [];

function driver(...args: string[]): { child: ChildProcess; said: (text: string) => Promise<string> } {
  const child = spawn(process.execPath, [join(projectRoot, "test/fixtures/driver.mjs"), dataDir, runtimeDir, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d) => {
    out += String(d);
  });
  const said = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = out.split("\n").find((l) => l.startsWith(text));
        if (line !== undefined) return resolve(line);
        if (child.exitCode !== null)
          return reject(new Error(`driver exited (${child.exitCode}) before saying '${text}'`));
        setTimeout(check, 20);
      };
      check();
    });
  return { child, said };
}

async function killHard(child: ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once("exit", resolve),
  );
}

/** QEMU processes carrying a VM id: after recovery, only those maqet says are running. */
function qemuOf(vmId: string): number[] {
  return createProcessControl({ runtimeRoot: runtimeDir }).findProcesses(vmId);
}

async function withMaqet<T>(run: (m: Maqet) => Promise<T>): Promise<T> {
  const maqet = createMaqet({ dataDir, runtimeDir, env: { PATH: process.env.PATH }, source: "test" });
  try {
    return await run(maqet);
  } finally {
    await maqet.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "maqet-crash-"));
  dataDir = join(dir, "data");
  runtimeDir = join(dir, "run");
  // A QEMU held back until told to go (the file slow-qemu.go, at most 30 s): a kill during start
  // lands while it is being spawned however slow the machine. It writes its pid first, so the
  // test knows the spawn has begun.
  await writeFile(
    join(dir, "slow-qemu"),
    `#!/bin/sh\necho $$ > ${join(dir, "slow-qemu.pid")}\ni=0\n` +
      `while [ ! -e ${join(dir, "slow-qemu.go")} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n` +
      `exec /usr/bin/qemu-system-x86_64 "$@"\n`,
  );
  await chmod(join(dir, "slow-qemu"), 0o755);
  for (const name of ["held", "slow", "stubborn"]) {
    const binary = name === "slow" ? `binary: ${join(dir, "slow-qemu")}\n` : "";
    await writeFile(join(dir, `${name}.yaml`), `name: ${name}\n${binary}accel: tcg\nmemory: 32M\n`);
  }
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await withMaqet(async (m) => {
    for (const vm of await m.list()) await m.stop(vm.name, { force: true }).catch(() => undefined);
  }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("crash-only recovery (real QEMU)", { timeout: 120_000 }, () => {
  it("(a) killed while a VM runs: the next process reattaches it, as a fact naming the dead driver", async () => {
    const d = driver("add-start-hold", join(dir, "held.yaml"));
    const pid = Number((await d.said("started")).split(" ")[1]);
    await killHard(d.child);
    expect(await processAlive(pid)).toBe(true); // QEMU outlives its driver
    await withMaqet(async (m) => {
      expect(await m.qmp("held", "query-status")).toMatchObject({ status: "running" });
      const status = await m.status("held");
      expect(status).toMatchObject({ state: "running", pid });
      const last = (await m.history("held")).filter((e) => e.type !== "qmp.command-executed").at(-1)!;
      expect(last).toMatchObject({
        type: "vm.reattached",
        data: { pid, status: "running", previousHolder: { pid: d.child.pid } },
      });
      expect(qemuOf(status.id)).toEqual([pid]);
    });
  });

  it("(b) killed mid-start: the next process rolls the start back; no orphan QEMU", async () => {
    await withMaqet((m) => m.add(join(dir, "slow.yaml")));
    const d = driver("start", "slow");
    await d.said("event vm.start-requested");
    // The wrapper is running (QEMU is being spawned), and held: not up yet.
    const wrapper = await waitUntil(
      "the slow QEMU wrapper to be spawned",
      () => readFile(join(dir, "slow-qemu.pid"), "utf8").then(Number, () => 0),
      (pid) => pid > 0,
      { timeoutMs: 20_000 },
    );
    await killHard(d.child);
    await withMaqet(async (m) => {
      const status = await m.status("slow");
      const history = (await m.history("slow")).map((e) => e.type);
      expect(status.state).toBe("stopped");
      expect(status.detail).toBe("failed");
      expect(history.slice(-2)).toEqual(["vm.start-requested", "vm.start-failed"]);
      expect(qemuOf(status.id)).toEqual([]);
      // Nothing appears later either: the held wrapper dies with its start (had it exec'd into
      // QEMU, its pid would live on as that QEMU and this wait would fail saying so).
      await waitFor(async () => !(await processAlive(wrapper)), 10_000, `the wrapper (pid ${wrapper}) to be gone`);
      expect(qemuOf(status.id)).toEqual([]);
      // And it starts normally now.
      await writeFile(join(dir, "slow-qemu.go"), "");
      expect((await m.start("slow")).state).toBe("running");
      await m.stop("slow", { force: true });
    });
  });

  it("(c) killed mid-stop: the next process shows the VM running again, explained by vm.reattached", async () => {
    await withMaqet(async (m) => {
      await m.add(join(dir, "stubborn.yaml"));
      await m.start("stubborn");
    });
    // The firmware-only guest ignores ACPI: the stop sits in its 20 s powerdown wait.
    const d = driver("stop", "stubborn", "20000");
    await d.said("event vm.stop-step"); // the powerdown was sent; the 20 s wait has begun
    await killHard(d.child);
    await withMaqet(async (m) => {
      const status = await m.status("stubborn");
      expect(status.state).toBe("running");
      expect(await processAlive(status.pid!)).toBe(true);
      const types = (await m.history("stubborn")).map((e) => e.type);
      expect(types.slice(-3)).toEqual(["vm.stop-requested", "vm.stop-step", "vm.reattached"]);
      expect(qemuOf(status.id)).toEqual([status.pid]);
      // The stop can be finished now.
      const stopped = await m.stop("stubborn", { timeoutMs: 500 });
      expect(stopped.state).toBe("stopped");
      expect(qemuOf(status.id)).toEqual([]);
    });
  });
});
