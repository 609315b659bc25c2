import { describe, expect, it } from "vitest";
import { foldVmEvents } from "../../src/actors/vm-view.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";
import { asVmEvent, vmEvent } from "../../src/events/vm-events.ts";
import { toJsonb } from "../support/jsonb.ts";

const stored = (event: ReturnType<typeof vmEvent>, version: number): StoredEvent => ({
  id: `e${version}`,
  streamId: "vm-1",
  streamVersion: version,
  globalPosition: version + 1,
  type: event.type,
  schemaVersion: event.schemaVersion,
  // What the store gives back: jsonb reorders every object's keys.
  data: toJsonb(event.data),
  metadata: { actor: { user: "ada", uid: 1000, host: "h", pid: 1 } },
  recordedAt: new Date(1_700_000_000_000 + version * 1000),
});

describe("vm.reconfigured", () => {
  const before = parseVmConfig("name: web\nmemory: 1G\narguments:\n  - netdev: user\n    id: n0\n", {
    baseDir: "/srv",
  });
  const after = parseVmConfig(
    "name: web\nmemory: 2G\narguments:\n  - netdev: user\n    id: n0\n  - device: {driver: virtio-net-pci, netdev: n0}\n",
    { baseDir: "/srv" },
  );

  it("keeps both configs' argument key order through the store, and the fold takes `after` on the same stream", () => {
    const events = [
      stored(vmEvent("vm.defined", { vmId: "1", name: "web", config: before }), 0),
      stored(
        vmEvent("vm.reconfigured", {
          before,
          after,
          changed: ["arguments", "memory"],
          via: "apply",
          reason: "more room",
        }),
        1,
      ),
    ];
    const change = asVmEvent(events[1]!);
    expect(change?.schemaVersion).toBe(2);
    expect(change?.type === "vm.reconfigured" && change.data.after).toEqual(after);
    expect(change?.type === "vm.reconfigured" && change.data.before).toEqual(before);
    const first = (change?.type === "vm.reconfigured" && change.data.after.arguments[0]) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual(["netdev", "id"]); // -netdev user,id=n0, not -id n0,netdev=user

    const view = foldVmEvents(events)!;
    expect(view).toMatchObject({ vmId: "1", name: "web", version: 1, status: "stopped" });
    expect(view.config).toEqual(after);
    expect(foldVmEvents(events.slice(0, 1))!.config).toEqual(before);
  });

  it("reads a schema 1 event (plain configs) as stored", () => {
    const legacy: StoredEvent = {
      ...stored(vmEvent("vm.defined", { vmId: "1", name: "web", config: before }), 0),
      type: "vm.reconfigured",
      schemaVersion: 1,
      data: { before: { ...before }, after: { ...after }, changed: ["memory"], via: "apply", reason: "r" },
    };
    const change = asVmEvent(legacy);
    expect(change?.type === "vm.reconfigured" && change.data.after.memory).toBe("2G");
  });
});
