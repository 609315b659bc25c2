/**
 * Routing's dispatch without a database (the cluster and the runtime are stand-ins): a command a
 * member claimed for a VM that moved since it was queued runs nowhere and says so
 * (STALE_EPOCH, `reroute`), never routed on (it would wait for a claim its own running row
 * forbids); the caller that gets that answer sends the call where the VM is now.
 */
import { describe, expect, it } from "vitest";
import type { MaqetContext } from "../../src/api/maqet-context.ts";
import { executeRouted, withRouting } from "../../src/api/route-commands.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";
import type { ClaimedCommand, VmLocation } from "../../src/events/command-queue.ts";

function setUp(host: string, owners: string[], claims: Record<string, VmLocation> = {}) {
  const routed: Array<{ to: string; method: string; by: "name" | "id" }> = [];
  const local: string[] = [];
  const lookups: string[] = [];
  const nextOwner = () => (owners.length > 1 ? owners.shift() : owners[0]);
  const send = (to: string, method: string, by: "name" | "id") => {
    routed.push({ to, method, by });
    if (to === "a") {
      // a claimed it, but the VM had moved: it ran nothing.
      throw new MaqetError("STALE_EPOCH", "not mine", { details: { reroute: true, routedTo: "a" } });
    }
    return { ranOn: to };
  };
  const cluster = {
    host,
    ownerHost: async () => {
      lookups.push("owner");
      return nextOwner();
    },
    assertServing: () => undefined,
    route: async (_vmId: string, to: string, method: string) => send(to, method, "id"),
    // The caller's one statement: the owner, and the command queued there when it is another host.
    routeByName: async (name: string, method: string) => {
      const owner = nextOwner();
      if (owner !== undefined && owner !== host) return { routed: true, result: send(owner, method, "name") };
      return { routed: false, location: { vmId: `id-${name}`, name, ...(owner ? { owner: { host: owner } } : {}) } };
    },
    claimedLocation: (id: string) => claims[id],
  };
  const rt = {
    cluster,
    orchestrator: {
      find: async (name: string) => {
        lookups.push(`find ${name}`);
        return { vmId: `id-${name}`, name };
      },
    },
  };
  const ctxFor = (caller: MaqetContext["caller"]): MaqetContext =>
    ({
      options: {},
      caller,
      open: async () => rt,
      as: (next: MaqetContext["caller"]) => ctxFor(next),
    }) as unknown as MaqetContext;
  const base = (ctx: MaqetContext) => ({
    start: async (name: string) => {
      local.push(`${name} as ${ctx.caller?.user ?? "self"}`);
      return { ranOn: host };
    },
    as: (caller: MaqetContext["caller"]) => withRouting(ctxFor(caller), base(ctxFor(caller))),
  });
  const maqet = withRouting(ctxFor(undefined), base(ctxFor(undefined)));
  return { maqet, routed, local, lookups, cluster };
}

const claimed = (caller: Record<string, unknown>, host = "a"): ClaimedCommand => ({
  id: "cmd-1",
  vmId: "id-web",
  host,
  method: "start",
  args: ["web", {}],
  caller,
  idempotent: true,
  attempts: 2,
});

describe("routed commands", () => {
  it("a claimed command whose VM moved away runs nowhere and asks to be rerouted", async () => {
    const { maqet, routed, local } = setUp("a", ["b"]);
    const error = await executeRouted(maqet, claimed({ user: "alice" })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STALE_EPOCH", details: { reroute: true, host: "a", owner: "b" } });
    expect(routed).toEqual([]);
    expect(local).toEqual([]);
  });

  it("a claimed command of a VM owned here runs here, as its caller", async () => {
    const { maqet, routed, local } = setUp("a", ["a"]);
    expect(await executeRouted(maqet, claimed({ user: "alice" }))).toEqual({ ranOn: "a" });
    expect(local).toEqual(["web as alice"]);
    expect(routed).toEqual([]);
  });

  it("a claimed command whose claim read where its VM is looks nothing up again", async () => {
    const here = setUp("a", ["b"], {
      "cmd-1": { vmId: "id-web", name: "web", owner: { host: "a", epoch: 3, state: "up" } },
    });
    expect(await executeRouted(here.maqet, claimed({ user: "alice" }))).toEqual({ ranOn: "a" });
    expect(here.local).toEqual(["web as alice"]);
    expect(here.lookups).toEqual([]);

    // Moved away by the time it was claimed: it runs nowhere, and the caller is told where the VM is.
    const moved = setUp("a", ["a"], {
      "cmd-1": { vmId: "id-web", name: "web", owner: { host: "b", epoch: 4, state: "up" } },
    });
    const error = await executeRouted(moved.maqet, claimed({ user: "alice" })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STALE_EPOCH", details: { reroute: true, host: "a", owner: "b" } });
    expect(moved.local).toEqual([]);
    expect(moved.lookups).toEqual([]);
  });

  it("an HA recovery's own start (not from the queue) is routed to the VM's owner", async () => {
    const { maqet, routed, lookups } = setUp("c", ["b"]);
    expect(await executeRouted(maqet, claimed({ user: "maqet-ha" }, ""))).toEqual({ ranOn: "b" });
    expect(routed).toEqual([{ to: "b", method: "start", by: "name" }]);
    expect(lookups).toEqual([]);
  });

  it("the caller follows the VM: to its new owner, or here when it moved here", async () => {
    const elsewhere = setUp("c", ["a", "b"]);
    expect(await elsewhere.maqet.start("web")).toEqual({ ranOn: "b" });
    expect(elsewhere.routed.map((r) => r.to)).toEqual(["a", "b"]);

    const here = setUp("c", ["a", "c"]);
    expect(await here.maqet.start("web")).toEqual({ ranOn: "c" });
    expect(here.routed.map((r) => r.to)).toEqual(["a"]);
    expect(here.local).toEqual(["web as self"]);
  });

  it("the caller sends by name in one step, and looks the VM up only when the name claims do not know it", async () => {
    const named = setUp("c", ["b"]);
    expect(await named.maqet.start("web")).toEqual({ ranOn: "b" });
    expect(named.routed).toEqual([{ to: "b", method: "start", by: "name" }]);
    expect(named.lookups).toEqual([]);

    const unnamed = setUp("c", ["b"]);
    unnamed.cluster.routeByName = async () => ({ routed: false, location: undefined }) as never;
    expect(await unnamed.maqet.start("web")).toEqual({ ranOn: "b" });
    expect(unnamed.routed).toEqual([{ to: "b", method: "start", by: "id" }]);
    expect(unnamed.lookups).toEqual(["find web", "owner"]);
  });

  it("gives up after a few hops, with the owner's answer", async () => {
    const { maqet, routed } = setUp("c", ["a"]);
    await expect(maqet.start("web")).rejects.toMatchObject({ code: "STALE_EPOCH" });
    expect(routed.length).toBe(4);
  });
});
