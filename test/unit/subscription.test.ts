/**
 * The subscription loop (src/events/subscription.ts) in virtual time: a fake reader over an
 * in-memory list with a movable watermark, a FakeClock, a Subject for wake-ups. The real stores
 * run the same loop in test/int/event-store-conformance.int.test.ts; the hand-over on PGlite in
 * test/int/subscription-handover.int.test.ts.
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import { type Checkpoint, compareCheckpoints } from "../../src/events/checkpoint.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import type { EventFilter, SubscribeOptions, SubscriptionMessage } from "../../src/events/event-store.ts";
import type { EventPage } from "../../src/events/read-all.ts";
import {
  type HandedOverEvents,
  type PollingOptions,
  pollingSubscription,
  type SubscriptionReader,
} from "../../src/events/subscription.ts";
import { errorOf } from "../support/failure.ts";
import { FakeClock } from "../support/fake-clock.ts";

/** Events in read order; only the first `readable` of them can be read (the watermark). */
class FakeReader implements SubscriptionReader {
  rows: Array<{ event: StoredEvent; checkpoint: Checkpoint }> = [];
  readable = 0;
  reads: number[] = [];
  failures: Error[] = [];
  /** While set, reads wait for it (a read queued behind another statement), then look. */
  hold: Promise<void> | undefined;
  constructor(readonly clock: FakeClock) {}

  add(count: number, { readable = true, type = "t", streamId = "s-1" } = {}): void {
    for (let i = 0; i < count; i++) {
      const position = this.rows.length + 1;
      this.rows.push({
        event: {
          id: `e${position}`,
          streamId,
          streamVersion: this.rows.filter((r) => r.event.streamId === streamId).length,
          globalPosition: position,
          type,
          schemaVersion: 1,
          data: {},
          metadata: { actor: { user: "u", uid: 0, host: "h", pid: 1 } },
          recordedAt: new Date(0),
        },
        checkpoint: { transactionId: String(100 + position), position },
      });
    }
    if (readable) this.readable = this.rows.length;
  }

  async readPage(after: Checkpoint | undefined, limit: number, filter: EventFilter): Promise<EventPage> {
    this.reads.push(this.clock.now());
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (this.hold) await this.hold;
    const visible = this.rows.slice(0, this.readable);
    const events = visible
      .filter((r) => after === undefined || compareCheckpoints(r.checkpoint, after) > 0)
      .filter((r) => filter.types === undefined || filter.types.includes(r.event.type))
      .slice(0, limit);
    return { events, head: visible.at(-1)?.checkpoint ?? null };
  }

  async head(): Promise<Checkpoint | null> {
    return this.rows.slice(0, this.readable).at(-1)?.checkpoint ?? null;
  }

  async checkpointAt(position: number): Promise<Checkpoint | null> {
    return this.rows.filter((r) => r.event.globalPosition <= position).at(-1)?.checkpoint ?? null;
  }
}

function setup(options: SubscribeOptions = {}, polling: Partial<PollingOptions> = {}) {
  const clock = new FakeClock();
  const reader = new FakeReader(clock);
  const wakeups = new Subject<unknown>();
  const messages: SubscriptionMessage[] = [];
  let error: unknown;
  let completed = false;
  const start = () =>
    pollingSubscription(reader, options, { clock, wakeups, minPollMs: 10, maxPollMs: 160, ...polling }).subscribe({
      next: (m) => messages.push(m),
      error: (e) => {
        error = e;
      },
      complete: () => {
        completed = true;
      },
    });
  const positions = () => messages.map((m) => (m.kind === "event" ? m.event.globalPosition : "caughtUp"));
  return {
    clock,
    reader,
    wakeups,
    messages,
    positions,
    start,
    error: () => error,
    completed: () => completed,
  };
}

