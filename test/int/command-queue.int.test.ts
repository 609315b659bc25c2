/**
 * The routed-command queue on PGlite and on the PostgreSQL server: claimed oldest first, one
 * running command per VM (the next waits), the outcome written only under the claim, and the
 * commands of a dead incarnation re-queued (idempotent) or failed (not), never run twice: at its
 * host's re-join, or by the sweep of orphaned claims once the incarnation is over for certain.
 * The round trips of a routed command: the caller's one statement (find the VM's owner and, when
 * it is another host that is up, queue the command and wake it), the claim that reads where the
 * VM is, and the outcome carried in the caller's wake-up.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import {
  COMMAND_DONE_CHANNEL,
  COMMANDS_CHANNEL,
  CommandQueue,
  type NewCommand,
} from "../../src/events/command-queue.ts";
import { waitUntil } from "../support/poll.ts";
import { type TestDatabase, testDatabases } from "../support/test-databases.ts";

const command = (vmId: string, method: string, idempotent: boolean, host = "c"): NewCommand => ({
  vmId,
  host,
  method,
  args: [vmId, {}],
  caller: { user: "alice" },
  idempotent,
});

describe.each(testDatabases())("routed commands on $name", ({ open }) => {
  let t: TestDatabase | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("oldest first, one running command per VM, outcome only under the claim", async () => {
    t = await open();
    const queue = new CommandQueue(t.db);
    const first = await queue.enqueue(command("vm1", "start", true));
    const second = await queue.enqueue(command("vm1", "qmp", false));
    const other = await queue.enqueue(command("vm2", "stop", true));
    await queue.enqueue(command("vm3", "stop", true, "elsewhere"));

    const a = await queue.claim("c", 1);
    expect(a).toMatchObject({ id: first, method: "start", args: ["vm1", {}], caller: { user: "alice" }, attempts: 1 });
    // vm1 has a command running: its next one waits; vm2's goes.
    const b = await queue.claim("c", 1);
    expect(b?.id).toBe(other);
    expect(await queue.claim("c", 1)).toBeUndefined();
    expect(await queue.outcome(first)).toBeUndefined();

    // An outcome under another term (a stale incarnation) is not written.
    expect(await queue.finish(first, "c", 2, { state: "done", result: { ok: 1 } })).toBe(false);
    expect(await queue.finish(first, "c", 1, { state: "done", result: { state: "running" } })).toBe(true);
    expect(await queue.outcome(first)).toEqual({ state: "done", result: { state: "running" } });
    // Written once: a second finish changes nothing.
    expect(await queue.finish(first, "c", 1, { state: "done", result: { again: true } })).toBe(false);
    expect(await queue.outcome(first)).toEqual({ state: "done", result: { state: "running" } });

    const c = await queue.claim("c", 1);
    expect(c?.id).toBe(second);
    await queue.finish(second, "c", 1, {
      state: "failed",
      error: { code: "QMP_ERROR", message: "nope", details: { command: "x" } },
    });
    expect(await queue.outcome(second)).toEqual({
      state: "failed",
      error: { code: "QMP_ERROR", message: "nope", details: { command: "x" } },
    });
  });

  it("a dead incarnation's commands: idempotent ones re-queued, the others failed", async () => {
    t = await open();
    const queue = new CommandQueue(t.db);
    const start = await queue.enqueue(command("vm1", "start", true));
    const reset = await queue.enqueue(command("vm2", "reset", false));
    await queue.claim("c", 4);
    await queue.claim("c", 4);
    // The agent of term 4 died; term 5 joins.
    expect(await queue.rescue("c", 5)).toEqual({ requeued: 1, failed: 1 });
    expect(await queue.outcome(reset)).toMatchObject({ state: "failed", error: { code: "HOST_LEASE_LOST" } });
    const again = await queue.claim("c", 5);
    expect(again).toMatchObject({ id: start, attempts: 2 });
    // The old incarnation, should it wake, cannot write an outcome any more.
    expect(await queue.finish(start, "c", 4, { state: "done", result: null })).toBe(false);
    expect(await queue.finish(start, "c", 5, { state: "done", result: null })).toBe(true);
  });

  it("a fenced host's queued commands fail; what it was running is the sweep's", async () => {
    t = await open();
    const queue = new CommandQueue(t.db);
    const running = await queue.enqueue(command("vm1", "start", true));
    const queued = await queue.enqueue(command("vm1", "stop", true));
    await queue.claim("c", 1);
    expect(await queue.failHost("c", "was fenced")).toBe(1);
    expect(await queue.outcome(queued)).toMatchObject({
      state: "failed",
      error: { code: "HOST_LEASE_LOST", message: expect.stringMatching(/Host 'c' was fenced/) },
    });
    expect(await queue.outcome(running)).toBeUndefined();
    expect(await queue.claim("c", 1)).toBeUndefined();
    expect(await queue.finish(running, "c", 1, { state: "done", result: null })).toBe(true);
    // Finished commands are forgotten after a while (their facts stay in the streams).
    expect(await queue.prune(3_600_000)).toBe(0);
    expect(await queue.prune(0)).toBe(2);
    expect(await queue.outcome(running)).toMatchObject({ state: "failed", error: { code: "INTERNAL" } });
  });

  it("orphaned claims: re-queued (to the VM's owner now) or failed by rule once their incarnation is over, never before", async () => {
    t = await open();
    const db = t.db;
    const queue = new CommandQueue(db);
    const host = (name: string, term: number, fenced = false) =>
      sql`insert into maqet_hosts (name, term, lease_ttl_ms, fence_after_ms, lease_expires_at, fenced_at)
          values (${name}, ${term}, 3000, 2000, clock_timestamp(), ${fenced ? sql`clock_timestamp()` : null})`.execute(
        db,
      );
    const place = (vmId: string, on: string) =>
      sql`insert into maqet_placements (stream_id, vm_id, host, epoch, reason)
          values (${`vm-${vmId}`}, ${vmId}, ${on}, 2, 'recovery')`.execute(db);
    // c claimed four commands under term 1; d two, and d is fenced since.
    const startOnC = await queue.enqueue(command("vm1", "start", true));
    const resetOnC = await queue.enqueue(command("vm2", "reset", false));
    const stopOnD = await queue.enqueue(command("vm3", "stop", true, "d"));
    const qmpOnD = await queue.enqueue(command("vm4", "qmp", false, "d"));
    for (let i = 0; i < 2; i++) {
      await queue.claim("c", 1);
      await queue.claim("d", 7);
    }
    await host("c", 1);
    await host("d", 7, true);
    await host("b", 1);
    await place("vm3", "b"); // vm3 was recovered onto b while d was away
    // c's incarnation is live (late, maybe: it may still finish), d's is over (fenced).
    expect(await queue.sweepOrphans()).toEqual({ requeued: 1, failed: 1 });
    expect(await queue.outcome(qmpOnD)).toMatchObject({ state: "failed", error: { code: "HOST_LEASE_LOST" } });
    expect(await queue.claim("d", 8)).toBeUndefined();
    expect(await queue.claim("b", 1)).toMatchObject({ id: stopOnD, host: "b", attempts: 2 });
    expect(await queue.outcome(startOnC)).toBeUndefined();
    // c re-joined (term 2) and its own rescue did not happen (the database was out of reach).
    await sql`update maqet_hosts set term = 2 where name = 'c'`.execute(db);
    expect(await queue.sweepOrphans()).toEqual({ requeued: 1, failed: 1 });
    expect(await queue.outcome(resetOnC)).toMatchObject({ state: "failed", error: { code: "HOST_LEASE_LOST" } });
    // The old claim cannot write an outcome any more; the new one runs it.
    expect(await queue.finish(startOnC, "c", 1, { state: "done", result: null })).toBe(false);
    expect(await queue.claim("c", 2)).toMatchObject({ id: startOnC, attempts: 2 });
    expect(await queue.finish(startOnC, "c", 2, { state: "done", result: null })).toBe(true);
    // b's claim is live: nothing left to sweep.
    expect(await queue.sweepOrphans()).toEqual({ requeued: 0, failed: 0 });
  });

  it("the caller's one statement: queued only for another host that is up, with the VM id first and a wake-up", async () => {
    t = await open();
    const db = t.db;
    const queue = new CommandQueue(db);
    const woken: string[] = [];
    const unlisten = await t.listen(COMMANDS_CHANNEL, (payload) => woken.push(payload));
    try {
      await sql`insert into maqet_hosts (name, term, lease_ttl_ms, fence_after_ms, lease_expires_at, fenced_at)
                values ('a', 1, 10000, 5000, clock_timestamp() + interval '10 seconds', null),
                       ('b', 1, 10000, 5000, clock_timestamp() + interval '10 seconds', null),
                       ('d', 1, 10000, 5000, clock_timestamp() - interval '1 minute', clock_timestamp())`.execute(db);
      const vm = async (name: string, vmId: string, host?: string) => {
        await sql`insert into maqet_vm_names (name, vm_id, stream_id, claimed_at)
                  values (${name}, ${vmId}, ${`vm-${vmId}`}, 1)`.execute(db);
        if (host) {
          await sql`insert into maqet_placements (stream_id, vm_id, host, epoch, reason)
                    values (${`vm-${vmId}`}, ${vmId}, ${host}, 3, 'new')`.execute(db);
        }
      };
      await vm("web", "id-web", "b");
      await vm("db", "id-db", "a");
      await vm("loose", "id-loose");
      await vm("gone", "id-gone", "d");
      const send = (nameOrId: string) =>
        queue.enqueueByName("a", {
          nameOrId,
          method: "qmp",
          args: ["query-status", null],
          caller: { user: "alice" },
          idempotent: false,
        });
      const count = async () =>
        Number((await sql<{ n: string }>`select count(*) as n from maqet_commands`.execute(db)).rows[0]!.n);

      // Owned by b, up: queued for b (by name or by id), the VM id first in its arguments.
      expect(await send("web")).toEqual({
        location: {
          vmId: "id-web",
          name: "web",
          owner: { host: "b", epoch: 3, state: "up", lastRenewal: expect.any(String) },
        },
        queued: true,
      });
      expect(await send("id-web")).toMatchObject({ location: { name: "web" }, queued: true });
      const claimed = await queue.claim("b", 1);
      expect(claimed).toMatchObject({
        vmId: "id-web",
        host: "b",
        method: "qmp",
        args: ["id-web", "query-status", null],
        caller: { user: "alice" },
      });
      await waitUntil("the two wake-ups of host b", () => woken.length >= 2);
      expect(woken).toEqual(["b", "b"]);
      // Owned here, not placed, its owner fenced, or no such VM: nothing queued, and nobody woken.
      expect(await send("db")).toMatchObject({ location: { vmId: "id-db", owner: { host: "a" } }, queued: false });
      expect(await send("loose")).toEqual({ location: { vmId: "id-loose", name: "loose" }, queued: false });
      expect(await send("gone")).toMatchObject({ location: { owner: { host: "d", state: "fenced" } }, queued: false });
      expect(await send("nope")).toEqual({ location: undefined, queued: false });
      expect(await count()).toBe(2);
      expect(woken).toEqual(["b", "b"]);
    } finally {
      await unlisten();
    }
  });

  it("the claim reads where the VM is and whether more can be claimed; the outcome rides on the caller's wake-up", async () => {
    t = await open();
    const db = t.db;
    const queue = new CommandQueue(db);
    const done: string[] = [];
    const unlisten = await t.listen(COMMAND_DONE_CHANNEL, (payload) => done.push(payload));
    try {
      await sql`insert into maqet_hosts (name, term, lease_ttl_ms, fence_after_ms, lease_expires_at)
                values ('c', 1, 10000, 5000, clock_timestamp() + interval '10 seconds')`.execute(db);
      await sql`insert into maqet_vm_names (name, vm_id, stream_id, claimed_at) values ('web', 'vm1', 'vm-vm1', 1)`.execute(
        db,
      );
      await sql`insert into maqet_placements (stream_id, vm_id, host, epoch, reason) values ('vm-vm1', 'vm1', 'c', 2, 'new')`.execute(
        db,
      );
      const first = await queue.enqueue(command("vm1", "qmp", false));
      const behind = await queue.enqueue(command("vm1", "stop", true));
      const other = await queue.enqueue(command("vm2", "start", true));

      // vm1's next command waits behind the first; vm2's can go: more.
      expect(await queue.claim("c", 1)).toMatchObject({
        id: first,
        located: { vmId: "vm1", name: "web", owner: { host: "c", epoch: 2, state: "up" } },
        more: true,
      });
      // vm2 has no name (never defined here): no location. Nothing else claimable now.
      const second = await queue.claim("c", 1);
      expect(second).toMatchObject({ id: other, more: false });
      expect(second?.located).toBeUndefined();

      // Finishing vm1's first says its next one waits; the outcome travels with the wake-up.
      const result = { status: "running", running: true, note: "é".repeat(10) };
      expect(await queue.complete(first, "c", 1, { state: "done", result })).toEqual({ finished: true, waiting: true });
      expect(await queue.complete(other, "c", 1, { state: "failed", error: { code: "X", message: "no" } })).toEqual({
        finished: true,
        waiting: false,
      });
      await waitUntil("the outcomes' wake-ups", () => done.length >= 2);
      expect(CommandQueue.outcomeIn(first, done[0]!)).toEqual({ state: "done", result });
      expect(CommandQueue.outcomeIn(other, done[1]!)).toEqual({ state: "failed", error: { code: "X", message: "no" } });
      expect(CommandQueue.outcomeIn(first, done[1]!)).toBeUndefined();
      expect(await queue.claim("c", 1)).toMatchObject({ id: behind, more: false });

      // Too big for a NOTIFY (8000 bytes; counted in bytes, not characters): the wake-up names the
      // command only, and the caller reads the row.
      const big = { text: "é".repeat(4000) };
      expect(await queue.complete(behind, "c", 1, { state: "done", result: big })).toEqual({
        finished: true,
        waiting: false,
      });
      await waitUntil("the big outcome's wake-up", () => done.length >= 3);
      expect(done[2]).toBe(behind);
      expect(CommandQueue.outcomeIn(behind, done[2]!)).toBe("read");
      expect(await queue.outcome(behind)).toEqual({ state: "done", result: big });
    } finally {
      await unlisten();
    }
  });
});
