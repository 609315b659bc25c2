/**
 * The live projection loop's quiet period (the agent's projections: after a burst of appends, not
 * between them) and its `run` wrapper (the agent runs each catch-up at low database priority).
 * Simulated time: each step advances the fake clock by what the loop waits.
 */
import { Subject } from "rxjs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LiveLoop } from "../../src/events/projections/projection-live-loop.ts";

describe("LiveLoop", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date", "performance"] }));
  afterEach(() => vi.useRealTimers());

  const loopWith = (options: ConstructorParameters<typeof LiveLoop>[2]) => {
    const calls: number[] = [];
    const wakeUps = new Subject<void>();
    const loop = new LiveLoop(
      async () => {
        calls.push(performance.now());
      },
      ["p"],
      { wakeUps, pollIntervalMs: 60_000, ...options },
    );
    return { calls, wakeUps, loop };
  };

  it("without quietMs, each wake-up catches up at once", async () => {
    const { calls, wakeUps, loop } = loopWith({});
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1); // the first catch-up, at start
    wakeUps.next();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(2);
    await loop.stop();
  });

  it("with quietMs, a burst of wake-ups is caught up once, quietMs after its last one", async () => {
    const { calls, wakeUps, loop } = loopWith({ quietMs: 20, maxDelayMs: 200 });
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    const burst = performance.now();
    for (let i = 0; i < 5; i++) {
      wakeUps.next();
      await vi.advanceTimersByTimeAsync(5);
    }
    expect(calls).toHaveLength(1); // still within the burst: nothing ran in front of its appends
    await vi.advanceTimersByTimeAsync(20);
    expect(calls).toHaveLength(2);
    // The last wake-up came at burst + 20 ms; the catch-up quietMs after it.
    expect(calls[1]! - burst).toBeGreaterThanOrEqual(40);
    expect(calls[1]! - burst).toBeLessThanOrEqual(45);
    await loop.stop();
  });

  it("a steady stream of wake-ups still gets a catch-up every maxDelayMs", async () => {
    const { calls, wakeUps, loop } = loopWith({ quietMs: 20, maxDelayMs: 100 });
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 100; i++) {
      wakeUps.next(); // every 5 ms for 500 ms: never quiet
      await vi.advanceTimersByTimeAsync(5);
    }
    // 500 ms of wake-ups, a catch-up at most 100 ms after the first one unserved: about 5.
    expect(calls.length - 1).toBeGreaterThanOrEqual(4);
    expect(calls.length - 1).toBeLessThanOrEqual(6);
    await loop.stop();
  });

  it("runs each catch-up through `run`", async () => {
    const inside: boolean[] = [];
    let wrapped = false;
    const loop = new LiveLoop(
      async () => {
        inside.push(wrapped);
      },
      ["a", "b"],
      {
        pollIntervalMs: 60_000,
        run: async (work) => {
          wrapped = true;
          try {
            return await work();
          } finally {
            wrapped = false;
          }
        },
      },
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(inside).toEqual([true, true]);
    await loop.stop();
  });
});
