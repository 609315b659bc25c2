import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/adapters/system-clock.ts";
import { FakeClock } from "../support/fake-clock.ts";

describe("systemClock", () => {
  it("sleeps for real and reads wall-clock time", async () => {
    const t0 = systemClock.now();
    expect(Math.abs(t0 - Date.now())).toBeLessThan(5);
    await systemClock.sleep(15);
    expect(systemClock.now() - t0).toBeGreaterThanOrEqual(14);
  });

  it("rejects with the abort reason, at once or when aborted mid-sleep", async () => {
    await expect(systemClock.sleep(10, AbortSignal.abort(new Error("early")))).rejects.toThrow("early");
    const ac = new AbortController();
    const t0 = Date.now();
    const sleeping = systemClock.sleep(10_000, ac.signal);
    setTimeout(() => ac.abort(new Error("late")), 5);
    await expect(sleeping).rejects.toThrow("late");
    expect(Date.now() - t0).toBeLessThan(1_000);
  });
});

describe("FakeClock", () => {
  it("wakes sleepers in deadline order, each at its own time", async () => {
    const clock = new FakeClock(1_000);
    const woke: Array<[string, number]> = [];
    for (const [name, ms] of [
      ["c", 30],
      ["a", 10],
      ["b", 20],
      ["a2", 10],
    ] as const) {
      void clock.sleep(ms).then(() => woke.push([name, clock.now()]));
    }
    await clock.advance(25);
    expect(woke).toEqual([
      ["a", 1_010],
      ["a2", 1_010],
      ["b", 1_020],
    ]);
    expect(clock.now()).toBe(1_025);
    expect(clock.pendingSleeps).toBe(1);
    await clock.advance(5);
    expect(woke.at(-1)).toEqual(["c", 1_030]);
  });

  it("wakes a sleeper that sleeps again inside the same advance", async () => {
    const clock = new FakeClock();
    let ticks = 0;
    const loop = (async () => {
      while (ticks < 5) {
        await clock.sleep(20);
        ticks++;
      }
    })();
    await clock.advance(100);
    await loop;
    expect(ticks).toBe(5);
  });

  it("honours AbortSignal like the real clock", async () => {
    const clock = new FakeClock();
    await expect(clock.sleep(10, AbortSignal.abort(new Error("early")))).rejects.toThrow("early");
    const ac = new AbortController();
    const sleeping = clock.sleep(10, ac.signal);
    ac.abort(new Error("late"));
    await expect(sleeping).rejects.toThrow("late");
    expect(clock.pendingSleeps).toBe(0);
  });
});
