/**
 * Time travel on a real run (issue 5, acceptance 4): a VM started, paused, resumed and stopped;
 * historyAt gives the right state at each of the four points, and replaying the stream twice
 * gives identical states, the last one equal to what `status` says now.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaqet, type Maqet } from "../../src/mod.ts";

describe("history --at and replay on a real run", { timeout: 60_000 }, () => {
  let dir: string;
  let maqet: Maqet;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-tt-"));
    maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run"), env: { PATH: process.env.PATH } });
    await writeFile(join(dir, "tt.yaml"), "name: tt\nbinary: qemu-system-x86_64\naccel: tcg\nmemory: 64M\n");
    await maqet.add(join(dir, "tt.yaml"));
    await maqet.start("tt");
    await maqet.pause("tt");
    await maqet.resume("tt");
    await maqet.stop("tt", { timeoutMs: 1000 });
  });
  afterAll(async () => {
    await maqet.stop("tt", { force: true }).catch(() => undefined);
    await maqet.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the right state at four points", async () => {
    const history = await maqet.history("tt");
    const at = (type: string) => new Date(history.filter((h) => h.type === type).at(-1)!.at);
    const started = await maqet.historyAt("tt", { at: at("vm.started") });
    expect(started.state).toMatchObject({ state: "running", pid: expect.any(Number) });
    expect((await maqet.historyAt("tt", { at: at("vm.paused") })).state).toMatchObject({
      state: "paused",
      detail: "user",
      pid: started.state.pid,
    });
    expect((await maqet.historyAt("tt", { at: at("vm.resumed") })).state).toMatchObject({ state: "running" });
    expect((await maqet.historyAt("tt", { at: at("vm.stopped") })).state).toMatchObject({
      state: "stopped",
      pid: null,
      detail: "destroyed",
    });
  });

  it("replays the same stream twice to identical states, ending where status is", async () => {
    const first = await firstValueFrom(maqet.replay("tt").pipe(toArray()));
    const second = await firstValueFrom(maqet.replay("tt").pipe(toArray()));
    expect(second).toEqual(first);
    expect(first.map((s) => s.event.type)).toEqual((await maqet.history("tt")).map((h) => h.type));
    expect(first.at(-1)!.state).toEqual(await maqet.status("tt"));
  });
});
