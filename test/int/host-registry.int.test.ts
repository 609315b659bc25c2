/**
 * Hosts in the database, on PGlite and on the PostgreSQL server: join under a rising term, a
 * lease renewed and judged by the database clock, the observers' transitions (suspected, down,
 * fenced after the grace) recorded once each in the host's stream, and the operator's commands.
 */
import { describe, expect, it } from "vitest";
import type { EventMetadata } from "../../src/events/envelope.ts";
import { HostRegistry, type JoinRequest } from "../../src/events/host-registry.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { waitUntil } from "../support/poll.ts";
import { openPerTest, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const meta = (): EventMetadata => ({ actor: { user: "t", uid: 1, host: "observer", pid: 1 }, source: "test" });
const request = (name: string, leaseTtlMs = 60_000, fenceAfterMs = 1000): JoinRequest => ({
  name,
  labels: { zone: "a" },
  capacity: { memoryBytes: 8 * 2 ** 30, cpus: 4 },
  leaseTtlMs,
  fenceAfterMs,
});

describe.each(testDatabases())("hosts on $name", (dialect) => {
  const fresh = openPerTest(dialect);
  let t: TestDatabase | undefined;
  let store: PostgresEventStore | undefined;
  async function setup(): Promise<HostRegistry> {
    ({ t, store } = await fresh());
    return new HostRegistry(t.db, meta);
  }
  const types = async (host: string) => (await store!.readStream(`host-${host}`)).map((e) => e.type);

  it("join, renew, list; a re-join raises the term and the old term renews nothing", async () => {
    const hosts = await setup();
    expect(await hosts.join(request("lab1"))).toEqual({ term: 1 });
    expect(await hosts.renew("lab1", 1)).toEqual({ ok: true });
    const [lab1] = await hosts.list();
    expect(lab1).toMatchObject({
      name: "lab1",
      state: "up",
      labels: { zone: "a" },
      capacity: { memoryBytes: 8 * 2 ** 30, cpus: 4 },
      vms: 0,
      draining: false,
      term: 1,
    });
    expect(lab1!.expiredMs).toBeLessThan(-50_000);
    expect(await hosts.join(request("lab1"))).toEqual({ term: 2 });
    expect(await hosts.renew("lab1", 1)).toEqual({ ok: false, reason: "superseded" });
    expect(await hosts.renew("nope", 1)).toEqual({ ok: false, reason: "unknown" });
    await hosts.leave("lab1", 2);
    expect((await hosts.get("lab1")).state).toBe("left");
    expect(await hosts.renew("lab1", 2)).toEqual({ ok: false, reason: "left" });
    expect(await types("lab1")).toEqual(["host.joined", "host.joined", "host.left"]);
    await expect(hosts.get("lab9")).rejects.toMatchObject({ code: "HOST_NOT_FOUND", message: /Known hosts: lab1/ });
  });

  it("an expired lease: suspected, down, then fenced after the grace, each recorded once", async () => {
    const hosts = await setup();
    await hosts.join(request("gone", 300, 300));
    await hosts.join(request("alive"));
    // Two observers polling at once record each transition once.
    const other = new HostRegistry(t!.db, meta);
    await waitUntil(
      "gone fenced",
      async () => {
        await Promise.all([hosts.observe(), other.observe()]);
        return (await hosts.get("gone")).state === "fenced";
      },
      Boolean,
      { timeoutMs: 20_000 },
    );
    expect(await types("gone")).toEqual(["host.joined", "host.suspected", "host.down", "host.fenced"]);
    const fenced = (await store!.readStream("host-gone")).at(-1)!;
    expect(fenced.data).toMatchObject({ method: "grace" });
    const down = (await store!.readStream("host-gone"))[2]!;
    expect((down.data as { expiredMs: number }).expiredMs).toBeGreaterThanOrEqual(150);
    expect((await hosts.get("alive")).state).toBe("up");
    expect(await types("alive")).toEqual(["host.joined"]);
    // A fenced host's renewal fails: it must not believe it still owns anything.
    expect(await hosts.renew("gone", 1)).toEqual({ ok: false, reason: "fenced", fenceMethod: "grace" });
  });

  it("mark-dead is refused while the lease is valid; drain, restore and rm", async () => {
    const hosts = await setup();
    await hosts.join(request("lab2"));
    await expect(hosts.markDead("lab2")).rejects.toMatchObject({ code: "HOST_INVALID_STATE", message: /alive/ });
    await expect(hosts.remove("lab2")).rejects.toMatchObject({ code: "HOST_INVALID_STATE" });
    expect((await hosts.setDraining("lab2", true)).draining).toBe(true);
    expect((await hosts.setDraining("lab2", false)).draining).toBe(false);
    await hosts.join(request("lab3", 200, 60_000));
    await waitUntil("lab3 expired", async () => (await hosts.get("lab3")).state !== "up", Boolean, {
      timeoutMs: 10_000,
    });
    const dead = await hosts.markDead("lab3");
    expect(dead).toMatchObject({ state: "fenced", fenceMethod: "mark-dead" });
    await hosts.remove("lab3");
    expect((await hosts.list()).map((h) => h.name)).toEqual(["lab2"]);
    expect(await types("lab2")).toEqual(["host.joined", "host.drain-requested", "host.restored"]);
    expect(await types("lab3")).toEqual(["host.joined", "host.fenced", "host.left"]);
  });
});
