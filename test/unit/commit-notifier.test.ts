import { describe, expect, it } from "vitest";
import { CommitNotifier } from "../../src/events/commit-notifier.ts";

/** A send whose calls are recorded and complete only when the test says so. */
function controlledSend() {
  const calls: string[][] = [];
  const finish: Array<(error?: Error) => void> = [];
  const send = (ids: string[]) =>
    new Promise<void>((resolve, reject) => {
      calls.push(ids);
      finish.push((error) => (error ? reject(error) : resolve()));
    });
  return { calls, finish, send };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("CommitNotifier", () => {
  it("sends at once, and coalesces pokes made while a send is in flight into one next send", async () => {
    const { calls, finish, send } = controlledSend();
    const notifier = new CommitNotifier(send);
    notifier.poke("vm-1");
    expect(calls).toEqual([["vm-1"]]);
    notifier.poke("vm-2");
    notifier.poke("vm-3");
    notifier.poke("vm-2");
    expect(calls).toHaveLength(1);
    finish[0]!();
    await tick();
    expect(calls).toEqual([["vm-1"], ["vm-2", "vm-3"]]);
    finish[1]!();
    await tick();
    expect(calls).toHaveLength(2);
    notifier.poke("vm-4");
    expect(calls.at(-1)).toEqual(["vm-4"]);
    finish[2]!();
    await notifier.close();
  });

  it("counts a failed send and keeps sending later pokes", async () => {
    const { calls, finish, send } = controlledSend();
    const notifier = new CommitNotifier(send);
    notifier.poke("vm-1");
    notifier.poke("vm-2");
    finish[0]!(new Error("connection lost"));
    await tick();
    expect(notifier.failures).toBe(1);
    expect(calls).toEqual([["vm-1"], ["vm-2"]]);
    finish[1]!();
    await tick();
    notifier.poke("vm-3");
    expect(calls.at(-1)).toEqual(["vm-3"]);
    finish[2]!();
    await notifier.close();
    expect(notifier.failures).toBe(1);
  });

  it("close waits for what is pending, then ignores pokes", async () => {
    const { calls, finish, send } = controlledSend();
    const notifier = new CommitNotifier(send);
    notifier.poke("vm-1");
    notifier.poke("vm-2");
    let closed = false;
    const closing = notifier.close().then(() => {
      closed = true;
    });
    await tick();
    expect(closed).toBe(false);
    finish[0]!();
    await tick();
    expect(calls).toEqual([["vm-1"], ["vm-2"]]);
    expect(closed).toBe(false);
    finish[1]!();
    await closing;
    notifier.poke("vm-3");
    expect(calls).toHaveLength(2);
  });
});
