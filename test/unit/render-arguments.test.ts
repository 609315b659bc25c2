import { describe, expect, it } from "vitest";
import { findArgumentProblem, renderArgumentItem, renderArguments } from "../../src/config/render-arguments.ts";

describe("renderArgumentItem: MAQET's forms", () => {
  it.each([
    // string flags
    ["enable-kvm", ["-enable-kvm"]],
    ["-enable-kvm", ["-enable-kvm"]],
    ["--enable-kvm", ["--enable-kvm"]],
    // {k: null} flag
    [{ "enable-kvm": null }, ["-enable-kvm"]],
    // {k: v}
    [{ smp: 2 }, ["-smp", "2"]],
    [{ m: "2G" }, ["-m", "2G"]],
    [{ cpu: "host" }, ["-cpu", "host"]],
    [{ smp: 1.5 }, ["-smp", "1.5"]],
    [{ "no-reboot": "" }, ["-no-reboot", ""]],
    // booleans become QEMU's on/off
    [{ "enable-sync-profile": true }, ["-enable-sync-profile", "on"]],
    // multi-key dict: first value positional
    [{ display: "gtk", "zoom-to-fit": "on" }, ["-display", "gtk,zoom-to-fit=on"]],
    [{ netdev: "user", id: "n0", hostfwd: "tcp::2222-:22" }, ["-netdev", "user,id=n0,hostfwd=tcp::2222-:22"]],
    [{ display: null, "zoom-to-fit": "on" }, ["-display", "zoom-to-fit=on"]],
    [{ display: "gtk", full: null, gl: {} }, ["-display", "gtk,full,gl"]],
    [{ device: "virtio-net", feat: ["a", "b"] }, ["-device", "virtio-net,feat.a,feat.b"]],
    [{ device: "x", opts: { a: 1, b: { c: 2 } } }, ["-device", "x,opts.a=1,opts.b.c=2"]],
    [{ device: "x", empty: [] }, ["-device", "x"]],
    [{ device: { driver: "e1000" }, id: "n" }, ["-device", "driver=e1000,id=n"]],
    [{ a: null, b: null }, ["-a", "b"]],
    [{ a: {}, b: 1 }, ["-a", "b=1"]],
    [{ a: true, b: false }, ["-a", "on,b=off"]],
    // nested dict
    [{ device: { driver: "e1000", netdev: "n0" } }, ["-device", "driver=e1000,netdev=n0"]],
    [{ display: { gtk: null, "zoom-to-fit": "on" } }, ["-display", "gtk,zoom-to-fit=on"]],
    [{ display: { gtk: {}, "zoom-to-fit": "on" } }, ["-display", "gtk,zoom-to-fit=on"]],
    [{ display: { gtk: null } }, ["-display", "gtk"]],
    [{ foo: { bar: 42, baz: 42 } }, ["-foo", "bar=42,baz=42"]],
    [{ foo: {} }, ["-foo"]],
    // deeper nesting: dotted keys
    [{ object: { bar: { baz: { spam: 1 } } } }, ["-object", "bar.baz.spam=1"]],
    [{ o: { a: { b: null, c: 1 }, d: 2 } }, ["-o", "a.b,a.c=1,d=2"]],
    [{ o: { a: { b: {} } } }, ["-o", "a.b"]],
    [{ o: { a: ["x", "y"] } }, ["-o", "a.x,a.y"]],
    [{ o: { a: [{ b: 1 }, { c: 2 }] } }, ["-o", "a.b=1,a.c=2"]],
    [{ o: { a: { b: true } } }, ["-o", "a.b=on"]],
    // lists
    [{ arg: ["foo", "bar"] }, ["-arg", "foo,bar"]],
    [{ arg: [1, 2] }, ["-arg", "1,2"]],
    [{ arg: [] }, ["-arg"]],
    [{ arg: [{ a: 1 }, "b"] }, ["-arg", "a=1,b"]],
    [{ arg: [["a", "b"], "c"] }, ["-arg", "a,b,c"]],
    [{ arg: ["a", null, "b"] }, ["-arg", "a,b"]],
    [{ arg: [{}] }, ["-arg"]],
    // values are kept as written: no comma escaping
    [{ drive: "file=/a,,b.img,if=none" }, ["-drive", "file=/a,,b.img,if=none"]],
    // an empty positional nested value adds nothing (MAQET added an empty part)
    [{ display: {}, "zoom-to-fit": "on" }, ["-display", "zoom-to-fit=on"]],
    [{ display: [], x: null }, ["-display", "x"]],
    [{ display: { gtk: null }, x: 1 }, ["-display", "gtk,x=1"]],
    [{ display: ["gtk", "sdl"], x: 1 }, ["-display", "gtk,sdl,x=1"]],
    [{ a: {}, b: {} }, ["-a", "b"]],
    // an empty mapping renders nothing
    [{}, []],
  ] as const)("%j -> %j", (item, expected) => {
    expect(renderArgumentItem(item as never)).toEqual(expected);
  });

  it("keeps a key's leading dash (MAQET prefixes one more)", () => {
    expect(renderArgumentItem({ "-m": "1G" })).toEqual(["--m", "1G"]);
  });

  it("keeps insertion order of suboptions", () => {
    expect(renderArgumentItem({ device: { z: 1, a: 2, m: 3 } })).toEqual(["-device", "z=1,a=2,m=3"]);
  });
});

