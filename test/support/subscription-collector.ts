/**
 * A subscription's messages as they arrive, with waits on them (real time, through
 * {@link waitUntil}: a wait that runs out throws saying what it waited for and what it had).
 *
 * @example
 * ```ts
 * const sub = collect(store, { from: "end", filter: { category } });
 * await sub.waitCaughtUp();
 * await store.append(`${category}-1`, [event("a")]);
 * await sub.waitEvents(1);
 * sub.subscription.unsubscribe();
 * ```
 */
import type { Subscription } from "rxjs";
import type { Checkpoint } from "../../src/events/checkpoint.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import type { EventStore, SubscribeOptions, SubscriptionMessage } from "../../src/events/event-store.ts";
import { waitUntil } from "./poll.ts";

export interface Collector {
  messages: SubscriptionMessage[];
  events(): StoredEvent[];
  ids(): string[];
  caughtUps(): Array<Checkpoint | null>;
  /** The checkpoint to resume from: the last event's, else the caughtUp marker's. */
  checkpoint(): Checkpoint | null | undefined;
  /** Where a new subscription continues this one: its checkpoint, or where it began if it got nothing yet. */
  resumeFrom(): SubscribeOptions["from"];
  completed: boolean;
  error: unknown;
  subscription: Subscription;
  /** Waits for the caughtUp marker; throws the subscription's error if it failed instead. */
  waitCaughtUp(timeoutMs?: number): Promise<void>;
  /** Waits until `count` events have arrived; throws the subscription's error if it failed instead. */
  waitEvents(count: number, timeoutMs?: number): Promise<void>;
  /** Waits until the subscription completes. */
  waitCompleted(timeoutMs?: number): Promise<void>;
}

/** Subscribes to `store` with `options` and collects what comes. */
export function collect(store: Pick<EventStore, "subscribe">, options: SubscribeOptions = {}): Collector {
  const c: Collector = {
    messages: [],
    events: () => c.messages.flatMap((m) => (m.kind === "event" ? [m.event] : [])),
    ids: () => c.events().map((e) => e.id),
    caughtUps: () => c.messages.flatMap((m) => (m.kind === "caughtUp" ? [m.checkpoint] : [])),
    checkpoint: () => {
      for (let i = c.messages.length - 1; i >= 0; i--) {
        const m = c.messages[i]!;
        if (m.kind === "event") return m.checkpoint;
      }
      return c.caughtUps()[0];
    },
    resumeFrom: () => {
      const cp = c.checkpoint();
      return cp === undefined ? (options.from ?? "start") : cp === null ? "start" : cp;
    },
    completed: false,
    error: undefined,
    subscription: undefined as unknown as Subscription,
    waitCaughtUp: async (timeoutMs = 10_000) => {
      await waitUntil(
        "the subscription's caughtUp",
        () => ({ caughtUp: c.caughtUps().length > 0, events: c.events().length, error: c.error }),
        (s) => s.caughtUp || s.error !== undefined,
        { timeoutMs, everyMs: 10 },
      );
      if (c.error) throw c.error;
    },
    waitEvents: async (count, timeoutMs = 10_000) => {
      await waitUntil(
        `${count} events on the subscription`,
        () => ({ events: c.events().length, error: c.error }),
        (s) => s.events >= count || s.error !== undefined,
        { timeoutMs, everyMs: 10 },
      );
      if (c.error) throw c.error;
    },
    waitCompleted: async (timeoutMs = 10_000) => {
      await waitUntil(
        "the subscription to complete",
        () => ({ completed: c.completed, error: c.error }),
        (s) => s.completed,
        { timeoutMs, everyMs: 10 },
      );
    },
  };
  c.subscription = store.subscribe(options).subscribe({
    next: (m) => c.messages.push(m),
    error: (error) => {
      c.error = error;
    },
    complete: () => {
      c.completed = true;
    },
  });
  return c;
}
