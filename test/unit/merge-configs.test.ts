import { describe, expect, it } from "vitest";
import { splitCommandLine } from "../../src/adapters/run-editor.ts";
import { vmConfigToRaw, vmConfigToYaml } from "../../src/api/config-yaml.ts";
import {
  applyConfigChange,
  argumentKey,
  mergeArguments,
  mergeConfigLayers,
  mergeConfigValues,
  overridesLayer,
  resolveLayerPaths,
} from "../../src/config/merge-configs.ts";
import { parseVmConfig, validateVmConfig } from "../../src/config/parse-vm-config.ts";

describe("MAQET config merging", () => {
  it("merges MAQET's documented base + overrides example: m replaced in place, smp kept, display added", () => {
    // docs/user-guide/configuration.md (maqet 0.0.12), "Basic Merging".
    const merged = mergeConfigLayers([
      { value: { binary: "/usr/bin/qemu-system-x86_64", arguments: [{ m: "2G" }, { smp: 2 }] }, baseDir: "/srv" },
      { value: { arguments: [{ m: "4G" }, { display: "gtk" }] }, baseDir: "/srv" },
    ]);
    expect(merged).toEqual({
      binary: "/usr/bin/qemu-system-x86_64",
      arguments: [{ m: "4G" }, { smp: 2 }, { display: "gtk" }],
    });
  });

  it("concatenates lists other than arguments, deep-merges mappings, replaces scalars", () => {
    expect(
      mergeConfigValues(
        { memory: "1G", tags: ["a"], qmp: { allow: ["query-*"] }, args: ["-no-reboot"] },
        { memory: "2G", tags: ["b"], qmp: { deny: ["quit"] }, args: ["-snapshot"] },
      ),
    ).toEqual({
      memory: "2G",
      tags: ["a", "b"],
      qmp: { allow: ["query-*"], deny: ["quit"] },
      args: ["-no-reboot", "-snapshot"],
    });
  });

  it("concatenates storage (MAQET's list concatenation example) and replaces an entry of the same name", () => {
    const base = { storage: [{ name: "hdd", type: "qcow2", size: "20G" }] };
    const cdrom = { storage: [{ name: "cdrom", type: "raw", file: "/path/to/iso" }] };
    expect(mergeConfigValues(base, cdrom).storage).toEqual([...base.storage, ...cdrom.storage]);
    const bigger = { storage: [{ name: "hdd", type: "qcow2", size: "40G" }] };
    expect(mergeConfigValues(base, bigger).storage).toEqual([{ name: "hdd", type: "qcow2", size: "40G" }]);
  });

  it("keys arguments by their first key; flag strings and {flag: null} are one key", () => {
    expect(argumentKey({ display: "gtk", "zoom-to-fit": "on" })).toBe("display");
    expect(argumentKey("-enable-kvm")).toBe("enable-kvm");
    expect(argumentKey("enable-kvm")).toBe(argumentKey({ "enable-kvm": null }));
    expect(mergeArguments(["enable-kvm", { m: "1G" }], [{ "enable-kvm": null }])).toEqual([
      { "enable-kvm": null },
      { m: "1G" },
    ]);
  });

  it("a later file's repeated keys replace the earlier ones together, and all of them stay (unlike MAQET)", () => {
    const base = [{ netdev: "user,id=net0" }, { device: "virtio-net,netdev=net0" }, { smp: 2 }];
    const sound = [{ device: "intel-hda" }, { device: "hda-duplex" }];
    expect(mergeArguments(base, sound)).toEqual([
      { netdev: "user,id=net0" },
      { device: "intel-hda" },
      { device: "hda-duplex" },
      { smp: 2 },
    ]);
    // Within one file (no merge), repeated keys are untouched.
    expect(mergeConfigLayers([{ value: { arguments: sound }, baseDir: "/" }]).arguments).toEqual(sound);
  });

  it("resolves relative paths against each file's own directory", () => {
    const merged = mergeConfigLayers([
      {
        value: { binary: "bin/qemu", storage: [{ name: "hdd", type: "qcow2", file: "disks/hdd.qcow2" }] },
        baseDir: "/srv/base",
      },
      {
        value: {
          kernel: "../k/vmlinuz",
          storage: [
            { name: "data", type: "raw", size: "1G" },
            { name: "share", type: "virtfs", path: "./share" },
            { name: "overlay", type: "qcow2", file: "/abs/o.qcow2", backing_file: "base.qcow2" },
          ],
          arguments: [{ drive: "file=disk.img,if=virtio" }, "-hda", { drive: { file: "x.raw", format: "raw" } }],
        },
        baseDir: "/srv/web",
      },
    ]);
    expect(merged.binary).toBe("/srv/base/bin/qemu");
    expect(merged.kernel).toBe("/srv/k/vmlinuz");
    expect(merged.storage).toEqual([
      { name: "hdd", type: "qcow2", file: "/srv/base/disks/hdd.qcow2" },
      { name: "data", type: "raw", size: "1G", file: "/srv/web/data.raw" },
      { name: "share", type: "virtfs", path: "/srv/web/share" },
      { name: "overlay", type: "qcow2", file: "/abs/o.qcow2", backing_file: "base.qcow2" },
    ]);
    expect(merged.arguments).toEqual([
      { drive: "file=/srv/web/disk.img,if=virtio" },
      "-hda",
      { drive: { file: "/srv/web/x.raw", format: "raw" } },
    ]);
    // A binary name (no slash) is looked up on PATH, never made a path.
    expect(resolveLayerPaths({ binary: "qemu-system-x86_64" }, "/srv").binary).toBe("qemu-system-x86_64");
  });

  it("does not change its inputs", () => {
    const base = { arguments: [{ m: "1G" }], storage: [{ name: "a", type: "qcow2", file: "a.qcow2" }] };
    const copy = structuredClone(base);
    mergeConfigLayers([
      { value: base, baseDir: "/x" },
      { value: { arguments: [{ m: "2G" }] }, baseDir: "/y" },
    ]);
    expect(base).toEqual(copy);
  });

  it("--memory/--cpu replace m/smp arguments, else set memory/cpu; --enable-kvm is accel: kvm", () => {
    expect(overridesLayer({ memory: "8G", cpu: 4 }, { arguments: [{ m: "2G" }, { smp: 2 }] })).toEqual({
      arguments: [{ m: "8G" }, { smp: 4 }],
    });
    expect(overridesLayer({ memory: "8G", cpu: 4, binary: "./q", enableKvm: true }, {})).toEqual({
      memory: "8G",
      cpu: 4,
      binary: "./q",
      accel: "kvm",
    });
    const merged = mergeConfigValues(
      { arguments: [{ m: "2G" }, { smp: 2 }] },
      overridesLayer({ memory: "8G" }, { arguments: [{ m: "2G" }] }),
    );
    expect(merged.arguments).toEqual([{ m: "8G" }, { smp: 2 }]);
  });

  it("apply: keeps what the change does not name (accel, name), merges what it does", () => {
    const v = (raw: Record<string, unknown>) => validateVmConfig(raw, { baseDir: "/srv" });
    const current = v({
      name: "web",
      accel: "tcg",
      memory: "1G",
      arguments: [{ smp: 2 }],
      storage: [{ name: "hdd", type: "qcow2", size: "1G" }],
    });
    const change = v({ memory: "2G", storage: [{ name: "data", type: "raw", size: "1G" }] });
    const after = applyConfigChange(current, change, ["memory", "storage"], v({}));
    expect(after).toEqual({
      ...current,
      memory: "2G",
      storage: [...current.storage, ...change.storage],
    });
    expect(after.accel).toBe("tcg");
    expect(after.name).toBe("web");
  });
});

