/**
 * The member's command loop without a database (the cluster is a stand-in, time is vitest's fake
 * clock, so "at once" means without the 1 s fallback poll ever firing): a NOTIFY that arrives
 * while a claim is in flight is not slept through; a claim that saw nothing else claimable waits
 * for the next NOTIFY instead of sending a claim that finds nothing; a finish that says a command
 * of the same VM waits claims again at once.
 */
import { Subject } from "rxjs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Orchestrator } from "../../src/actors/orchestrator.ts";
import type { ClusterMember } from "../../src/api/cluster-member.ts";
import { startClusterMember } from "../../src/api/cluster-member.ts";
import type { ClusterRuntime } from "../../src/api/cluster-runtime.ts";
import { type ClaimedCommand, COMMANDS_CHANNEL } from "../../src/events/command-queue.ts";
import type { Wakeup } from "../../src/events/notifications.ts";

type Claim = () => Promise<ClaimedCommand | undefined>;

function command(id: string, more: boolean): ClaimedCommand {
  return {
    id,
    vmId: `vm-of-${id}`,
    host: "b",
    method: "qmp",
    args: [],
    caller: {},
    idempotent: false,
    attempts: 1,
    more,
  };
}

function setUp(claims: Claim[], finishes: Array<{ finished: boolean; waiting: boolean }>) {
  const wakeups = new Subject<Wakeup>();
  const claimed: number[] = [];
  const executed: string[] = [];
  const noted: string[] = [];
  let calls = 0;
  const cluster = {
    host: "b",
    member: true,
    serving: true,
    notServingBecause: "",
    // The member records each renewal's validity (for the check before a QEMU spawn).
    leaseRenewed: () => undefined,
    leaseAgeMs: () => 0,
    hosts: {
      join: async () => ({ term: 1 }),
      commitsDurable: async () => true,
      renew: async () => ({ ok: true }),
      observe: async () => [],
      list: async () => [],
      leave: async () => undefined,
    },
    placements: { all: async () => [] },
    commands: {
      rescue: async () => ({ requeued: 0, failed: 0 }),
      sweepOrphans: async () => ({ requeued: 0, failed: 0 }),
      failHost: async () => 0,
      prune: async () => 0,
      claim: () => {
        claimed.push(++calls);
        return (claims.shift() ?? (async () => undefined))();
      },
      complete: async () => finishes.shift() ?? { finished: true, waiting: false },
    },
    refresh: async () => undefined,
    owns: () => false,
    noteClaim: (c: ClaimedCommand) => noted.push(`note ${c.id}`),
    forgetClaim: (id: string) => noted.push(`forget ${id}`),
    wakeups: (channel: string) => (channel === COMMANDS_CHANNEL ? wakeups : undefined),
  } as unknown as ClusterRuntime;
  const start = () =>
    startClusterMember({
      cluster,
      orchestrator: { views: async () => [] } as unknown as Orchestrator,
      fenceQemu: async () => [],
      capacity: { memoryBytes: 0, cpus: 1 },
      execute: async (c) => {
        executed.push(c.id);
        return null;
      },
      // Renewals and observer passes far apart: only the command loop acts.
      options: { leaseTtlMs: 600_000, fenceAfterMs: 600_000, observeEveryMs: 600_000 },
      warn: () => undefined,
    });
  const notify = () => wakeups.next({ reason: "notification", payload: "b" });
  return { start, notify, claimed, executed, noted };
}

/** Lets every pending promise settle, without moving the fake clock. */
const settle = () => vi.advanceTimersByTimeAsync(0);

describe("the member's command loop", () => {
  let member: ClusterMember | undefined;
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    const stopping = member?.halt();
    await vi.runOnlyPendingTimersAsync();
    await stopping;
    member = undefined;
    vi.useRealTimers();
  });

  it("claims again at once when a NOTIFY came while a claim was in flight", async () => {
    let answer: (c: ClaimedCommand | undefined) => void = () => undefined;
    const t = setUp(
      [
        async () => undefined, // the first pass: nothing queued
        () =>
          new Promise((resolve) => {
            answer = resolve;
          }),
      ],
      [],
    );
    member = await t.start();
    await settle();
    expect(t.claimed).toEqual([1]);
    t.notify(); // wakes the waiting loop: claim 2 goes out
    await settle();
    expect(t.claimed).toEqual([1, 2]);
    // A new command's NOTIFY arrives while claim 2 is in flight, and claim 2 did not see its row.
    t.notify();
    answer(undefined);
    await settle();
    expect(t.claimed).toEqual([1, 2, 3]);
  });

  it("waits for a NOTIFY after a claim that saw nothing else claimable, and after a finish with nobody waiting", async () => {
    const t = setUp([async () => command("c1", false)], [{ finished: true, waiting: false }]);
    member = await t.start();
    await settle();
    expect(t.executed).toEqual(["c1"]);
    expect(t.noted).toEqual(["note c1", "forget c1"]);
    expect(t.claimed).toEqual([1]);
    t.notify();
    await settle();
    expect(t.claimed).toEqual([1, 2]);
  });

  it("claims again at once when more was claimable, and when the finish says one of the same VM waits", async () => {
    const t = setUp(
      [async () => command("c1", true), async () => undefined, async () => command("c2", false)],
      [{ finished: true, waiting: true }],
    );
    member = await t.start();
    await settle();
    // c1 (more: claim again: nothing), then c1's finish says another of its VM waits: c2.
    expect(t.executed).toEqual(["c1", "c2"]);
    expect(t.claimed).toEqual([1, 2, 3]);
  });
});
