/**
 * The embedded database's one session is taken in order, low-priority waiters
 * (src/adapters/db-priority.ts: the agent's live projections) after the others, unless one has
 * waited 200 ms; a closing driver waits for the holder. A fake PGlite: only the lock is tested.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { atLowPriority, isLowPriority } from "../../src/adapters/db-priority.ts";
import { PgliteDriver, type PgliteLike } from "../../src/adapters/pglite-driver.ts";

function fakePglite(): PgliteLike & { closes: number } {
  return {
    closes: 0,
    closed: false,
    async query() {
      return { rows: [] };
    },
    async close() {
      this.closes++;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("PgliteDriver's session lock", () => {
  afterEach(() => vi.useRealTimers());

  it("knows when it runs at low priority", async () => {
    expect(isLowPriority()).toBe(false);
    expect(await atLowPriority(async () => isLowPriority())).toBe(true);
    const afterAwait = atLowPriority(async () => {
      await tick();
      return isLowPriority();
    });
    expect(await afterAwait).toBe(true);
  });

  it("hands the session to ordinary waiters before low-priority ones, each lane in order", async () => {
    const driver = new PgliteDriver(fakePglite());
    const order: string[] = [];
    await driver.acquireConnection(); // held
    const take = (name: string) => async () => {
      await driver.acquireConnection();
      order.push(name);
      await tick();
      await driver.releaseConnection();
    };
    const waiting = [
      atLowPriority(take("low 1")),
      take("ordinary 1")(),
      atLowPriority(take("low 2")),
      take("ordinary 2")(),
    ];
    await tick();
    expect(order).toEqual([]); // all wait for the holder
    await driver.releaseConnection();
    await Promise.all(waiting);
    expect(order).toEqual(["ordinary 1", "ordinary 2", "low 1", "low 2"]);
  });

  it("a low-priority waiter passed over for 200 ms goes next", async () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    const driver = new PgliteDriver(fakePglite());
    const order: string[] = [];
    await driver.acquireConnection();
    const low = atLowPriority(async () => {
      await driver.acquireConnection();
      order.push("low");
      await driver.releaseConnection();
    });
    const ordinary = (async () => {
      await driver.acquireConnection();
      order.push("ordinary");
      await driver.releaseConnection();
    })();
    await tick();
    vi.advanceTimersByTime(201);
    await driver.releaseConnection();
    await Promise.all([low, ordinary]);
    expect(order).toEqual(["low", "ordinary"]);
  });

  it("destroy waits for the holder, then closes PGlite; a free session is taken at once", async () => {
    const pglite = fakePglite();
    const driver = new PgliteDriver(pglite);
    await driver.acquireConnection();
    const destroyed = driver.destroy();
    await tick();
    expect(pglite.closes).toBe(0);
    await driver.releaseConnection();
    await destroyed;
    expect(pglite.closes).toBe(1);
  });
});
