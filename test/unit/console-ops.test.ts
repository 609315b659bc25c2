/**
 * `console` through the facade and the registry, with fake QEMU and the in-memory store: where the
 * log is, reading it, following it until the VM's process is gone, and the refusals. The serial
 * log is a real file in a temp dir (the fake runtime dirs are made real for this).
 */
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom, Subject, take, toArray } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStreamedResult, type StreamedResult, streamedResult } from "../../src/api/commands/streamed-result.ts";
import { findCommand } from "../../src/api/commands.ts";
import { createMaqet, type Maqet } from "../../src/api/maqet.ts";
import { pipeStream } from "../../src/cli/pipe-stream.ts";
import { createFakeWorld, type FakeWorld } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

describe("console (fakes)", () => {
  let dir: string;
  let world: FakeWorld;
  let maqet: Maqet;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-console-"));
    world = createFakeWorld();
    world.ports.processes.prepareRuntimeDir = async (vmId) => {
      const runtimeDir = join(dir, vmId);
      await mkdir(runtimeDir, { recursive: true });
      return runtimeDir;
    };
    maqet = createMaqet({ store: new MemoryEventStore(), ports: world.ports });
  });
  afterEach(async () => {
    await maqet.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a VM that never ran (nothing to show yet), exit 1", async () => {
    await maqet.add({ name: "web", accel: "tcg" });
    const error = await maqet.console("web").catch((e) => e);
    expect(error).toBeMaqetError("VM_INVALID_STATE");
    expect(error.exitCode).toBe(1);
    expect(error.message).toContain("never run");
    expect(error.message).toContain("maqet start web");
    expect((await maqet.status("web")).serialLog).toBeNull();
  });

  it("refuses a VM whose config routes -serial itself (maqet captures nothing)", async () => {
    await maqet.add({ name: "own", accel: "tcg", args: ["-serial", "stdio"] });
    await maqet.start("own");
    const error = await maqet.console("own").catch((e) => e);
    expect(error).toBeMaqetError("VM_INVALID_STATE");
    expect(error.message).toContain("-serial");
    expect((await maqet.status("own")).serialLog).toBeNull();
  });

  it("says an unknown VM is not found", async () => {
    await expect(maqet.console("ghost")).rejects.toBeMaqetError("VM_NOT_FOUND");
  });

  it("reads serial.log in the VM's runtime dir ('' before QEMU created it)", async () => {
    const { id } = await maqet.add({ name: "web", accel: "tcg" });
    await maqet.start("web");
    const serial = await maqet.console("web");
    expect(serial).toMatchObject({ vm: "web", path: join(dir, id, "serial.log"), state: "running" });
    expect(await serial.read()).toBe("");
    expect((await maqet.status("web")).serialLog).toBe(serial.path);
    await writeFile(serial.path, "Linux version 6.1\r\nlogin: ");
    expect(await serial.read()).toBe("Linux version 6.1\r\nlogin: ");
  });

  it("follows until the VM's QEMU process is gone, then completes after a last read", async () => {
    await maqet.add({ name: "web", accel: "tcg" });
    await maqet.start("web");
    const serial = await maqet.console("web");
    await writeFile(serial.path, "boot\r\n");
    const all = firstValueFrom(serial.follow$().pipe(toArray()));
    await firstValueFrom(serial.follow$().pipe(take(1))); // the follower is reading
    await appendFile(serial.path, "MAQET-MARKER HELLO\r\n");
    // The guest's last words land, then QEMU exits: the follower still prints them.
    await appendFile(serial.path, "reboot: Power down\r\n");
    world.qemus[0]!.die({ code: 0, signal: null });
    expect((await all).join("")).toBe("boot\r\nMAQET-MARKER HELLO\r\nreboot: Power down\r\n");
  });

  it("follows a stopped VM's last run: its log at once, then completes", async () => {
    await maqet.add({ name: "web", accel: "tcg" });
    await maqet.start("web");
    const path = (await maqet.console("web")).path;
    await writeFile(path, "last run\n");
    await maqet.stop("web");
    const serial = await maqet.console("web");
    expect(serial.state).toBe("stopped");
    expect((await firstValueFrom(serial.follow$().pipe(toArray()))).join("")).toBe("last run\n");
    expect(await firstValueFrom(serial.follow$({ fromStart: false }).pipe(toArray()))).toEqual([]);
  });

  it("the console command returns the text, or a stream with --follow", async () => {
    await maqet.add({ name: "web", accel: "tcg" });
    await maqet.start("web");
    const path = (await maqet.console("web")).path;
    await writeFile(path, "hello\r\n");
    const command = findCommand("console")!;
    expect(await command.invoke(maqet, { vm: "web" })).toEqual({
      vm: "web",
      path,
      state: "running",
      text: "hello\r\n",
    });
    const streamed = await command.invoke(maqet, { vm: "web", follow: true });
    expect(isStreamedResult(streamed)).toBe(true);
    expect((streamed as StreamedResult).about).toEqual({ vm: "web", path });
    // The stream needs no store: it still works after the facade is closed.
    await maqet.close();
    const first = await firstValueFrom((streamed as StreamedResult).output$.pipe(take(1)));
    expect(first).toBe("hello\r\n");
  });
});

describe("pipeStream (the CLI side of --follow)", () => {
  function fakeSignals() {
    const handlers = new Map<string, () => void>();
    return {
      handlers,
      once: ((name: string, fn: () => void) => handlers.set(name, fn)) as unknown as NodeJS.Process["once"],
      off: ((name: string) => handlers.delete(name)) as unknown as NodeJS.Process["off"],
    };
  }

  it("writes chunks as they are, and exits 0 when the stream completes, removing its handlers", async () => {
    const output$ = new Subject<string>();
    const written: string[] = [];
    const signals = fakeSignals();
    const done = pipeStream(streamedResult(output$), { write: (t) => written.push(t), json: false, signals });
    expect([...signals.handlers.keys()].sort()).toEqual(["SIGINT", "SIGTERM"]);
    output$.next("MAQET-");
    output$.next("MARKER HELLO\r\n");
    output$.complete();
    expect(await done).toBe(0);
    expect(written).toEqual(["MAQET-", "MARKER HELLO\r\n"]);
    expect(signals.handlers.size).toBe(0);
  });

  it("Ctrl-C ends it with exit 0 and unsubscribes", async () => {
    const output$ = new Subject<string>();
    const signals = fakeSignals();
    const done = pipeStream(streamedResult(output$), { write: () => undefined, json: false, signals });
    expect(output$.observed).toBe(true);
    signals.handlers.get("SIGINT")!();
    expect(await done).toBe(0);
    expect(output$.observed).toBe(false);
  });

  it("--json writes one {text} object per line; an error rejects", async () => {
    const output$ = new Subject<string>();
    const written: string[] = [];
    const done = pipeStream(streamedResult(output$), {
      write: (t) => written.push(t),
      json: true,
      signals: fakeSignals(),
    });
    output$.next("a\r\n");
    output$.error(new Error("disk gone"));
    await expect(done).rejects.toThrow("disk gone");
    expect(written).toEqual(['{"text":"a\\r\\n"}\n']);
  });
});
