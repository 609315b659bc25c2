import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadVmConfig, loadVmConfigFile, MAX_CONFIG_FILE_BYTES } from "../../src/adapters/load-vm-config.ts";
import { buildQemuArgv } from "../../src/adapters/qemu-argv.ts";
import { parseVmConfig, validateVmConfig } from "../../src/config/parse-vm-config.ts";
import { errorOf } from "../support/failure.ts";

const base = { source: "vm.yaml", baseDir: "/srv/vms" };
const RUNTIME = {
  vmId: "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b",
  name: "vm",
  qmpSocket: "/run/m/qmp.sock",
  pidFile: "/run/m/qemu.pid",
};
const parse = (text: string, extra: Partial<Parameters<typeof parseVmConfig>[1]> = {}) =>
  parseVmConfig(text, { ...base, ...extra });

describe("parseVmConfig: a full config", () => {
  it("normalises every key", () => {
    const config = parse(`
name: web
binary: /usr/bin/qemu-system-x86_64
memory: 4g
cpu: 2
display: none
vga: std
accel: kvm
machine: q35
kernel: boot/vmlinuz
initrd: /boot/initrd.img
append: console=ttyS0 quiet
args: [-no-reboot, -smp, 2]
arguments:
  - enable-kvm
  - {netdev: user, id: n0}
  - device: {driver: virtio-net-pci, netdev: n0}
storage:
  - {name: hdd, type: qcow2, size: 20g, interface: virtio}
  - {type: raw, file: ../data/b.raw, size: 1048576, interface: sata}
`);
    expect(config).toEqual({
      name: "web",
      binary: "/usr/bin/qemu-system-x86_64",
      memory: "4G",
      cpu: 2,
      display: "none",
      vga: "std",
      accel: "kvm",
      machine: "q35",
      kernel: "/srv/vms/boot/vmlinuz",
      initrd: "/boot/initrd.img",
      append: "console=ttyS0 quiet",
      args: ["-no-reboot", "-smp", "2"],
      arguments: ["enable-kvm", { netdev: "user", id: "n0" }, { device: { driver: "virtio-net-pci", netdev: "n0" } }],
      storage: [
        { name: "hdd", type: "qcow2", file: "/srv/vms/hdd.qcow2", size: "20G", interface: "virtio" },
        { name: "hdd1", type: "raw", file: "/srv/data/b.raw", size: "1048576", interface: "sata" },
      ],
    });
  });

  it("gives defaults for an empty file and an empty mapping (MAQET's empty VM)", () => {
    const empty = { accel: "auto", args: [], arguments: [], storage: [] };
    expect(parse("")).toEqual(empty);
    expect(parse("# nothing yet\n")).toEqual(empty);
    expect(parse("{}")).toEqual(empty);
  });

  it("treats null values as absent", () => {
    expect(parse("memory:\nkernel: ~\nstorage:\nargs: null\n")).toEqual({
      accel: "auto",
      args: [],
      arguments: [],
      storage: [],
    });
  });

  it("parses YAML 1.2: on/yes stay strings, a BOM is ignored, merge keys work", () => {
    const text = "\uFEFFarguments:\n  - &d {display: gtk, zoom-to-fit: on}\n  - <<: *d\n    full-screen: yes\n";
    expect(parse(text).arguments).toEqual([
      { display: "gtk", "zoom-to-fit": "on" },
      { display: "gtk", "zoom-to-fit": "on", "full-screen": "yes" },
    ]);
  });
});

