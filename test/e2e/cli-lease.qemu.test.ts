/**
 * One driver per VM across processes, on a PostgreSQL server (the embedded store admits one
 * process at a time anyway): two CLI processes on the same VM at once — one drives, the other
 * exits 1 naming it; a driver killed with SIGKILL is taken over by the next process. And a pid
 * reused by an unrelated process is never taken for the VM's QEMU.
 */
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openEventStore } from "../../src/adapters/open-event-store.ts";
import { vmEvent, vmStreamId } from "../../src/events/vm-events.ts";
import { createMaqet } from "../../src/mod.ts";
import {
  type BackgroundCli,
  type CliSandbox,
  createCliSandbox,
  processAlive,
  startMaqet,
} from "../support/cli-runner.ts";
import { waitForValue, waitUntil } from "../support/poll.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

let box: CliSandbox;
let db: { url: string; drop(): Promise<void> };

beforeAll(async () => {
  box = await createCliSandbox();
  db = await createTestDatabase(inject("databaseUrl"));
  // A QEMU held back until the test lets it go (the file held-qemu.go; at most 120 s), so a start
  // is still running when the second process comes, however slow the machine. It writes its pid
  // first: the test knows the start holds the lease and is spawning.
  await writeFile(
    join(box.home, "held-qemu"),
    `#!/bin/sh\necho $$ > ${wrapperPidFile()}\ni=0\n` +
      `while [ ! -e ${goFile()} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n` +
      `exec /usr/bin/qemu-system-x86_64 "$@"\n`,
  );
  await chmod(join(box.home, "held-qemu"), 0o755);
  await writeFile(
    join(box.home, "busy.yaml"),
    `name: busy\nbinary: ${join(box.home, "held-qemu")}\naccel: tcg\nmemory: 32M\n`,
  );
});

afterAll(async () => {
  await release(); // no wrapper left waiting
  await box.run(["stop", "busy", "--force", "--db", db.url]);
  await db.drop();
  await box.cleanup();
});

const goFile = () => join(box.home, "held-qemu.go");
const wrapperPidFile = () => join(box.home, "held-qemu.pid");

/** Holds the next QEMU start back: the wrapper waits until {@link release}. */
async function hold(): Promise<void> {
  await rm(goFile(), { force: true });
  await rm(wrapperPidFile(), { force: true });
}
const release = () => writeFile(goFile(), "");

/** Waits until the held wrapper runs (the start has the lease and is spawning QEMU); its pid. */
async function wrapperStarted(start: BackgroundCli): Promise<number> {
  return waitForValue(
    "the held QEMU wrapper to start",
    async () => {
      if (start.child.exitCode !== null) throw new Error(`the start exited ${start.child.exitCode}: ${start.stderr()}`);
      const text = await readFile(wrapperPidFile(), "utf8").catch(() => "");
      return text.endsWith("\n") ? Number(text) : undefined;
    },
    { timeoutMs: 120_000, everyMs: 50 },
  );
}

const background = (args: string[]) => startMaqet(args, { cwd: box.home, env: box.env });

describe("leases across CLI processes (PostgreSQL server)", { timeout: 180_000 }, () => {
  it("start and stop at once: one drives, the other exits 1 naming the driver; the stream is not interleaved", async () => {
    expect((await box.run(["add", "busy.yaml", "--db", db.url])).code).toBe(0);
    await hold();
    const start = background(["start", "busy", "--timeout", "300", "--db", db.url]);
    await wrapperStarted(start); // the start holds the lease; QEMU waits for the go
    const stop = await box.run(["stop", "busy", "--db", db.url]);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(
      new RegExp(`VM 'busy' is being driven by pid ${start.child.pid} on host \\S+ since \\d{4}-`),
    );
    await release();
    expect((await start.exited).code).toBe(0);
    const types = (await box.run(["history", "busy", "--json", "--db", db.url])).json<{
      events: Array<{ type: string }>;
    }>().events;
    expect(types.map((t) => t.type)).toEqual(["vm.defined", "vm.start-requested", "vm.started"]);
    expect((await box.run(["stop", "busy", "--force", "--db", db.url])).code).toBe(0);
  });

  it("a driver killed with SIGKILL mid-start: the next process takes the lease over and starts the VM", async () => {
    await hold();
    const start = background(["start", "busy", "--timeout", "300", "--db", db.url]);
    const wrapper = await wrapperStarted(start); // mid-start: requested, QEMU not up
    start.child.kill("SIGKILL");
    await start.exited;
    // The held wrapper would exec a QEMU of a dead start: end it, and let the next start through.
    try {
      process.kill(wrapper, "SIGKILL");
    } catch {} // gone already
    await waitUntil(
      "the held wrapper to be gone",
      () => processAlive(wrapper),
      (alive) => !alive,
    );
    await release();
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