describe("renderArguments", () => {
  it("concatenates items in order and keeps repeated options", () => {
    expect(
      renderArguments([
        "enable-kvm",
        { netdev: "user", id: "n0" },
        { device: { driver: "virtio-net-pci", netdev: "n0" } },
        { device: { driver: "virtio-rng-pci" } },
        { m: "1G" },
        { m: "2G" },
      ]),
    ).toEqual([
      "-enable-kvm",
      "-netdev",
      "user,id=n0",
      "-device",
      "driver=virtio-net-pci,netdev=n0",
      "-device",
      "driver=virtio-rng-pci",
      "-m",
      "1G",
      "-m",
      "2G",
    ]);
  });

  it("renders nothing for no items", () => {
    expect(renderArguments([])).toEqual([]);
  });
});

describe("findArgumentProblem", () => {
  it.each([
    ["enable-kvm"],
    ["-enable-kvm"],
    [{ smp: 2 }],
    [{ "enable-kvm": null }],
    [{ display: "gtk", "zoom-to-fit": "on" }],
    [{ device: { driver: "e1000", opts: [1, "a", { b: true }, ["c"]] } }],
    [{ drive: "file=/x,,y.img,if=none" }],
    [{ append: "console=ttyS0 quiet" }],
  ])("accepts %j", (item) => {
    expect(findArgumentProblem(item)).toBeUndefined();
  });

  it.each([
    ["", ""],
    ["-", ""],
    ["m 512", ""],
    ["a,b", ""],
    [42, ""],
    [null, ""],
    [["m", "1G"], ""],
    [{}, ""],
    [{ "m 1": 2 }, ".m 1"],
    [{ "a=b": 1 }, ".a=b"],
    [{ "": 1 }, "."],
    [{ device: { "x,y": 1 } }, ".device.x,y"],
    [{ device: { a: [1, null] } }, ".device.a[1]"],
    [{ device: { a: Number.NaN } }, ".device.a"],
    [{ device: { a: "x\0y" } }, ".device.a"],
    [{ device: { a: () => 1 } }, ".device.a"],
  ])("refuses %j at %j", (item, path) => {
    expect(findArgumentProblem(item)?.path).toBe(path);
  });

  it("says how to write an option with a value", () => {
    expect(findArgumentProblem("m 512")?.expected).toContain("- m: 512M");
  });
});
