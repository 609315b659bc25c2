/**
 * The stored config form's edges (src/config/stored-config.ts): disks and shares with and without
 * their option mappings, values the encoding leaves alone, and which legacy configs (stored before
 * the encoding, key order lost) are flagged, at which key paths.
 */
import { describe, expect, it } from "vitest";
import { decodeStoredConfig, encodeStoredConfig } from "../../src/config/stored-config.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";

const base: VmConfig = { accel: "auto", args: [], arguments: [], storage: [] };
const disk = { name: "d0", type: "qcow2", file: "/v/d0.qcow2", interface: "virtio" } as VmConfig["storage"][number];
const share = {
  name: "s",
  path: "/srv/s",
  mountTag: "s",
  id: "s",
  securityModel: "mapped-xattr",
  readonly: false,
} as NonNullable<VmConfig["shares"]>[number];

describe("stored config: disks, shares and values", () => {
  const config: VmConfig = {
    ...base,
    storage: [disk, { ...disk, name: "d1", options: { cluster_size: "64K", lazy_refcounts: true } }],
    shares: [share, { ...share, name: "t", extra: { multidevs: "remap", fmode: "0644" } }],
    arguments: ["enable-kvm", { boot: [{ order: "c" }, "menu=off", 3, null] }, { smp: { cpus: 2, sockets: 1 } }],
  };

  it("a disk or share without options is stored without them; with them, as ordered pairs", () => {
    const stored = encodeStoredConfig(config);
    expect(stored.storage).toStrictEqual([
      disk,
      {
        ...disk,
        name: "d1",
        options: [
          ["cluster_size", "64K"],
          ["lazy_refcounts", true],
        ],
      },
    ]);
    expect(stored.shares).toStrictEqual([
      share,
      {
        ...share,
        name: "t",
        extra: [
          ["multidevs", "remap"],
          ["fmode", "0644"],
        ],
      },
    ]);
    expect(stored.arguments[1]).toStrictEqual({
      pairs: [["boot", [{ pairs: [["order", "c"]] }, "menu=off", 3, null]]],
    });
  });

  it("decodes back to the same config, exactly", () => {
    expect(decodeStoredConfig(encodeStoredConfig(config))).toStrictEqual(config);
    expect(decodeStoredConfig(encodeStoredConfig(base))).toStrictEqual(base);
    expect("shares" in encodeStoredConfig(base)).toBe(false);
  });

  it("an argument mapping not written as pairs is left as read", () => {
    const stored = { $ordered: 1, ...base, arguments: [{ netdev: "user" }, { pairs: [["x", { y: 1 }]] }] };
    expect(decodeStoredConfig(stored).arguments).toStrictEqual([{ netdev: "user" }, { x: { y: 1 } }]);
  });

  it("a stored form without its lists reads as empty lists", () => {
    const { arguments: _a, storage: _s, ...rest } = encodeStoredConfig(base);
    expect(decodeStoredConfig(rest)).toStrictEqual(base);
  });
});

describe("legacy stored configs, without the ordered marker: where the lost order mattered", () => {
  const legacy = (args: unknown[]) => decodeStoredConfig({ ...base, arguments: args });

  it("a legacy config whose order did not matter is returned as read", () => {
    const read = { ...base, arguments: ["enable-kvm", { m: "1G" }, { smp: { cpus: 2, sockets: 1 } }] };
    expect(decodeStoredConfig(read)).toBe(read);
  });

  it("flags an item with several keys, and nested mappings with a bare word among several keys", () => {
    expect(
      legacy([
        "enable-kvm",
        { netdev: "user", id: "n0" },
        { object: { "rng-random": null, id: "rng0" } },
        { display: { gtk: {}, zoom: "on" } },
        { boot: [{ menu: null, order: "c" }] },
      ]).argumentOrderLost,
    ).toStrictEqual(["arguments[1]", "arguments[2].object", "arguments[3].display", "arguments[4].boot[0]"]);
  });

  it("does not flag nested mappings whose order cannot show", () => {
    for (const item of [
      { object: { "rng-random": null } }, // one key
      { display: { gtk: "on", zoom: "on" } }, // no bare word
      { display: { a: [], b: "on" } }, // an empty list is no bare word
      { display: { a: { c: 1 }, b: "on" } }, // nor a mapping with keys
      { x: "a" },
    ]) {
      expect(legacy([item]).argumentOrderLost).toBeUndefined();
    }
  });

  it("looks deeper: a bare word two levels down is flagged at its path", () => {
    expect(legacy([{ a: { b: { c: null, d: 1 } } }]).argumentOrderLost).toStrictEqual(["arguments[0].a.b"]);
    expect(legacy([{ a: [[{ c: null, d: 1 }]] }]).argumentOrderLost).toStrictEqual(["arguments[0].a[0][0]"]);
  });
});
