/**
 * A cluster member's claim loop (src/api/cluster-member.ts) on PGlite and the PostgreSQL server:
 * a claim that committed but whose answer the member never got (the server went away between
 * the two: a restart, a failover, the network) is still run, once, and its caller gets the
 * outcome. Before, the command stayed `running` under the member's live incarnation, which no
 * rescue (a re-join) or sweep (an incarnation that is over) touches: its caller waited for ever
 * and every later command of its VM queued behind it (issue 13's chaos test). And a member on a
 * server that acknowledges commits before they are durable says so when it joins.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import type { Orchestrator } from "../../src/actors/orchestrator.ts";
import { type ClusterMember, startClusterMember } from "../../src/api/cluster-member.ts";
import { ClusterRuntime } from "../../src/api/cluster-runtime.ts";
import type { ClaimedCommand } from "../../src/events/command-queue.ts";
import type { EventMetadata } from "../../src/events/envelope.ts";
import { waitUntil } from "../support/poll.ts";
import { type TestDatabase, testDatabases } from "../support/test-databases.ts";

const meta = (): EventMetadata => ({ actor: { user: "t", uid: 1, host: "h", pid: 1 }, source: "test" });

describe.each(testDatabases())("cluster member claims on $name", ({ open }) => {
  let t: TestDatabase | undefined;
  let member: ClusterMember | undefined;
  afterEach(async () => {
    await member?.halt();
    await t?.close();
    member = undefined;
    t = undefined;
  });

  it("a claim whose answer was lost is run once, and its caller gets the outcome", async () => {
    t = await open();
    const cluster = new ClusterRuntime({ db: t.db, host: "lab1", member: true, metadata: meta });
    const ran: ClaimedCommand[] = [];
    const warnings: string[] = [];
    // The first claim that takes a command commits, then its answer is lost.
    const claim = cluster.commands.claim.bind(cluster.commands);
    let lose = true;
    cluster.commands.claim = async (host, term) => {
      const claimed = await claim(host, term);
      if (claimed && lose) {
        lose = false;
        throw new Error("Connection terminated unexpectedly");
      }
      return claimed;
    };
    member = await startClusterMember({
      cluster,
      orchestrator: { views: async () => [] } as unknown as Orchestrator,
      fenceQemu: async () => [],
      capacity: { memoryBytes: 8 << 30, cpus: 2 },
      execute: async (command) => {
        ran.push(command);
        return { ran: command.method };
      },
      // Quiet renewals and observers: only the claim loop matters here.
      options: { leaseTtlMs: 60_000, fenceAfterMs: 60_000, observeEveryMs: 60_000 },
      warn: (message) => warnings.push(message),
    });

    const id = await cluster.commands.enqueue({
      vmId: "vm-1",
      host: "lab1",
      method: "qmp",
      args: ["vm-1", "query-status"],
      caller: {},
      idempotent: false,
    });
    const outcome = await waitUntil("the routed command's outcome", () => cluster.commands.outcome(id), Boolean, {
      timeoutMs: 15_000,
    });
    expect(lose).toBe(false); // the lost answer did happen
    expect(outcome).toEqual({ state: "done", result: { ran: "qmp" } });
    expect(ran.map((c) => c.id)).toEqual([id]);
    expect(ran[0]!.attempts).toBe(1);
    expect(warnings.some((w) => w.includes("claim failed: Connection terminated unexpectedly"))).toBe(true);
    // The throwaway server acknowledges commits before they are durable (PGlite does not): the
    // member says so at its join.
    const { rows } = await sql<{ s: string }>`select current_setting('synchronous_commit') as s`.execute(t.db);
    expect(warnings.some((w) => w.includes("synchronous_commit = off"))).toBe(rows[0]!.s === "off");

    // The VM's next command is not held behind it.
    const next = await cluster.commands.enqueue({
      vmId: "vm-1",
      host: "lab1",
      method: "start",
      args: ["vm-1", {}],
      caller: {},
      idempotent: true,
    });
    expect(
      await waitUntil("the next command's outcome", () => cluster.commands.outcome(next), Boolean, {
        timeoutMs: 15_000,
      }),
    ).toEqual({ state: "done", result: { ran: "start" } });
    expect(ran.map((c) => c.id)).toEqual([id, next]);
  });
});