describe("pollingSubscription", () => {
  it("catches up page by page, emits one caughtUp, then delivers live events on a wake-up without waiting", async () => {
    const t = setup({ batchSize: 2 });
    t.reader.add(5);
    const sub = t.start();
    await t.clock.advance(0);
    expect(t.positions()).toEqual([1, 2, 3, 4, 5, "caughtUp"]);
    expect(t.messages.at(-1)).toEqual({ kind: "caughtUp", checkpoint: { transactionId: "105", position: 5 } });
    expect(t.reader.reads).toEqual([0, 0, 0]); // three pages, back to back
    t.reader.add(2);
    t.wakeups.next("notified");
    await t.clock.advance(0);
    expect(t.positions()).toEqual([1, 2, 3, 4, 5, "caughtUp", 6, 7]);
    sub.unsubscribe();
  });

  it("polls with a doubling back-off when idle, and a wake-up resets it", async () => {
    const t = setup();
    const sub = t.start();
    await t.clock.advance(1_000);
    // 0, then +10, +20, +40, +80, then +160 each time (the ceiling).
    expect(t.reader.reads.slice(0, 9)).toEqual([0, 10, 30, 70, 150, 310, 470, 630, 790]);
    const before = t.reader.reads.length;
    t.wakeups.next("notified");
    await t.clock.advance(0);
    expect(t.reader.reads.length).toBe(before + 1); // read at once
    await t.clock.advance(10);
    expect(t.reader.reads.at(-1)).toBe(1_010); // and the next poll is back at the minimum
    sub.unsubscribe();
  });

  it("loses nothing when a notification is lost: the poll delivers within the ceiling", async () => {
    const t = setup();
    const sub = t.start();
    await t.clock.advance(2_000); // idle: polling every 160 ms
    t.reader.add(3); // committed, but no wake-up ever comes
    await t.clock.advance(159);
    const delivered = t.positions().filter((p) => p !== "caughtUp");
    expect(delivered.length === 0 || delivered.length === 3).toBe(true);
    await t.clock.advance(1);
    expect(t.positions()).toEqual(["caughtUp", 1, 2, 3]);
    sub.unsubscribe();
  });

  it("never passes events held back by the watermark, and delivers them in order once readable", async () => {
    const t = setup();
    t.reader.add(2);
    t.reader.add(3, { readable: false }); // committed above an open transaction
    const sub = t.start();
    await t.clock.advance(500);
    expect(t.positions()).toEqual([1, 2, "caughtUp"]);
    t.reader.readable = 5;
    t.wakeups.next("listening");
    await t.clock.advance(0);
    expect(t.positions()).toEqual([1, 2, "caughtUp", 3, 4, 5]);
    sub.unsubscribe();
  });

  it("starts after the head ('end'), after a position, or after a checkpoint", async () => {
    for (const [from, expected] of [
      ["end", [6]],
      [3, [4, 5, 6]],
      [{ transactionId: "104", position: 4 }, [5, 6]],
      [0, [1, 2, 3, 4, 5, 6]],
    ] as const) {
      const t = setup({ from });
      t.reader.add(5);
      const sub = t.start();
      await t.clock.advance(0);
      t.reader.add(1);
      t.wakeups.next("notified");
      await t.clock.advance(0);
      expect(
        t.positions().filter((p) => p !== "caughtUp"),
        JSON.stringify(from),
      ).toEqual(expected);
      sub.unsubscribe();
    }
  });

  it("moves a filtered subscription's caughtUp checkpoint to the head, past what it skipped", async () => {
    const t = setup({ filter: { types: ["wanted"] } });
    t.reader.add(1, { type: "wanted" });
    t.reader.add(4, { type: "other" });
    const sub = t.start();
    await t.clock.advance(0);
    expect(t.messages).toEqual([
      expect.objectContaining({ kind: "event" }),
      { kind: "caughtUp", checkpoint: { transactionId: "105", position: 5 } },
    ]);
    sub.unsubscribe();
  });

  it("retries failing reads with back-off, then errors; completes instead when the store is closed", async () => {
    const t = setup({}, { retryReadsForMs: 1_000 });
    t.reader.failures = Array.from({ length: 100 }, () => new Error("connection refused"));
    t.start();
    await t.clock.advance(2_000);
    // 100, 200, 400 ms then 800: 1 500 ms of retries (>= 1 000), so the next failure is final.
    expect(t.reader.reads).toEqual([0, 100, 300, 700, 1_500]);
    expect((t.error() as Error).message).toBe("connection refused");

    let closed = false;
    const c = setup({}, { isClosed: () => closed });
    c.reader.failures = [new Error("pool ended")];
    closed = true;
    c.start();
    await c.clock.advance(0);
    expect(c.error()).toBeUndefined();
    expect(c.completed()).toBe(true);
  });

  it("recovers from a transient read failure without losing or repeating events", async () => {
    const t = setup();
    t.reader.add(2);
    const sub = t.start();
    await t.clock.advance(0);
    t.reader.failures = [new Error("blip")];
    t.reader.add(2);
    t.wakeups.next("notified");
    await t.clock.advance(100);
    expect(t.positions()).toEqual([1, 2, "caughtUp", 3, 4]);
    expect(t.error()).toBeUndefined();
    sub.unsubscribe();
  });

  it("stops reading and lets go of its wake-ups when unsubscribed", async () => {
    const t = setup();
    const sub = t.start();
    await t.clock.advance(50);
    expect(t.wakeups.observed).toBe(true);
    sub.unsubscribe();
    expect(t.wakeups.observed).toBe(false);
    const reads = t.reader.reads.length;
    await t.clock.advance(10_000);
    expect(t.reader.reads.length).toBe(reads);
    expect(t.clock.pendingSleeps).toBe(0);
  });

  it("rejects a start or batch size it cannot honour", () => {
    const clock = new FakeClock();
    const reader = new FakeReader(clock);
    const polling = { clock, wakeups: new Subject() };
    for (const from of [-1, 1.5, 2 ** 53, Number.NaN, "middle", { transactionId: "x", position: 1 }]) {
      const error = errorOf(() => pollingSubscription(reader, { from } as SubscribeOptions, polling));
      expect(error).toBeMaqetError("INVALID_ARGUMENT", { from });
      expect(error.message).toBe(
        `Invalid subscription start ${JSON.stringify(from)}: use "start", "end", a position >= 0 or a checkpoint {transactionId, position}.`,
      );
    }
    for (const batchSize of [0, -1, 1.5, Number.POSITIVE_INFINITY]) {
      const error = errorOf(() => pollingSubscription(reader, { batchSize }, polling));
      expect(error).toBeMaqetError("INVALID_ARGUMENT", { batchSize });
      expect(error.message).toBe(`Invalid batchSize ${String(batchSize)}: use an integer >= 1.`);
    }
    // The edges it does take.
    for (const options of [{ from: 0 }, { from: 7 }, { from: "end" }, { batchSize: 1 }] as SubscribeOptions[]) {
      expect(() => pollingSubscription(reader, options, polling)).not.toThrow();
    }
  });
});

