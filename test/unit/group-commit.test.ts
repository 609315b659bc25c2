/**
 * GroupCommitter (src/events/group-commit.ts): a lone request goes at once; requests arriving
 * while a group is written go together in the next; each gets its own answer; a group that
 * waits too long gets a group beside it (bounded wait). Fake timers: no real sleeps.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GroupCommitter, type Settled } from "../../src/events/group-commit.ts";

/** A runner whose groups finish when the test says so; it records each group it got. */
function manualRunner() {
  const groups: string[][] = [];
  const finish: Array<(answers: Array<Settled<string>>) => void> = [];
  const fail: Array<(error: unknown) => void> = [];
  const run = (batch: readonly string[]) =>
    new Promise<ReadonlyArray<Settled<string>>>((resolve, reject) => {
      groups.push([...batch]);
      finish.push(resolve);
      fail.push(reject);
    });
  const ok = (i: number) => finish[i]!(groups[i]!.map((r) => ({ ok: true, value: `done:${r}` })));
  return { run, groups, finish, fail, ok };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe("GroupCommitter", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends a lone request at once, alone", async () => {
    const r = manualRunner();
    const groups = new GroupCommitter(r.run);
    const a = groups.submit("a");
    expect(r.groups).toEqual([["a"]]); // synchronously: no timer, no added wait
    r.ok(0);
    await expect(a).resolves.toBe("done:a");
  });

  it("groups the requests that arrive while a group is in flight, in arrival order", async () => {
    const r = manualRunner();
    const groups = new GroupCommitter(r.run);
    const first = groups.submit("a");
    const rest = ["b", "c", "d"].map((x) => groups.submit(x));
    expect(r.groups).toEqual([["a"]]);
    r.ok(0);
    await first;
    await flush();
    expect(r.groups).toEqual([["a"], ["b", "c", "d"]]);
    r.ok(1);
    await expect(Promise.all(rest)).resolves.toEqual(["done:b", "done:c", "done:d"]);
  });

  it("answers each request on its own: one failure fails no other", async () => {
    const r = manualRunner();
    const groups = new GroupCommitter(r.run);
    const first = groups.submit("a");
    const b = groups.submit("b");
    const c = groups.submit("c");
    r.ok(0);
    await first;
    await flush();
    r.finish[1]!([
      { ok: false, error: new Error("b conflicted") },
      { ok: true, value: "done:c" },
    ]);
    await expect(b).rejects.toThrow("b conflicted");
    await expect(c).resolves.toBe("done:c");
  });

  it("fails every request of a group whose run throws, and goes on with the next", async () => {
    const r = manualRunner();
    const groups = new GroupCommitter(r.run);
    const a = groups.submit("a");
    const b = groups.submit("b");
    r.fail[0]!(new Error("connection lost"));
    await expect(a).rejects.toThrow("connection lost");
    await flush();
    expect(r.groups).toEqual([["a"], ["b"]]);
    r.ok(1);
    await expect(b).resolves.toBe("done:b");
  });

  it("caps a group at maxGroup requests", async () => {
    const r = manualRunner();
    const groups = new GroupCommitter(r.run, { maxGroup: 2 });
    const all = ["a", "b", "c", "d", "e"].map((x) => groups.submit(x));
    r.ok(0);
    await flush();
    expect(r.groups).toEqual([["a"], ["b", "c"]]);
    r.ok(1);
    await flush();
    expect(r.groups.at(-1)).toEqual(["d", "e"]);
    r.ok(2);
    await expect(Promise.all(all)).resolves.toHaveLength(5);
  });

  it("bounds the wait: a group stuck past maxWaitMs gets a group beside it, up to maxInFlight", async () => {
    const r = manualRunner();
    const groups = new GroupCommitter(r.run, { maxWaitMs: 5, maxInFlight: 2 });
    void groups.submit("stuck"); // waits on a row lock, say
    const b = groups.submit("b");
    await vi.advanceTimersByTimeAsync(4);
    expect(r.groups).toEqual([["stuck"]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.groups).toEqual([["stuck"], ["b"]]);
    expect(groups.inFlight).toBe(2);
    void groups.submit("c");
    await vi.advanceTimersByTimeAsync(100);
    expect(r.groups).toHaveLength(2); // maxInFlight reached: c waits for one of them
    r.ok(1);
    await expect(b).resolves.toBe("done:b");
    await flush();
    expect(r.groups.at(-1)).toEqual(["c"]);
  });

  it("keeps starting groups beside a stuck one, one per maxWaitMs, while requests wait and there is room", async () => {
    // maxGroup 1 is what groupCommit: false gives: every append its own transaction, all at once.
    const r = manualRunner();
    const groups = new GroupCommitter(r.run, { maxGroup: 1, maxWaitMs: 5, maxInFlight: 10 });
    for (const w of ["stuck", "w1", "w2", "w3", "w4"]) void groups.submit(w);
    expect(r.groups).toEqual([["stuck"]]);
    await vi.advanceTimersByTimeAsync(5);
    expect(r.groups).toEqual([["stuck"], ["w1"]]);
    await vi.advanceTimersByTimeAsync(5);
    expect(r.groups).toEqual([["stuck"], ["w1"], ["w2"]]);
    await vi.advanceTimersByTimeAsync(10);
    expect(r.groups).toEqual([["stuck"], ["w1"], ["w2"], ["w3"], ["w4"]]);
    expect(groups.inFlight).toBe(5);
  });
});