describe("config as YAML (maqet edit)", () => {
  it("round-trips a config with every storage and argument form", () => {
    const text = [
      "name: web",
      "binary: /usr/bin/qemu-system-x86_64",
      "memory: 1G",
      "cpu: 2",
      "accel: tcg",
      "machine: q35",
      "display: none",
      "arguments:",
      "  - netdev: user",
      "    id: n0",
      "  - device: {driver: virtio-net-pci, netdev: n0}",
      "  - nodefaults: null", // (enable-kvm beside accel: tcg is a contradiction since the accelerator rules)
      "  - no-reboot",
      "args: [-snapshot]",
      "storage:",
      "  - {name: hdd, type: qcow2, size: 1G, interface: sata, options: {cluster_size: 64K}}",
      "  - {name: ov, type: qcow2, backing_file: base.qcow2}",
      "  - {name: share, type: virtfs, path: ./share, mount_tag: tag1, readonly: true, options: {id: fs1, multidevs: remap}}",
      "qmp: {deny: [quit]}",
    ].join("\n");
    const config = parseVmConfig(text, { baseDir: "/srv/vms" });
    const again = parseVmConfig(vmConfigToYaml(config), { baseDir: "/elsewhere" });
    expect(again).toEqual(config);
    expect(vmConfigToRaw(config).storage).toHaveLength(3);
  });
});

describe("$EDITOR splitting (no shell)", () => {
  it("splits words with quotes and backslashes, expands nothing", () => {
    expect(splitCommandLine("vi")).toEqual(["vi"]);
    expect(splitCommandLine("code --wait")).toEqual(["code", "--wait"]);
    expect(splitCommandLine(`"/opt/My Editor/ed" -n 'a b' c\\ d`)).toEqual(["/opt/My Editor/ed", "-n", "a b", "c d"]);
    expect(splitCommandLine("ed $HOME; rm -rf / `x`")).toEqual(["ed", "$HOME;", "rm", "-rf", "/", "`x`"]);
    expect(() => splitCommandLine(`vi "unclosed`)).toThrow(/unclosed/);
  });
});
