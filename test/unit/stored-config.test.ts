/**
 * The stored config form (src/config/stored-config.ts): an encoding that survives a store that
 * reorders object keys as jsonb does, legacy configs read as stored and flagged, and the parser's
 * refusal of whole-number keys that a JavaScript object would move.
 */
import { describe, expect, it } from "vitest";
import { buildQemuArgv } from "../../src/adapters/qemu-argv.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import { decodeStoredConfig, encodeStoredConfig } from "../../src/config/stored-config.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { asVmEvent, vmEvent } from "../../src/events/vm-events.ts";
import { toJsonb } from "../support/jsonb.ts";

const RUNTIME = {
  vmId: "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b",
  name: "vm",
  qmpSocket: "/run/m/qmp.sock",
  pidFile: "/run/m/qemu.pid",
};
const argvOf = (config: VmConfig): string[] => buildQemuArgv(config, RUNTIME, { kvmUsable: false });

const YAML = `memory: 64M
storage:
  - {name: d0, type: qcow2, file: /tmp/d0.qcow2, size: 1G, options: {preallocation: metadata, cluster_size: 64K}}
  - {name: share, type: virtfs, path: /tmp/share, options: {multidevs: remap, fmode: "0644"}}
arguments:
  - enable-kvm
  - netdev: user
    id: n0
    hostfwd: tcp::2222-:22
  - object: {rng-random: null, id: rng0, filename: /dev/urandom}
  - display: {gtk: null, zoom-to-fit: "on"}
  - device: virtio-net
    feat: [a, b]
  - boot: [order=c, menu=off]
`;

describe("stored config", () => {
  it("survives a jsonb round trip of the vm.defined event: same config, same argv", () => {
    const config = parseVmConfig(YAML, { baseDir: "/tmp" });
    const event = vmEvent("vm.defined", { vmId: RUNTIME.vmId, name: "vm", config });
    expect(event.schemaVersion).toBe(2);
    const stored = {
      ...event,
      data: toJsonb(event.data),
      streamId: "vm-x",
      streamVersion: 0,
      globalPosition: 1,
      recordedAt: new Date(),
    };
    const read = asVmEvent(stored);
    if (read?.type !== "vm.defined") throw new Error(`expected vm.defined, read ${read?.type}`);
    const back = read.data.config;
    expect(back).toEqual(config);
    expect(argvOf(back)).toEqual(argvOf(config));
    expect(argvOf(back)).toContain("user,id=n0,hostfwd=tcp::2222-:22");
    // Without the encoding, the same round trip loses the meaning (the bug this guards against).
    expect(argvOf(toJsonb(config) as VmConfig)).not.toEqual(argvOf(config));
  });

  it("encodes mappings as pairs and marks the form", () => {
    const stored = encodeStoredConfig({
      accel: "auto",
      args: [],
      storage: [],
      arguments: ["enable-kvm", { object: { "rng-random": null, id: "rng0" }, x: [1, { a: 2 }] }],
    });
    expect(stored.$ordered).toBe(1);
    expect(stored.arguments).toEqual([
      "enable-kvm",
      {
        pairs: [
          [
            "object",
            {
              pairs: [
                ["rng-random", null],
                ["id", "rng0"],
              ],
            },
          ],
          ["x", [1, { pairs: [["a", 2]] }]],
        ],
      },
    ]);
  });

  it("reads a schema 1 config as stored and flags the mappings whose order reaches the argv", () => {
    const legacy = toJsonb({
      accel: "auto",
      args: [],
      storage: [],
      arguments: [
        "enable-kvm",
        { smp: 2 },
        { netdev: "user", id: "n0" },
        { device: { driver: "e1000", netdev: "n0" } },
        { display: { gtk: null, "zoom-to-fit": "on" } },
      ],
    }) as VmConfig;
    const event = {
      type: "vm.defined",
      schemaVersion: 1,
      data: { vmId: RUNTIME.vmId, name: "vm", config: legacy },
      streamId: "vm-x",
      streamVersion: 0,
      globalPosition: 1,
      recordedAt: new Date(),
    };
    const read = asVmEvent(event);
    if (read?.type !== "vm.defined") throw new Error(`expected vm.defined, read ${read?.type}`);
    const config = read.data.config;
    expect(config.argumentOrderLost).toEqual(["arguments[2]", "arguments[4].display"]);
    // Read as stored: the argv it gave before (here the wrong one, which is why it is flagged).
    const { argumentOrderLost: _flag, ...asStored } = config;
    expect(asStored).toEqual(legacy);
    expect(decodeStoredConfig({ accel: "tcg", args: [], storage: [], arguments: [{ m: "1G" }] })).toEqual({
      accel: "tcg",
      args: [],
      storage: [],
      arguments: [{ m: "1G" }],
    });
  });

  it("refuses whole-number keys under arguments that a JavaScript object would move", () => {
    const refused = (() => {
      try {
        parseVmConfig("arguments:\n  - blockdev: {driver: quorum, 0: a}\n", { baseDir: "/tmp", source: "q.yaml" });
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeMaqetError("CONFIG_INVALID");
    expect((refused as Error).message).toContain("the key '0' at arguments[0].blockdev");
    expect((refused as Error).message).toContain("line 2");
    // In place (first, increasing) they are kept.
    const kept = parseVmConfig("arguments:\n  - blockdev: {0: a, 1: b, driver: q}\n", { baseDir: "/tmp" });
    expect(argvOf(kept).slice(-2)).toEqual(["-blockdev", "0=a,1=b,driver=q"]);
  });
});