describe("pollingSubscription with events handed over at commit (a single-session store)", () => {
  function withHandover(options: SubscribeOptions = {}) {
    const batches = new Subject<HandedOverEvents>();
    const t = setup(options, {
      handover: { batches, follows: (cursor, next) => next.position === cursor.position + 1 },
    });
    /** Appends `count` events and hands them over, as the store does at commit. */
    const commit = (count: number, extra: { type?: string; streamId?: string } = {}) => {
      const before = t.reader.rows.length;
      t.reader.add(count, extra);
      batches.next(t.reader.rows.slice(before));
    };
    return { ...t, batches, commit };
  }

  it("delivers live events at commit, before anything else runs, without reading them back", async () => {
    const t = withHandover();
    t.reader.add(2);
    const sub = t.start();
    await t.clock.advance(0);
    const reads = t.reader.reads.length;
    t.commit(3);
    expect(t.positions()).toEqual([1, 2, "caughtUp", 3, 4, 5]); // synchronously
    await t.clock.advance(0);
    expect(t.reader.reads.length).toBe(reads);
    expect(t.messages.at(-1)).toEqual({
      kind: "event",
      event: expect.objectContaining({ globalPosition: 5 }),
      checkpoint: { transactionId: "105", position: 5 },
    });
    sub.unsubscribe();
    expect(t.batches.observed).toBe(false);
  });

  it("does not speed up polling: the hand-over is not a reason to read", async () => {
    const t = withHandover();
    t.reader.add(1);
    const sub = t.start();
    await t.clock.advance(1_000); // idle: polling every 160 ms
    const reads = t.reader.reads.length;
    for (let i = 0; i < 10; i++) {
      t.commit(1);
      await t.clock.advance(10);
    }
    expect(t.positions().filter((p) => p !== "caughtUp")).toHaveLength(11);
    expect(t.reader.reads.length - reads).toBeLessThanOrEqual(1); // the 160 ms poll, no more
    sub.unsubscribe();
  });

  it("reads instead when an event it did not see lies in between (another writer's transaction)", async () => {
    const t = withHandover();
    t.reader.add(2);
    const sub = t.start();
    await t.clock.advance(0);
    t.reader.add(1); // committed by someone else; its wake-up is late or lost
    t.commit(1); // position 4 does not follow 2: not provably next
    expect(t.positions()).toEqual([1, 2, "caughtUp"]);
    await t.clock.advance(0);
    expect(t.positions()).toEqual([1, 2, "caughtUp", 3, 4]);
    const reads = t.reader.reads.length;
    t.commit(1); // follows again
    expect(t.positions()).toEqual([1, 2, "caughtUp", 3, 4, 5]);
    await t.clock.advance(0);
    expect(t.reader.reads.length).toBe(reads);
    sub.unsubscribe();
  });

  it("before caughtUp, and after a caller's own checkpoint until a read moved it, only wakes the loop", async () => {
    const t = withHandover({ from: { transactionId: "102", position: 2 } });
    t.reader.add(2);
    const sub = t.start();
    t.commit(1); // before the first read: a wake-up
    await t.clock.advance(0);
    expect(t.positions()).toEqual([3, "caughtUp"]);
    const reads = t.reader.reads.length;
    t.commit(1); // the cursor is now one the store gave
    expect(t.positions()).toEqual([3, "caughtUp", 4]);
    await t.clock.advance(0);
    expect(t.reader.reads.length).toBe(reads);

    const u = withHandover({ from: { transactionId: "102", position: 2 } });
    u.reader.add(2);
    const sub2 = u.start();
    await u.clock.advance(0); // caughtUp at the caller's checkpoint: nothing read moved it
    const before = u.reader.reads.length;
    u.commit(1);
    expect(u.positions()).toEqual(["caughtUp"]);
    await u.clock.advance(0);
    expect(u.positions()).toEqual(["caughtUp", 3]);
    expect(u.reader.reads.length).toBe(before + 1);
    sub.unsubscribe();
    sub2.unsubscribe();
  });

  it("filters handed-over events and moves past the ones it skips", async () => {
    const t = withHandover({ filter: { types: ["wanted"] } });
    const sub = t.start();
    t.reader.add(1, { type: "wanted" });
    await t.clock.advance(0);
    const reads = t.reader.reads.length;
    t.commit(2, { type: "other" });
    t.commit(1, { type: "wanted" });
    await t.clock.advance(0);
    expect(t.positions()).toEqual([1, "caughtUp", 4]);
    expect(t.reader.reads.length).toBe(reads);
    sub.unsubscribe();
  });

  it("filters handed-over events by category and by stream as a read would", async () => {
    for (const filter of [{ category: "vm" }, { streamId: "vm-1" }]) {
      const t = withHandover({ filter });
      const sub = t.start();
      t.reader.add(1, { streamId: "vm-1" });
      await t.clock.advance(0);
      t.commit(1, { streamId: "host-1" });
      t.commit(1, { streamId: filter.category ? "vm-2" : "vm-1" });
      t.commit(1, { streamId: "vmx" });
      await t.clock.advance(0);
      expect(t.positions(), JSON.stringify(filter)).toEqual([1, "caughtUp", 3]);
      sub.unsubscribe();
    }
  });

  it("never delivers an event twice when a read in flight returns what was handed over meanwhile", async () => {
    const t = withHandover();
    t.reader.add(2);
    const sub = t.start();
    await t.clock.advance(0);
    let release!: () => void;
    t.reader.hold = new Promise((resolve) => {
      release = resolve;
    });
    t.wakeups.next("notified"); // a read starts and waits for the session
    await t.clock.advance(0);
    t.commit(2); // the append that held the session hands its events over
    t.reader.add(1, { readable: true }); // and another writer commits one more after it
    t.reader.hold = undefined;
    release();
    await t.clock.advance(0);
    expect(t.positions()).toEqual([1, 2, "caughtUp", 3, 4, 5]);
    sub.unsubscribe();
  });
});
