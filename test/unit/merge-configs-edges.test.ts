/**
 * The edges of merging configs (src/config/merge-configs.ts): argument keys, items without a key,
 * storage and shares by name only at the top, relative paths in every place they may appear, the
 * flags as a layer, and what an `apply` takes from its change.
 */
import { describe, expect, it } from "vitest";
import {
  applyConfigChange,
  argumentKey,
  mergeArguments,
  mergeConfigValues,
  overridesLayer,
  resolveLayerPaths,
} from "../../src/config/merge-configs.ts";

describe("argumentKey", () => {
  it("is the flag or first key, leading dashes and anything after a space dropped", () => {
    expect(argumentKey("--enable-kvm")).toBe("enable-kvm");
    expect(argumentKey("m 2G")).toBe("m");
    expect(argumentKey({ "--display": "gtk", zoom: "on" })).toBe("display");
  });

  it("has none for an empty mapping or a value that is not an item", () => {
    expect(argumentKey({})).toBeUndefined();
    expect(argumentKey(null)).toBeUndefined();
    expect(argumentKey(7)).toBeUndefined();
  });
});

describe("mergeArguments", () => {
  it("keeps items without a key in place, and appends the later ones", () => {
    expect(mergeArguments([{}, { m: "1G" }], [{ m: "2G" }, {}])).toStrictEqual([{}, { m: "2G" }, {}]);
  });

  it("puts a later key once, at the place of the first earlier item with it", () => {
    expect(mergeArguments([{ m: "1G" }, { smp: 2 }, { m: "3G" }], [{ m: "2G" }])).toStrictEqual([
      { m: "2G" },
      { smp: 2 },
    ]);
  });
});

describe("mergeConfigValues", () => {
  it("storage entries without a name, or that are not entries, are appended", () => {
    const merged = mergeConfigValues(
      { storage: [null, { name: "a", file: "/1" }] },
      { storage: [{ file: "/x" }, null, { name: "a", file: "/2" }] },
    );
    expect(merged.storage).toStrictEqual([null, { name: "a", file: "/2" }, { file: "/x" }, null]);
  });

  it("shares merge by name like storage; lists with those names deeper down concatenate", () => {
    expect(
      mergeConfigValues({ shares: [{ name: "s", path: "/1" }] }, { shares: [{ name: "s", path: "/2" }] }),
    ).toStrictEqual({
      shares: [{ name: "s", path: "/2" }],
    });
    expect(mergeConfigValues({ x: { storage: [{ name: "a" }] } }, { x: { storage: [{ name: "a" }] } })).toStrictEqual({
      x: { storage: [{ name: "a" }, { name: "a" }] },
    });
  });

  it("a mapping replaces a scalar, and a scalar a mapping", () => {
    expect(mergeConfigValues({ a: "x", b: { c: 1 } }, { a: { b: 1 }, b: "y" })).toStrictEqual({ a: { b: 1 }, b: "y" });
  });
});

describe("resolveLayerPaths", () => {
  it("leaves absolute, home-relative and empty paths alone; resolves . and ..", () => {
    expect(resolveLayerPaths({ kernel: "~/vmlinuz", initrd: "" }, "/srv/web")).toStrictEqual({
      kernel: "~/vmlinuz",
      initrd: "",
    });
    expect(resolveLayerPaths({ kernel: "./k/../vmlinuz", initrd: "../initrd.img" }, "/srv/web")).toStrictEqual({
      kernel: "/srv/web/vmlinuz",
      initrd: "/srv/initrd.img",
    });
  });

  it("resolves file= in argument strings and mappings, file: keys, and nothing else", () => {
    const value = {
      arguments: [
        "file=d.img,format=raw",
        { drive: "if=virtio,file=data/d.qcow2,,x,cache=none", n: 3, list: ["file=a"] },
        { blockdev: { driver: "file", file: "x.raw", node: { file: "y.raw" } } },
        7,
      ],
    };
    expect(resolveLayerPaths(value, "/srv/web").arguments).toStrictEqual([
      "file=/srv/web/d.img,format=raw",
      { drive: "if=virtio,file=/srv/web/data/d.qcow2,,x,cache=none", n: 3, list: ["file=a"] },
      { blockdev: { driver: "file", file: "/srv/web/x.raw", node: { file: "/srv/web/y.raw" } } },
      7,
    ]);
  });

  it("a named qcow2 or raw disk without file gets <name>.<type> here; paths of VirtFS shares only", () => {
    const storage = [
      { name: "a", type: "qcow2" },
      { name: "b", type: "raw", file: null },
      { type: "qcow2" },
      { name: "c", type: "virtfs", path: "share" },
      { name: "d", type: "qcow2", file: "d.qcow2", path: "not-a-share" },
      null,
    ];
    expect(resolveLayerPaths({ storage }, "/srv/web").storage).toStrictEqual([
      { name: "a", type: "qcow2", file: "/srv/web/a.qcow2" },
      { name: "b", type: "raw", file: "/srv/web/b.raw" },
      { type: "qcow2" },
      { name: "c", type: "virtfs", path: "/srv/web/share" },
      { name: "d", type: "qcow2", file: "/srv/web/d.qcow2", path: "not-a-share" },
      null,
    ]);
  });
});

describe("overridesLayer", () => {
  it("no flag is an empty layer", () => {
    expect(overridesLayer({}, { arguments: [{ m: "2G" }, { smp: 2 }] })).toStrictEqual({});
  });

  it("--memory sets memory: when the arguments have no m item (other items do not count)", () => {
    expect(overridesLayer({ memory: "8G", cpu: 4 }, { arguments: [{ display: "none" }] })).toStrictEqual({
      memory: "8G",
      cpu: 4,
    });
  });
});

describe("applyConfigChange", () => {
  const current = { name: "web", accel: "kvm", memory: "1G" };
  const defaults = { name: "", accel: "auto", memory: "2G" };

  it("keeps the name, skips what the change leaves unset or at its default unless named", () => {
    const change = { name: "other", accel: "auto", memory: "4G", cpu: undefined };
    expect(applyConfigChange<Record<string, unknown>>(current, change, [], defaults)).toStrictEqual({
      name: "web",
      accel: "kvm",
      memory: "4G",
    });
  });

  it("a named key counts even at its default", () => {
    const change = { name: "web", accel: "auto", memory: "2G" };
    expect(applyConfigChange<Record<string, unknown>>(current, change, ["accel"], defaults)).toStrictEqual({
      name: "web",
      accel: "auto",
      memory: "1G",
    });
  });
});
