/** The scheduler: fewest VMs, ties at random, filtered by state, draining, labels and free memory. */
import { describe, expect, it } from "vitest";
import { type HostCandidate, pickHost } from "../../src/actors/scheduler.ts";

const host = (name: string, over: Partial<HostCandidate> = {}): HostCandidate => ({
  name,
  state: "up",
  draining: false,
  labels: {},
  capacity: { memoryBytes: 8 * 2 ** 30, cpus: 4 },
  vms: 0,
  memoryUsedBytes: 0,
  ...over,
});

describe("pickHost", () => {
  it("picks the host with the fewest VMs", () => {
    expect(pickHost([host("a", { vms: 3 }), host("b", { vms: 1 }), host("c", { vms: 2 })]).host).toBe("b");
  });

  it("breaks ties with the random source", () => {
    const hosts = [host("a", { vms: 1 }), host("b", { vms: 1 }), host("c", { vms: 5 })];
    expect(pickHost(hosts, { random: () => 0 }).host).toBe("a");
    expect(pickHost(hosts, { random: () => 0.99 }).host).toBe("b");
    const seen = new Set(Array.from({ length: 200 }, () => pickHost(hosts).host));
    expect([...seen].sort()).toEqual(["a", "b"]);
  });

  it("skips hosts that are not up, draining, unlabelled or full; says why when none fits", () => {
    const hosts = [
      host("down", { state: "down" }),
      host("drained", { draining: true }),
      host("other-zone", { labels: { zone: "b" } }),
      host("full", { labels: { zone: "a" }, memoryUsedBytes: 8 * 2 ** 30 - 2 ** 20 }),
      host("ok", { labels: { zone: "a" }, vms: 9 }),
    ];
    expect(pickHost(hosts, { constraints: { zone: "a" }, memoryBytes: 2 ** 30 }).host).toBe("ok");
    let error: unknown;
    try {
      pickHost(hosts.slice(0, 4), { constraints: { zone: "a" }, memoryBytes: 2 ** 30 });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: "NO_HOST_AVAILABLE",
      details: {
        hosts: [
          { name: "down", reason: "it is down" },
          { name: "drained", reason: "it is draining" },
          { name: "other-zone", reason: "label zone=b, not a" },
          { name: "full", reason: expect.stringMatching(/not enough free memory/) },
        ],
      },
    });
    expect((error as Error).message).toMatch(/constraints: zone=a/);
  });

  it("never picks an excluded host", () => {
    expect(pickHost([host("a"), host("b", { vms: 4 })], { exclude: ["a"] }).host).toBe("b");
  });
});
