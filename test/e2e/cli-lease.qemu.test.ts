/**
 * One driver per VM across processes, on a PostgreSQL server (the embedded store admits one
 * process at a time anyway): two CLI processes on the same VM at once — one drives, the other
 * exits 1 naming it; a driver killed with SIGKILL is taken over by the next process. And a pid
 * reused by an unrelated process is never taken for the VM's QEMU.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openEventStore } from "../../src/adapters/open-event-store.ts";
import { vmEvent, vmStreamId } from "../../src/events/vm-events.ts";
import { createMaqet } from "../../src/mod.ts";
import { cliBin, projectRoot } from "../support/build-dist.ts";
import { type CliSandbox, createCliSandbox, processAlive } from "../support/cli-runner.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

let box: CliSandbox;
let db: { url: string; drop(): Promise<void> };

beforeAll(async () => {
  box = await createCliSandbox();
  db = await createTestDatabase(inject("databaseUrl"));
  // QEMU that takes 6 s to appear, so a start is still running when the second process comes.
  await writeFile(join(box.home, "slow-qemu"), `#!/bin/sh\nsleep 6\nexec /usr/bin/qemu-system-x86_64 "$@"\n`);
  await chmod(join(box.home, "slow-qemu"), 0o755);
  await writeFile(
    join(box.home, "busy.yaml"),
    `name: busy\nbinary: ${join(box.home, "slow-qemu")}\naccel: tcg\nmemory: 32M\n`,
  );
});

afterAll(async () => {
  await box.run(["stop", "busy", "--force", "--db", db.url]);
  await db.drop();
  await box.cleanup();
});

/** Waits until the VM's last recorded fact is `type` (the server store can be read meanwhile). */
async function untilLastFact(type: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const r = await box.run(["history", "busy", "--json", "--db", db.url]);
    if (r.code === 0 && r.json<{ events: Array<{ type: string }> }>().events.at(-1)?.type === type) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`busy never recorded ${type}`);
}

function cliInBackground(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [cliBin, ...args], {
    cwd: box.home,
    env: box.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += String(d);
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("exit", (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

describe("leases across CLI processes (PostgreSQL server)", { timeout: 180_000 }, () => {
  it("start and stop at once: one drives, the other exits 1 naming the driver; the stream is not interleaved", async () => {
    expect((await box.run(["add", "busy.yaml", "--db", db.url])).code).toBe(0);
    const start = cliInBackground(["start", "busy", "--db", db.url]);
    await untilLastFact("vm.start-requested"); // the start holds the lease
    // Held mid-start (SIGSTOP: alive, lease kept), so the stop meets a driver however fast the
    // start would have finished on its own; resumed once the stop has answered.
    start.child.kill("SIGSTOP");
    let stop: Awaited<ReturnType<CliSandbox["run"]>>;
    try {
      stop = await box.run(["stop", "busy", "--db", db.url]);
    } finally {
      start.child.kill("SIGCONT");
    }
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(
      new RegExp(`VM 'busy' is being driven by pid ${start.child.pid} on host \\S+ since \\d{4}-`),
    );
    expect((await start.done).code).toBe(0);
    const types = (await box.run(["history", "busy", "--json", "--db", db.url])).json<{
      events: Array<{ type: string }>;
    }>().events;
    expect(types.map((t) => t.type)).toEqual(["vm.defined", "vm.start-requested", "vm.started"]);
    expect((await box.run(["stop", "busy", "--force", "--db", db.url])).code).toBe(0);
  });

  it("a driver killed with SIGKILL mid-start: the next process takes the lease over and starts the VM", async () => {
    const start = cliInBackground(["start", "busy", "--db", db.url]);
    await untilLastFact("vm.start-requested");
    start.child.kill("SIGKILL");
    await start.done;
    const again = await box.run(["start", "busy", "--db", db.url]);
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    const history = (await box.run(["history", "busy", "--json", "--db", db.url])).json<{
      events: Array<{ type: string; data: { reason?: string } }>;
    }>().events;
    expect(history.slice(-4).map((e) => e.type)).toEqual([
      "vm.start-requested",
      "vm.start-failed",
      "vm.start-requested",
      "vm.started",
    ]);
    expect(history.at(-3)!.data.reason).toBe("interrupted");
    expect((await box.run(["stop", "busy", "--force", "--db", db.url])).code).toBe(0);
  });
});

describe("a pid reused by an unrelated process", { timeout: 60_000 }, () => {
  it("is never mistaken for the VM's QEMU: a decoy in the pidfile is left alone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "maqet-decoy-"));
    const decoy = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const dataDir = join(dir, "data");
      const runtimeDir = join(dir, "run");
      const maqet = createMaqet({ dataDir, runtimeDir, env: { PATH: process.env.PATH } });
      const vm = await maqet.add({ name: "decoyed", accel: "tcg", memory: "32M" });
      await maqet.close();
      // A start that died after writing its plan, and a pidfile naming some other process.
      const vmRuntime = join(runtimeDir, vm.id);
      await mkdir(vmRuntime, { recursive: true, mode: 0o700 });
      await writeFile(join(vmRuntime, "qemu.pid"), `${decoy.pid}\n`);
      const opened = await openEventStore({ dataDir: join(dataDir, "pglite") });
      await opened.store.append(
        vmStreamId(vm.id),
        [vmEvent("vm.start-requested", { timeoutMs: 30_000, runtimeDir: vmRuntime })],
        { expectedVersion: 0 },
      );
      await opened.close();
      const again = createMaqet({ dataDir, runtimeDir, env: { PATH: process.env.PATH } });
      try {
        const status = await again.status("decoyed");
        expect(status.state).toBe("stopped");
        expect((await again.history("decoyed")).at(-1)).toMatchObject({
          type: "vm.start-failed",
          data: { reason: "interrupted" },
        });
        expect(await processAlive(decoy.pid!)).toBe(true);
      } finally {
        await again.close();
      }
    } finally {
      decoy.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });
});