describe("parseVmConfig: YAML errors", () => {
  it.each([
    ["a: [1, 2\n", /^Invalid YAML in vm\.yaml: .+ \(line 2, column 1\)\. Fix the YAML syntax\.$/],
    ["---\nname: a\n---\nname: b\n", /multiple documents/],
    ["\tname: a\n", /Tabs/],
    ["name: !!python/object:os.system foo\n", /Unresolved tag.*\(line 1, column 7\)\. maqet reads plain YAML/],
    ["? [a, b]\n: c\n", /a mapping key must be a plain value.*\(line 1, column 3\)/],
  ])("%j", (text, message) => {
    const error = errorOf(() => parse(text));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toMatch(message);
  });

  it("refuses a top level that is not a mapping", () => {
    expect(errorOf(() => parse("- a\n- b\n")).message).toBe(
      "Invalid config: vm.yaml must be a mapping with keys such as name: and memory: at the top level (got a list). Rewrite it as key: value lines.",
    );
    expect(errorOf(() => parse("just text\n")).message).toContain('(got "just text")');
  });

  it("stops alias bombs", () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 8; i++) {
      const prev = String.fromCharCode(96 + i);
      const next = String.fromCharCode(97 + i);
      lines.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(",")}]`);
    }
    const error = errorOf(() => parse(lines.join("\n")));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toMatch(/^Invalid YAML in vm\.yaml: Excessive alias count/);
  });

  it("uses 'the config' when no source is given", () => {
    expect(parseVmConfig.bind(null, "cpu: x", { baseDir: "/" })).toThrow(/Fix the value in the config\.$/);
  });
});

describe("parseVmConfig: keys", () => {
  it("rejects unknown keys, listing the valid ones and suggesting a fix", () => {
    const error = errorOf(() => parse("memroy: 1G\n"));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.details.keyPath).toBe("memroy");
    expect(error.message).toBe(
      "Invalid config: unknown key 'memroy' in vm.yaml. Did you mean 'memory'? Valid keys: accel, append, args, arguments, binary, cloud-init, cpu, display, ha, initrd, kernel, log_file, machine, memory, name, ports, qmp, storage, vga (also accepted and ignored: description, tags, parameters, network, plain_arguments). Remove or rename it.",
    );
    expect(errorOf(() => parse("zzzzzz: 1\n")).message).not.toContain("Did you mean");
  });

  it("refuses command names, as MAQET does", () => {
    const error = errorOf(() => parse("name: a\nstart: true\nstop: 1\n"));
    expect(error.message).toBe(
      "Invalid config: vm.yaml contains maqet commands (start, stop); a configuration cannot contain commands. Remove them and run them from the CLI, e.g. `maqet start <vm>`.",
    );
  });

  it("accepts MAQET metadata and drops it; warns for keys MAQET never acted on", () => {
    const warnings: string[] = [];
    const config = parse(
      "description: a web server\ntags: [web, prod]\nparameters: {x: 1}\nnetwork: {mode: user}\nplain_arguments: -no-reboot\n",
      { onWarning: (m) => warnings.push(m) },
    );
    expect(config).toEqual({ accel: "auto", args: [], arguments: [], storage: [] });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^'network' in vm\.yaml has no effect .* - netdev: user,id=n0/);
    expect(warnings[1]).toMatch(/^'plain_arguments' in vm\.yaml has no effect/);
    expect(parse("tags: web, prod\n").storage).toEqual([]);
  });

  it.each([
    ["description: [a]", "description", "a string"],
    ["tags: {a: 1}", "tags", "a list of strings or a comma-separated string"],
    ["parameters: [1]", "parameters", "a mapping"],
    ["network: user", "network", "a mapping or a list"],
    ["plain_arguments: 1", "plain_arguments", "a string or a list"],
  ])("type-checks metadata: %s", (text, keyPath, expected) => {
    const error = errorOf(() => parse(text));
    expect(error.details.keyPath).toBe(keyPath);
    expect(error.message).toContain(`must be ${expected}`);
  });

  it.each([
    [
      "memory: true",
      "memory",
      "Invalid config: 'memory' must be a size like 512M or 4G (got true). Fix the value in vm.yaml.",
    ],
    ["memory: 512", "memory", "a whole number of MiB in bytes"],
    ["memory: 512MB", "memory", "a size like 512M"],
    ["memory: 0G", "memory", "a size like 512M"],
    ["memory: -1", "memory", "a size like 512M"],
    ["cpu: 0", "cpu", "Invalid config: 'cpu' must be an integer from 1 to 256 (got 0). Fix the value in vm.yaml."],
    ["cpu: 257", "cpu", "an integer from 1 to 256"],
    ["cpu: '2'", "cpu", '(got "2")'],
    ["cpu: 1.5", "cpu", "an integer"],
    ["name: -web", "name", "1-63 letters"],
    ["name: a..b", "name", "without '..'"],
    ["name: a/b", "name", "1-63 letters"],
    ["name: 2024x y", "name", "1-63 letters"],
    ["name: 12", "name", "quote numbers"],
    ["binary: 12", "binary", "a non-empty single-line string"],
    ["binary: ''", "binary", "a non-empty single-line string"],
    ["display: [gtk]", "display", "a non-empty single-line string"],
    ["vga: {a: 1}", "vga", "a non-empty single-line string"],
    ['machine: "q35\\nx"', "machine", "single-line"],
    ["accel: hvf", "accel", "one of auto, kvm, tcg"],
    ["kernel: 5", "kernel", "a non-empty single-line string"],
    ["kernel: ~/vmlinuz", "kernel", "'~' is not expanded"],
    ["kernel: /k\nappend: [a]", "append", "a kernel command line string"],
    [
      "initrd: /i",
      "initrd",
      "Invalid config: 'initrd' must be used together with 'kernel' (QEMU allows it only with -kernel) (got \"/i\"). Add kernel: in vm.yaml.",
    ],
    ["append: quiet", "append", "used together with 'kernel'"],
    ["args: -no-reboot", "args", "a list of QEMU argv words"],
    ["args: [-a, '']", "args[1]", "a non-empty string"],
    ["args: [-a, {b: 1}]", "args[1]", "a non-empty string"],
    ["arguments: {smp: 2}", "arguments", "a list of options"],
    ["arguments: ['m 512']", "arguments[0]", "- m: 512M"],
    ["arguments: [{}]", "arguments[0]", "at least one option"],
    ["arguments: [smp, 3]", "arguments[1]", "an option name like enable-kvm or a mapping"],
    ["arguments: [{device: {'a b': 1}}]", "arguments[0].device.a b", "option name without spaces"],
    ["arguments: [{device: {a: [1, null]}}]", "arguments[0].device.a[1]", "a value (not null)"],
  ])("%j -> %s", (text, keyPath, message) => {
    const error = errorOf(() => parse(text));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.details.keyPath).toBe(keyPath);
    expect(error.message).toContain(message);
  });

  it.each([
    ["memory: 512M", "512M"],
    ["memory: 1t", "1T"],
    ["memory: 1024K", "1024K"],
    ["memory: 536870912", "512M"],
    ["memory: 1073741824", "1024M"],
  ])("memory %s -> %s", (text, memory) => {
    expect(parse(text).memory).toBe(memory);
  });

  it("keeps a bare binary name for PATH lookup and resolves one with a slash", () => {
    expect(parse("binary: qemu-system-aarch64").binary).toBe("qemu-system-aarch64");
    expect(parse("binary: ./qemu/bin/qemu-system-x86_64").binary).toBe("/srv/vms/qemu/bin/qemu-system-x86_64");
    expect(parse("binary: /opt/../usr/bin/qemu").binary).toBe("/usr/bin/qemu");
  });

  it("keeps arguments items as written", () => {
    const items = parse(
      "arguments:\n  - m: 1G\n  - display: gtk\n    zoom-to-fit: on\n  - object: {a: {b: [1, true]}}\n",
    ).arguments;
    expect(items).toEqual([{ m: "1G" }, { display: "gtk", "zoom-to-fit": "on" }, { object: { a: { b: [1, true] } } }]);
  });
});

describe("parseVmConfig: name", () => {
  it("takes the YAML name, or the override", () => {
    expect(parse("name: web").name).toBe("web");
    expect(parse("name: web", { nameOverride: "api" }).name).toBe("api");
    expect(parse("", { nameOverride: "api" }).name).toBe("api");
    expect(parse("").name).toBeUndefined();
  });

  it("refuses a bad override as an invalid argument", () => {
    const error = errorOf(() => parse("name: web", { nameOverride: "../x" }));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(/^Invalid VM name "\.\.\/x": use 1-63 letters/);
  });
});

describe("parseVmConfig: storage", () => {
  it("defaults name, file (next to the config), size (10G, MAQET's) and interface", () => {
    expect(parse("storage: [{type: qcow2, size: 1G}, {type: raw}]").storage).toEqual([
      { name: "hdd0", type: "qcow2", file: "/srv/vms/hdd0.qcow2", size: "1G", interface: "virtio" },
      { name: "hdd1", type: "raw", file: "/srv/vms/hdd1.raw", size: "10G", interface: "virtio" },
    ]);
  });

  it("keeps absolute files and resolves relative ones", () => {
    const storage = parse(
      "storage:\n  - {name: a, type: raw, file: /dev/shm/a.raw}\n  - {name: b, type: raw, file: disks/./b.raw}\n",
    ).storage;
    expect(storage.map((d) => d.file)).toEqual(["/dev/shm/a.raw", "/srv/vms/disks/b.raw"]);
  });

  it.each(["virtio", "sata", "ide", "scsi", "none"])("accepts interface %s", (iface) => {
    expect(parse(`storage: [{type: raw, interface: ${iface}}]`).storage[0]?.interface).toBe(iface);
  });

  it.each([
    ["storage: {type: raw}", "storage", "a list of disks"],
    ["storage: [raw]", "storage[0]", "a mapping with type:"],
    [
      "storage: [{size: 1G}]",
      "storage[0].type",
      "Invalid config: 'storage[0].type' must be qcow2, raw or virtfs (got nothing). Fix the value in vm.yaml.",
    ],
    ["storage: [{type: vmdk}]", "storage[0].type", "qcow2, raw or virtfs"],
    ["storage: [{type: raw, size: 10X}]", "storage[0].size", "a size like 10G or 512M"],
    ["storage: [{type: raw, size: -1}]", "storage[0].size", "a size like 10G"],
    ["storage: [{type: raw, size: 1.5G}]", "storage[0].size", "a size like 10G"],
    ["storage: [{type: raw, interface: usb}]", "storage[0].interface", "one of virtio, sata, ide, scsi, none"],
    ["storage: [{type: raw, name: 0hdd}]", "storage[0].name", "a letter followed by"],
    ["storage: [{type: raw, name: 'a,b'}]", "storage[0].name", "a letter followed by"],
    ["storage: [{type: raw, name: maqet-ahci}]", "storage[0].name", "not starting with maqet-"],
    ["storage: [{type: raw, file: ''}]", "storage[0].file", "a non-empty"],
    ["storage: [{type: raw, file: ~/x.raw}]", "storage[0].file", "'~' is not expanded"],
    [
      "storage: [{type: raw, name: a}, {type: raw, name: a}]",
      "storage[1].name",
      "Invalid config: 'storage[1].name' must be unique (storage[0] already uses it) (got \"a\"). Rename one of them in vm.yaml.",
    ],
    ["storage: [{type: raw, name: hdd1}, {type: raw}]", "storage[1].name", "unique"],
    [
      "storage: [{type: raw, file: x.raw}, {type: raw, file: ./x.raw}]",
      "storage[1].file",
      "a different file from storage[0]",
    ],
  ])("%j -> %s", (text, keyPath, message) => {
    const error = errorOf(() => parse(text));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.details.keyPath).toBe(keyPath);
    expect(error.message).toContain(message);
  });

  it("rejects unknown storage keys with the valid list", () => {
    const error = errorOf(() => parse("storage: [{type: raw, sise: 1G}]"));
    expect(error.details.keyPath).toBe("storage[0].sise");
    expect(error.message).toBe(
      "Invalid config: unknown key 'storage[0].sise' in vm.yaml. Did you mean 'size'? Valid keys for a disk storage entry: backing_file, backing_format, file, interface, media, name, options, size, type. Remove or rename it.",
    );
  });

  it("allows at most six sata disks (one AHCI controller)", () => {
    const six = Array.from({ length: 6 }, (_, i) => `{name: d${i}, type: raw, interface: sata}`);
    expect(parse(`storage: [${six.join(", ")}]`).storage).toHaveLength(6);
    const error = errorOf(() => parse(`storage: [${[...six, "{name: d6, type: raw, interface: sata}"].join(", ")}]`));
    expect(error.details.keyPath).toBe("storage[6].interface");
  });
});

describe("validateVmConfig (object configs)", () => {
  it("applies the same rules to an object", () => {
    expect(
      validateVmConfig({ name: "web", memory: "1G", storage: [{ type: "raw", file: "a.raw" }] }, { baseDir: "/x" }),
    ).toEqual({
      name: "web",
      memory: "1G",
      accel: "auto",
      args: [],
      arguments: [],
      storage: [{ name: "hdd0", type: "raw", file: "/x/a.raw", size: "10G", interface: "virtio" }],
    });
    expect(errorOf(() => validateVmConfig([], { baseDir: "/x" })).message).toContain("(got a list)");
    expect(errorOf(() => validateVmConfig({ cpu: 2 }, { baseDir: "relative" })).code).toBe("INVALID_ARGUMENT");
  });
});

describe("loadVmConfigFile / loadVmConfig", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-load-"));
    await mkdir(join(dir, "vms"));
    await writeFile(
      join(dir, "vms", "web.yaml"),
      "name: web\nstorage: [{type: qcow2, size: 1G, file: disks/web.qcow2}]\n",
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves relative paths against the file's directory", async () => {
    const config = await loadVmConfigFile(join(dir, "vms", "web.yaml"));
    expect(config.storage[0]?.file).toBe(join(dir, "vms", "disks", "web.qcow2"));
    const loaded = await loadVmConfig("vms/web.yaml", { cwd: dir, nameOverride: "web2" });
    expect(loaded).toMatchObject({ path: join(dir, "vms", "web.yaml"), config: { name: "web2" } });
  });

  it("names the missing file (CONFIG_NOT_FOUND)", async () => {
    const missing = join(dir, "nope.yaml");
    await expect(loadVmConfigFile(missing)).rejects.toMatchObject({
      code: "CONFIG_NOT_FOUND",
      message: `Configuration file not found: ${missing}. Check the path.`,
    });
    await expect(loadVmConfigFile(join(dir, "vms", "web.yaml", "x"))).rejects.toMatchObject({
      code: "CONFIG_NOT_FOUND",
    });
  });

  it("refuses directories, FIFOs, oversized and non-UTF-8 files", async () => {
    await expect(loadVmConfigFile(join(dir, "vms"))).rejects.toThrow(/is not a regular file/);
    const big = join(dir, "big.yaml");
    await writeFile(big, Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1, 0x20));
    await expect(loadVmConfigFile(big)).rejects.toThrow(/over the 10485760-byte limit/);
    const latin1 = join(dir, "latin1.yaml");
    await writeFile(latin1, Buffer.from([0x6e, 0x3a, 0x20, 0xe9, 0x0a]));
    await expect(loadVmConfigFile(latin1)).rejects.toThrow(/is not UTF-8 text/);
  });

  it("reports a YAML error with the file's path", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "cpu: [\n");
    await expect(loadVmConfigFile(bad)).rejects.toThrow(`Invalid YAML in ${bad}:`);
  });

  it("follows a symlinked config but resolves against the link's directory", async () => {
    const link = join(dir, "link.yaml");
    await symlink(join(dir, "vms", "web.yaml"), link);
    expect((await loadVmConfigFile(link)).storage[0]?.file).toBe(join(dir, "disks", "web.qcow2"));
  });

  it("validates an object config against cwd", async () => {
    const loaded = await loadVmConfig({ name: "obj", storage: [{ type: "raw" }] }, { cwd: "/data" });
    expect(loaded).toEqual({
      config: {
        name: "obj",
        accel: "auto",
        args: [],
        arguments: [],
        storage: [{ name: "hdd0", type: "raw", file: "/data/hdd0.raw", size: "10G", interface: "virtio" }],
      },
    });
  });

  if (process.getuid?.() === 0) {
    console.log(
      "[parse-vm-config] skipped 'says when the file cannot be read': running as root, every file is readable",
    );
  }
  // Root reads a file whatever its mode, so an unreadable file cannot be made as root.
  if (process.getuid?.() === 0) console.log("[parse-vm-config] skipped 'cannot be read': root reads any file");
  it.skipIf(process.getuid?.() === 0)(
    "says when the file cannot be read (not as root: root reads any file)",
    async () => {
      const locked = join(dir, "locked.yaml");
      await writeFile(locked, "name: x\n");
      await chmod(locked, 0o000);
      await expect(loadVmConfigFile(locked)).rejects.toThrow(/cannot be read \(EACCES\)/);
    },
  );
});

describe("the shipped examples", () => {
  it("examples/demo.yaml: a firmware-only VM with one small qcow2 disk next to it", async () => {
    const examples = join(import.meta.dirname, "..", "..", "examples");
    expect(await loadVmConfigFile(join(examples, "demo.yaml"))).toEqual({
      name: "demo",
      memory: "64M",
      cpu: 1,
      accel: "auto",
      machine: "q35",
      display: "none",
      args: [],
      arguments: [],
      storage: [{ name: "hdd0", type: "qcow2", file: join(examples, "demo.qcow2"), size: "64M", interface: "virtio" }],
    });
  });

  it("examples/full.yaml: every key, no warnings", async () => {
    const warnings: string[] = [];
    const examples = join(import.meta.dirname, "..", "..", "examples");
    const config = await loadVmConfigFile(join(examples, "full.yaml"), { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    expect(config.storage.map((d) => d.interface)).toEqual(["virtio", "sata", "none"]);
    expect(config.arguments.length).toBeGreaterThan(5);
  });
});

describe("parseVmConfig: MAQET's keys", () => {
  it("a repeated key: the last wins (MAQET's YAML loader), with a warning naming both lines", () => {
    const warnings: string[] = [];
    const config = parse("memory: 1G\ncpu: 1\nmemory: 2G\n", { onWarning: (w) => warnings.push(w) });
    expect(config.memory).toBe("2G");
    expect(warnings).toEqual([
      "'memory' is given twice in vm.yaml (line 1 and line 3); the last one (line 3) is used, as in MAQET. Remove one of them.",
    ]);
    // Inside an arguments mapping too: the key keeps its first place, the last value.
    const nested: string[] = [];
    const args = parse("arguments:\n  - netdev: user\n    id: a\n    id: n0\n", { onWarning: (w) => nested.push(w) });
    expect(args.arguments).toEqual([{ netdev: "user", id: "n0" }]);
    expect(nested[0]).toContain("'id' is given twice in vm.yaml (line 3 and line 4)");
  });

  it("a disk without size is 10G, as in MAQET (not with a backing file: it inherits the base's)", () => {
    const config = parse(
      "storage:\n  - {name: a, type: qcow2}\n  - {name: b, type: qcow2, backing_file: base.qcow2}\n",
    );
    expect(config.storage.map((d) => [d.name, d.size])).toEqual([
      ["a", "10G"],
      ["b", undefined],
    ]);
  });

  it("media: cdrom is a read-only CD-ROM drive for the ISO (ide by default, never created)", () => {
    const config = parse(
      "storage:\n  - {name: hdd, type: qcow2, size: 1G}\n  - {name: install, file: ubuntu.iso, media: cdrom}\n  - {name: cd2, file: b.iso, media: cdrom, interface: sata}\n",
    );
    expect(config.storage[1]).toEqual({
      name: "install",
      type: "raw",
      file: "/srv/vms/ubuntu.iso",
      interface: "ide",
      media: "cdrom",
    });
    const argv = buildQemuArgv(config, RUNTIME, { kvmUsable: false });
    expect(argv).toContain("file=/srv/vms/ubuntu.iso,if=ide,format=raw,id=install,media=cdrom,readonly=on");
    expect(argv).toContain("ide-cd,drive=cd2,bus=maqet-ahci.0");
    expect(errorOf(() => parse("storage:\n  - {file: a.iso, media: cdrom, size: 1G}\n")).message).toContain(
      "'storage[0].size' must be left out for a CD-ROM (media: cdrom)",
    );
    expect(errorOf(() => parse("storage:\n  - {file: a.iso, media: cdrom, interface: virtio}\n")).message).toContain(
      "'storage[0].interface' must be ide, sata or scsi for a CD-ROM",
    );
    expect(errorOf(() => parse("storage:\n  - {file: a.iso, media: dvd}\n")).message).toContain("storage[0].media");
  });

  it("log_file: QEMU's output log, resolved against the config's directory", () => {
    expect(parse("log_file: logs/qemu.log\n").logFile).toBe("/srv/vms/logs/qemu.log");
  });

  it("an undocumented key stays an error with the nearest known key", () => {
    expect(errorOf(() => parse("log_fle: x\n")).message).toContain(
      "unknown key 'log_fle' in vm.yaml. Did you mean 'log_file'?",
    );
    expect(errorOf(() => parse("storage:\n  - {file: a.iso, meda: cdrom}\n")).message).toContain(
      "unknown key 'storage[0].meda' in vm.yaml. Did you mean 'media'?",
    );
  });
});
