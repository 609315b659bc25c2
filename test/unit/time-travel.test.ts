/**
 * history --at / --version and replay, with fakes: the state at each point is what the actor's
 * fold gives, and replaying the same stream twice gives identical states.
 */
import { firstValueFrom, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { foldVmEvents } from "../../src/actors/vm-view.ts";
import { parseTimeArg } from "../../src/api/commands/time-arg.ts";
import { createMaqet } from "../../src/api/maqet.ts";
import { toVmStatus } from "../../src/api/vm-status.ts";
import { createFakeWorld } from "../support/fake-ports.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function lifecycle() {
  const store = new MemoryEventStore();
  const maqet = createMaqet({ store, ports: createFakeWorld().ports });
  await maqet.add({ name: "web", accel: "tcg" });
  await maqet.start("web");
  await maqet.qmp("web", "stop");
  await tick();
  await maqet.qmp("web", "cont");
  await tick();
  await maqet.stop("web");
  return { store, maqet };
}

describe("time travel (fakes)", () => {
  it("history --at gives the right state at four points: running, paused, running again, stopped", async () => {
    const { store, maqet } = await lifecycle();
    const at = (type: string, nth = 0) => store.events.filter((e) => e.type === type)[nth]!.recordedAt;
    expect((await maqet.historyAt("web", { at: at("vm.started") })).state).toMatchObject({ state: "running" });
    expect((await maqet.historyAt("web", { at: at("vm.paused") })).state).toMatchObject({
      state: "paused",
      detail: "user",
    });
    expect((await maqet.historyAt("web", { at: at("vm.resumed") })).state).toMatchObject({ state: "running" });
    const end = await maqet.historyAt("web", { at: at("vm.stopped") });
    expect(end.state).toMatchObject({ state: "stopped", pid: null });
    expect(end.events.at(-1)!.type).toBe("vm.stopped");
    // Between two events: the earlier one's state.
    const between = new Date(at("vm.paused").getTime() + 1);
    expect((await maqet.historyAt("web", { at: between })).state.state).toBe("paused");
  });

  it("--version N stops after that stream version, with the events up to it", async () => {
    const { maqet } = await lifecycle();
    const h = await maqet.historyAt("web", { version: 0 });
    expect(h.events.map((e) => e.type)).toEqual(["vm.defined"]);
    expect(h.state.state).toBe("stopped");
    expect(h.version).toBe(0);
    const early = await maqet.historyAt("web", { at: new Date("2000-01-01T00:00:00Z") }).catch((e) => e);
    expect(early).toBeMaqetError("INVALID_ARGUMENT");
    expect(early.message).toContain("did not exist yet");
  });

  it("replay emits {event, state} per event, identical twice, ending in the actor's own fold", async () => {
    const { store, maqet } = await lifecycle();
    const first = await firstValueFrom(maqet.replay("web").pipe(toArray()));
    const second = await firstValueFrom(maqet.replay("web").pipe(toArray()));
    expect(second).toEqual(first);
    const streamId = store.events.find((e) => e.id === first[0]!.event.id)!.streamId;
    const stream = store.events.filter((e) => e.streamId === streamId);
    expect(first.length).toBe(stream.length);
    expect(first.at(-1)!.state).toEqual(toVmStatus(foldVmEvents(stream)!));
    expect(first.at(-1)!.state).toEqual(await maqet.status("web"));
    const upTo = await firstValueFrom(maqet.replay("web", { version: 2 }).pipe(toArray()));
    expect(upTo.map((s) => s.event.version)).toEqual([0, 1, 2]);
  });

  it("a removed VM's history is still reachable by name", async () => {
    const { maqet } = await lifecycle();
    await maqet.remove("web");
    const h = await maqet.historyAt("web", { version: 1 });
    expect(h.state.state).toBe("starting");
  });
});

describe("time arguments", () => {
  it("ISO times, dates and durations ago", () => {
    const now = new Date("2026-11-22T12:00:00Z");
    expect(parseTimeArg("2h", "--at", now)!.toISOString()).toBe("2026-11-22T10:00:00.000Z");
    expect(parseTimeArg("90s", "--at", now)!.toISOString()).toBe("2026-11-22T11:58:30.000Z");
    expect(parseTimeArg("2026-11-22T10:15:00Z", "--at")!.toISOString()).toBe("2026-11-22T10:15:00.000Z");
    expect(parseTimeArg("2026-11-22", "--at")!.toISOString()).toBe("2026-11-22T00:00:00.000Z");
    expect(parseTimeArg(undefined, "--at")).toBeUndefined();
    expect(() => parseTimeArg("yesterday", "--at")).toThrow(/Invalid --at/);
    expect(() => parseTimeArg("5", "--at")).toThrow(/Invalid --at/);
  });
});
