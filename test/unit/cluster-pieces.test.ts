/**
 * Cluster pieces without a database: the epoch stamping view of a store, the STALE_EPOCH error
 * made from the database's refusal, the agent's cluster flags, and label parsing.
 */
import { describe, expect, it } from "vitest";
import { parseAgentArgs } from "../../src/agent/agent-args.ts";
import { labelsOf } from "../../src/api/commands/host-commands.ts";
import { stampEpochs } from "../../src/events/epoch-stamping-store.ts";
import type { EventStore } from "../../src/events/event-store.ts";
import { isStaleEpochViolation, STALE_EPOCH_STATE, staleEpochError } from "../../src/events/stale-epoch.ts";
import { MemoryEventStore } from "../support/memory-event-store.ts";

describe("stampEpochs", () => {
  it("stamps the held epoch on VM streams only, and keeps an epoch an event already carries", async () => {
    const inner: EventStore = new MemoryEventStore();
    const held = new Map([["vm-1", 3]]);
    const store = stampEpochs(inner, (s) => (s.startsWith("vm-") ? (held.get(s) ?? 0) : undefined));
    await store.append("vm-1", [{ type: "vm.reset", schemaVersion: 1, data: {} }]);
    await store.append("vm-2", [{ type: "vm.reset", schemaVersion: 1, data: {} }]);
    await store.append("vm-1", [{ type: "vm.placed", schemaVersion: 1, data: {}, metadata: { epoch: 4 } }]);
    await store.append("host-a", [{ type: "host.joined", schemaVersion: 1, data: {} }]);
    expect((await inner.readStream("vm-1")).map((e) => e.metadata.epoch)).toEqual([3, 4]);
    expect((await inner.readStream("vm-2"))[0]!.metadata.epoch).toBe(0);
    expect((await inner.readStream("host-a"))[0]!.metadata.epoch).toBeUndefined();
    expect(await store.streamVersion("vm-1")).toBe(1);
  });
});

describe("STALE_EPOCH", () => {
  it("is made from the database's refusal, naming the stream, both epochs and the owner", () => {
    const dbError = Object.assign(new Error("stale owner epoch"), {
      code: STALE_EPOCH_STATE,
      detail: JSON.stringify({ streamId: "vm-1", epoch: 1, currentEpoch: 2, owner: "lab2" }),
    });
    expect(isStaleEpochViolation(dbError)).toBe(true);
    expect(isStaleEpochViolation(new Error("other"))).toBe(false);
    const error = staleEpochError(dbError);
    expect(error).toMatchObject({ code: "STALE_EPOCH", details: { streamId: "vm-1", epoch: 1, currentEpoch: 2 } });
    expect(error.message).toMatch(/holds owner epoch 1, but the VM is now at epoch 2 \(owner: lab2\)/);
    expect(error.exitCode).toBe(1);
  });
});

describe("maqet agent cluster flags", () => {
  it("parses --host, repeated --label, --lease-ttl and --fence-after", () => {
    const args = parseAgentArgs([
      "--host",
      "lab1",
      "--label",
      "zone=a",
      "--label=disk=ssd",
      "--lease-ttl",
      "4",
      "--fence-after",
      "2.5",
    ]);
    expect(args).toMatchObject({ host: "lab1", labels: ["zone=a", "disk=ssd"], leaseTtlMs: 4000, fenceAfterMs: 2500 });
    expect(parseAgentArgs([]).labels).toEqual([]);
  });

  it("refuses a bad host name or duration with the flag named", () => {
    expect(() => parseAgentArgs(["--host", "-x"])).toThrow(/--host takes a host name/);
    expect(() => parseAgentArgs(["--host", "a/b"])).toThrow(/--host/);
    expect(() => parseAgentArgs(["--lease-ttl", "0.5"])).toThrow(
      /--lease-ttl must be a number of seconds \(at least 1\)/,
    );
    expect(() => parseAgentArgs(["--fence-after", "x"])).toThrow(/--fence-after/);
  });

  it("labels are KEY=VALUE", () => {
    expect(labelsOf(["zone=a", "rack=r-1/2"], "--label")).toEqual({ zone: "a", rack: "r-1/2" });
    expect(() => labelsOf(["zone"], "--label")).toThrow(/--label takes KEY=VALUE.*got 'zone'/);
    expect(() => labelsOf(["a=b c"], "--constraint")).toThrow(/--constraint/);
  });
});
